"""`inv eb.policies`: the policies follow the settings in force, and parliament finds nothing AWS's own would not."""
from __future__ import annotations

import json

import pytest

from dockyard.config import parse_settings
from dockyard.eb.policies import policies

# What parliament (1.6.4) reports on a correct policy, and why it stays:
DOCUMENTED = {
    # ecr:GetAuthorizationToken hands out registry credentials; pulling from ECR needs it, and AWS's own
    # AmazonEC2ContainerRegistryReadOnly policy grants it on "*" (it takes no resource-level permission).
    "CREDENTIALS_EXPOSURE:ecr:getauthorizationtoken",
}


def findings(policy: dict) -> set[str]:
    parliament = pytest.importorskip("parliament")
    analyzed = parliament.analyze_policy_string(json.dumps(policy), include_community_auditors=True)
    out = set()
    for f in analyzed.findings:
        actions = (f.location or {}).get("actions") or []
        out.add(f"{f.issue}:{','.join(actions) if actions else f.detail}")
    return out


def settings_of(*, repository="registry.example.com/shop", region="eu-west-1", _env=None, **eb):
    return parse_settings({"app": "shop", "image": {"repository": repository}, "aws": {"region": region},
                           "eb": {"bucket": "shop-bundles", **eb},
                           "environments": {"prod": {"target": "eb", "eb": _env or {}}}})


def statements(policy: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in policy["Statement"]}


@pytest.mark.parametrize("eb", [
    {"auth": "ecr", "secret_keys": ["KEY"]},
    {"auth": "dockercfg"},
    {"auth": "ssm", "platform": "compose", "ssm_secret_prefix": "/shop/secrets", "secret_keys": ["KEY"]},
    {"auth": "none"},
    {"auth": "dockercfg", "secret_keys": ["KEY"], "secrets_backend": "secretsmanager"},
], ids=["ecr+secrets", "dockercfg", "ssm+prefix", "none", "secretsmanager"])
def test_every_printed_policy_passes_parliament(eb):
    settings = settings_of(repository="123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop"
                           if eb["auth"] == "ecr" else "registry.example.com/shop", **eb)
    doc = policies(settings, settings.eb)
    for principal in ("ci_user", "instance_profile"):
        if principal in doc:
            assert doc[principal]["Statement"], principal  # never an empty policy
            assert findings(doc[principal]) <= DOCUMENTED, principal


def test_create_application_version_is_granted_on_the_application_too():
    settings = settings_of(auth="dockercfg")
    versions = statements(policies(settings, settings.eb)["ci_user"])["Versions"]
    assert versions["Resource"] == ["arn:aws:elasticbeanstalk:eu-west-1:*:application/shop",
                                    "arn:aws:elasticbeanstalk:eu-west-1:*:applicationversion/shop/*"]


def test_the_deployer_may_update_the_environment_s_stack_and_scaling_group_as_eb_does_with_its_permissions():
    settings = settings_of(auth="dockercfg")
    ci = statements(policies(settings, settings.eb)["ci_user"])
    assert "cloudformation:UpdateStack" in ci["EnvironmentStack"]["Action"]
    assert ci["EnvironmentStack"]["Resource"] == ["arn:aws:cloudformation:eu-west-1:*:stack/awseb-*"]
    assert {"autoscaling:SuspendProcesses", "autoscaling:ResumeProcesses"} <= set(ci["EnvironmentScaling"]["Action"])
    assert ci["EnvironmentStorage"]["Resource"] == ["arn:aws:s3:::elasticbeanstalk-eu-west-1-*/*"]
    assert "elasticbeanstalk:SwapEnvironmentCNAMEs" not in ci["Deploy"]["Action"]  # no twin configured


def test_a_twin_adds_the_cname_swap_on_both_environments():
    settings = settings_of(auth="dockercfg", _env={"twin": "shop-green"})
    deploy = statements(policies(settings, settings.eb)["ci_user"])["Deploy"]
    assert "elasticbeanstalk:SwapEnvironmentCNAMEs" in deploy["Action"]
    assert deploy["Resource"] == ["arn:aws:elasticbeanstalk:eu-west-1:*:environment/shop/shop-green",
                                  "arn:aws:elasticbeanstalk:eu-west-1:*:environment/shop/shop-prod"]


def test_secret_keys_let_ci_write_and_the_instances_read_the_configured_prefix():
    settings = settings_of(auth="none", secret_keys=["KEY"], ssm_secret_prefix="/shop/secrets")
    doc = policies(settings, settings.eb)
    assert statements(doc["ci_user"])["Secrets"] == {
        "Sid": "Secrets", "Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:PutParameter"],
        "Resource": ["arn:aws:ssm:eu-west-1:*:parameter/shop/secrets/*"]}
    assert statements(doc["instance_profile"])["Secrets"]["Resource"] == [
        "arn:aws:ssm:eu-west-1:*:parameter/shop/secrets/*"]
    default = settings_of(auth="none", secret_keys=["KEY"])
    assert statements(policies(default, default.eb)["ci_user"])["Secrets"]["Resource"] == [
        "arn:aws:ssm:eu-west-1:*:parameter/shop/prod/*"]


def test_an_ecr_repository_names_the_account_and_region_of_every_arn():
    settings = settings_of(repository="123456789012.dkr.ecr.eu-central-1.amazonaws.com/team/shop", region="",
                           auth="ecr")
    doc = policies(settings, settings.eb)
    pull = statements(doc["instance_profile"])["EcrPull"]
    assert pull["Resource"] == ["arn:aws:ecr:eu-central-1:123456789012:repository/team/shop"]
    assert statements(doc["ci_user"])["Deploy"]["Resource"] == [
        "arn:aws:elasticbeanstalk:eu-central-1:123456789012:environment/shop/shop-prod"]
    assert not any("unknown" in note for note in doc["notes"])


def test_no_instance_policy_when_the_instances_need_nothing_and_the_note_says_so():
    settings = settings_of(auth="none")
    doc = policies(settings, settings.eb)
    assert "instance_profile" not in doc
    assert any("needs nothing from dockyard" in note for note in doc["notes"])


def test_secrets_manager_keys_let_ci_write_versions_and_the_instances_read_them_with_real_account_and_region():
    settings = settings_of(repository="123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop", auth="ecr",
                           secret_keys=["KEY"], secrets_backend="secretsmanager")
    doc = policies(settings, settings.eb)
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/prod/*"
    assert statements(doc["ci_user"])["Secrets"] == {
        "Sid": "Secrets", "Effect": "Allow", "Resource": [arn],
        "Action": ["secretsmanager:CreateSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"]}
    assert statements(doc["instance_profile"])["Secrets"] == {
        "Sid": "Secrets", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": [arn]}
    assert not any(s["Action"][0].startswith("ssm:") for s in doc["instance_profile"]["Statement"])
    assert any("kms:Decrypt" in note for note in doc["notes"])


def test_an_unknown_secrets_backend_is_refused_naming_the_key():
    from dockyard.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        settings_of(auth="none", secret_keys=["KEY"], secrets_backend="vault")
    assert "dockyard.eb.secrets_backend" in str(refused.value) and "'secretsmanager'" in str(refused.value)
    assert "\n" not in str(refused.value)
