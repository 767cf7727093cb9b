"""`inv ecs.policies` checked with parliament (what each statement is for is proven in test_iam_policies_e2e.py)."""
from __future__ import annotations

import pytest
from test_eb_policies import findings

from dockyard.config import parse_settings
from dockyard.ecs.policies import policies

# What parliament (1.6.4) reports on these correct policies, and why it stays:
DOCUMENTED = {
    # ECR pulls need the registry token; AWS's AmazonECSTaskExecutionRolePolicy grants it on "*" too.
    "CREDENTIALS_EXPOSURE:ecr:getauthorizationtoken",
    # RegisterTaskDefinition hands the task its roles; PassRole is limited to ECS tasks by its condition, as in AWS's
    # own ECS policies.
    "PERMISSIONS_MANAGEMENT_ACTIONS:iam:passrole",
}


def settings_of(**ecs):
    return parse_settings({"app": "shop", "image": {"repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop"},
                           "ecs": {"cluster": "shop", "service": "shop-web", **ecs},
                           "environments": {"prod": {"target": "ecs"}}})


@pytest.mark.parametrize("ecs", [{"bucket": "deploys"}, {"secret_keys": ["KEY"]},
                                 {"secret_keys": ["KEY"], "secrets_backend": "secretsmanager"}],
                         ids=["s3-store", "ssm+secrets", "secretsmanager"])
def test_every_printed_policy_passes_parliament(ecs):
    doc = policies(settings_of(**ecs))
    for principal in ("deployer", "task_execution_role"):
        assert doc[principal]["Statement"]
        assert findings(doc[principal]) <= DOCUMENTED, principal


def test_the_arns_name_the_service_the_family_and_the_secret_path():
    doc = policies(settings_of(secret_keys=["KEY"]))
    by_sid = {s["Sid"]: s for s in doc["deployer"]["Statement"]}
    assert by_sid["Service"]["Resource"] == ["arn:aws:ecs:us-east-1:123456789012:service/shop/shop-web"]
    assert by_sid["NewRevision"]["Resource"] == ["arn:aws:ecs:us-east-1:123456789012:task-definition/shop:*"]
    assert by_sid["Secrets"]["Resource"] == ["arn:aws:ssm:us-east-1:123456789012:parameter/shop/prod/*"]
    assert by_sid["LockAndAuditParameters"]["Resource"] == [
        "arn:aws:ssm:us-east-1:123456789012:parameter/dockyard/shop/*"]
    execution = {s["Sid"]: s for s in doc["task_execution_role"]["Statement"]}
    assert execution["Secrets"]["Action"] == ["ssm:GetParameters"]


def test_a_release_command_adds_run_describe_and_stop_task_on_the_family_and_the_cluster():
    plain = {s["Sid"] for s in policies(settings_of())["deployer"]["Statement"]}
    assert not {"ReleaseCommandRun", "ReleaseCommandTask"} & plain  # least privilege: only when one is set
    doc = policies(parse_settings({
        "app": "shop", "image": {"repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop"},
        "ecs": {"cluster": "shop", "service": "shop-web"},
        "environments": {"prod": {"target": "ecs", "release_command": "python manage.py migrate"}}}))
    by_sid = {s["Sid"]: s for s in doc["deployer"]["Statement"]}
    assert by_sid["ReleaseCommandRun"]["Action"] == ["ecs:RunTask"]
    assert by_sid["ReleaseCommandRun"]["Resource"] == ["arn:aws:ecs:us-east-1:123456789012:task-definition/shop:*"]
    assert sorted(by_sid["ReleaseCommandTask"]["Action"]) == ["ecs:DescribeTasks", "ecs:StopTask"]
    assert by_sid["ReleaseCommandTask"]["Resource"] == ["arn:aws:ecs:us-east-1:123456789012:task/shop/*"]
    assert by_sid["PassTaskRoles"]["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert findings(doc["deployer"]) <= DOCUMENTED
