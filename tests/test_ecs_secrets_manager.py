"""`ecs.secrets_backend: secretsmanager` against moto's Secrets Manager and ECS: each revision pins the versions of
its secrets, so a rollback after a secret changed gets the old values back (moto runs no container; what a task
would receive is read back with GetSecretValue of the exact ARN and version id its valueFrom names).

ECS resolves a Secrets Manager ``valueFrom`` of the form ``arn:…:secret:NAME-XXXXXX:json-key:version-stage:
version-id`` (ECS developer guide, "Pass Secrets Manager secrets through Amazon ECS environment variables"); an SSM
parameter cannot be pinned that way (aws/containers-roadmap#859), which is why the ssm backend is not pinned.
"""
from __future__ import annotations

import re

import pytest

from test_ecs_deploy import ecs  # noqa: F401 - the fixture

from dockyard.clients.secretsmanager import split_pinned

FIRST = "first-Secret-value-3f9a"
SECOND = "second-Secret-value-71c2"
PINNED = re.compile(r"^arn:aws:secretsmanager:us-east-1:\d{12}:secret:(?P<name>[\w/+=.@-]+)-[A-Za-z0-9]{6}:::"
                    r"(?P<version>[0-9a-f-]{36})$")


@pytest.fixture
def sm_project(ecs):  # noqa: F811
    ecs.project.configure({"dockyard": {"ecs": {"env_file": True, "secret_keys": ["DJANGO_SECRET_KEY"],
                                                "secrets_backend": "secretsmanager"}}})
    set_secret(ecs, FIRST)
    return ecs


def set_secret(ecs, value: str) -> None:  # noqa: F811
    env_file = ecs.project.root / "environments" / "prod" / ".env"
    lines = [line for line in env_file.read_text().splitlines() if not line.startswith("DJANGO_SECRET_KEY=")]
    env_file.write_text("\n".join(lines) + f"\nDJANGO_SECRET_KEY={value}\n")


def web_secret(ecs, revision: int) -> str:  # noqa: F811
    web = {c["name"]: c for c in ecs.definition(revision)["containerDefinitions"]}["web"]
    (secret,) = web["secrets"]
    assert secret["name"] == "DJANGO_SECRET_KEY"
    return secret["valueFrom"]


def resolved(ecs, value_from: str) -> str:  # noqa: F811
    """What ECS would give the container: the exact version the valueFrom names."""
    arn, version = split_pinned(value_from)
    return ecs.aws.client("secretsmanager").get_secret_value(SecretId=arn, VersionId=version)["SecretString"]


def test_each_revision_pins_its_secret_version_and_a_rollback_gets_the_old_value(sm_project):
    ecs = sm_project
    name = f"{ecs.project.app}/prod/DJANGO_SECRET_KEY"
    diff = ecs.inv("ecs.diff", "--version", "1.2.4")
    assert diff.returncode == 0, diff.stderr
    assert f'Set secret "DJANGO_SECRET_KEY" in Secrets Manager {name} to: "********" (new secret ' in diff.stdout
    assert f'"<new secret>{name}:::' in diff.stdout  # its ARN exists once the deploy created it

    first = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Write secret" in first.stdout and "a new secret" in first.stdout
    pinned_first = web_secret(ecs, 2)
    match = PINNED.match(pinned_first)
    assert match and match["name"] == name, pinned_first
    assert resolved(ecs, pinned_first) == FIRST

    unchanged = ecs.inv("ecs.diff", "--version", "1.2.3")  # the value is stored: nothing to write, same version
    assert "Set secret" not in unchanged.stdout and pinned_first not in unchanged.stdout.split("Changed secret")[-1]

    set_secret(ecs, SECOND)
    second = ecs.inv("ecs.deploy", "--version", "1.2.3", "--no-wait")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "a new version" in second.stdout
    pinned_second = web_secret(ecs, 3)
    assert PINNED.match(pinned_second) and split_pinned(pinned_second)[0] == split_pinned(pinned_first)[0]
    assert split_pinned(pinned_second)[1] != split_pinned(pinned_first)[1]
    assert resolved(ecs, pinned_second) == SECOND
    current = ecs.aws.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    assert current == SECOND

    # (--no-wait deploys are not "succeeded", so the revision is named.) moto never moves the PRIMARY deployment
    # off the service's first revision, so the rollback's wait ends in exit 10; the update itself is what counts here.
    back = ecs.inv("ecs.rollback", "--revision", "2")
    assert back.returncode == 10, back.stdout + back.stderr
    assert f"runs {ecs.project.app}:1, not {ecs.project.app}:2" in back.stderr
    assert ecs.service()["taskDefinition"].endswith(f"/{ecs.project.app}:2")
    assert resolved(ecs, web_secret(ecs, 2)) == FIRST  # the value that release ran with, though SECOND is current

    for result in (diff, first, unchanged, second, back):
        assert FIRST not in result.stdout + result.stderr and SECOND not in result.stdout + result.stderr


def test_a_dry_run_writes_no_secret(sm_project):
    ecs = sm_project
    dry = ecs.inv("ecs.deploy", "--version", "1.2.4", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Write secret" in dry.stdout and FIRST not in dry.stdout
    listed = ecs.aws.client("secretsmanager").list_secrets()["SecretList"]
    assert listed == [] and ecs.active() == [1]


def test_the_policies_name_the_secrets_for_the_deployer_and_the_execution_role(sm_project):
    import json

    ecs = sm_project
    ecs.project.configure({"dockyard": {"environments": {"prod": {"target": "ecs"}},
                                        "aws": {"region": "us-east-1"}}})
    printed = ecs.inv("ecs.policies")
    assert printed.returncode == 0, printed.stderr
    policies = json.loads(printed.stdout[printed.stdout.index("{"):])
    account = ecs.aws.client("sts").get_caller_identity()["Account"]
    wanted = f"arn:aws:secretsmanager:us-east-1:{account}:secret:{ecs.project.app}/prod/*"
    deployer = {s["Sid"]: s for s in policies["deployer"]["Statement"]}
    assert deployer["SecretVersions"]["Resource"] == [wanted]
    assert deployer["SecretVersions"]["Action"] == ["secretsmanager:CreateSecret", "secretsmanager:GetSecretValue",
                                                    "secretsmanager:PutSecretValue"]
    execution = {s["Sid"]: s for s in policies["task_execution_role"]["Statement"]}
    assert execution["SecretVersions"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert "Secrets" not in deployer  # no SSM parameters with this backend


def test_an_unknown_backend_is_one_line(ecs):  # noqa: F811
    ecs.project.configure({"dockyard": {"ecs": {"secrets_backend": "vault"}}})
    bad = ecs.inv("ecs.deploy", "--version", "1.2.4", "--dry-run")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "dockyard.ecs.secrets_backend: expected one of 'ssm', 'secretsmanager', got 'vault'" in bad.stderr
