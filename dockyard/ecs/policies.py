"""Least-privilege IAM policies for ``ecs.deploy`` / ``ecs.rollback``, derived from the settings in force (pure data).

Two principals: the deployer (CI) and the task execution role (what ECS uses to pull the image and resolve the
``secrets``). Task-definition actions take no resource-level permission (the Service Authorization Reference lists
``*`` for Describe/List/DeregisterTaskDefinition); the service, the family's new revisions, the lock and audit store,
the secrets and the repository are named.
"""
from __future__ import annotations

from typing import Any

from ..clients.ssm import parameter_name
from ..eb.policies import VERSION, ecr_pull, scope, scope_notes, statement


def policies(settings: Any, *, account: str = "") -> dict[str, Any]:
    """``{"deployer": policy, "task_execution_role": policy or absent, "notes": [...]}`` for every ECS environment."""
    partition, region, account = scope(settings, account)
    names = [name for name, env in settings.environments.items() if env.target == "ecs"]
    targets = [settings.ecs.target(name) for name in names]
    ecs_arn = f"arn:{partition}:ecs:{region}:{account}"
    ssm_arn = f"arn:{partition}:ssm:{region}:{account}:parameter"
    repository = settings.repository.split("/", 1)[-1] if "/" in settings.repository else ""
    is_ecr = settings.registry.kind == "ecr"
    deployer = [
        statement("Service", ["ecs:DescribeServices", "ecs:UpdateService"],
                  sorted({f"{ecs_arn}:service/{t.cluster}/{t.service}" for t in targets})),
        statement("TaskDefinitions", ["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions",
                                      "ecs:DeregisterTaskDefinition"], ["*"]),
        # A new revision of the family; it copies the live definition's tags (TagResource) and hands its roles to
        # ECS (PassRole, below).
        statement("NewRevision", ["ecs:RegisterTaskDefinition", "ecs:TagResource"],
                  sorted({f"{ecs_arn}:task-definition/{t.family}:*" for t in targets})),
        {"Sid": "PassTaskRoles", "Effect": "Allow", "Action": ["iam:PassRole"],
         "Resource": [f"arn:{partition}:iam::{account}:role/*"],
         "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
    ]
    released = [t for name, t in zip(names, targets) if settings.environments[name].release_command]
    if released:
        # The release command: RunTask takes the task-definition resource (the new revision of the family), and
        # DescribeTasks/StopTask the task one, arn:...:task/<cluster>/<task id> (Service Authorization Reference,
        # "Actions, resources, and condition keys for Amazon Elastic Container Service"). RunTask hands the task its
        # roles, which PassTaskRoles above allows.
        deployer += [
            statement("ReleaseCommandRun", ["ecs:RunTask"],
                      sorted({f"{ecs_arn}:task-definition/{t.family}:*" for t in released})),
            statement("ReleaseCommandTask", ["ecs:DescribeTasks", "ecs:StopTask"],
                      sorted({f"{ecs_arn}:task/{t.cluster}/*" for t in released})),
            # its output, from the app container's awslogs stream (the group is the task definition's, not a
            # setting): reading it is best effort, a denial only hides the lines
            statement("ReleaseCommandLogs", ["logs:GetLogEvents"],
                      [f"arn:{partition}:logs:{region}:{account}:log-group:*:log-stream:*"]),
        ]
    if is_ecr and any(t.check_image for t in targets):
        deployer.append(statement("ReleaseImage", ["ecr:DescribeImages"],
                                  [f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"]))
    buckets = sorted({t.bucket for t in targets if t.bucket})
    if buckets:
        keys = sorted({f"arn:{partition}:s3:::{t.bucket}/{t.prefix.strip('/')}/{settings.app}/*"
                       for t in targets if t.bucket})
        deployer += [statement("LockAndAudit", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], keys),
                     statement("LockAndAuditBucket", ["s3:ListBucket"], [f"arn:{partition}:s3:::{b}" for b in buckets])]
    ssm_stores = sorted({parameter_name(t.prefix, settings.app) for t in targets if not t.bucket})
    if ssm_stores:
        deployer.append(statement("LockAndAuditParameters", [
            "ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter", "ssm:GetParametersByPath"],
            [f"{ssm_arn}{path}/*" for path in ssm_stores]))
    secret_paths = sorted({(t.ssm_prefix.rstrip("/") + "/") for t in targets
                           if t.secret_keys and t.secrets_backend == "ssm"})
    # Secrets Manager ARNs end in "-" and six random characters: the names' prefix, then "*"
    sm_secrets = sorted({f"arn:{partition}:secretsmanager:{region}:{account}:secret:{t.secret_name('')}*"
                         for t in targets if t.secret_keys and t.secrets_backend == "secretsmanager"})
    if secret_paths:  # the deploy compares the stored values and writes the changed ones
        deployer.append(statement("Secrets", ["ssm:GetParameters", "ssm:PutParameter"],
                                  [f"{ssm_arn}{p}*" for p in secret_paths]))
    if sm_secrets:  # the deploy reads the current versions and writes (creates) the changed ones
        deployer.append(statement("SecretVersions", ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                                                     "secretsmanager:CreateSecret"], sm_secrets))
    execution: list[dict[str, Any]] = []
    if is_ecr:
        execution += ecr_pull(partition, region, account, repository)
    if secret_paths:
        execution.append(statement("Secrets", ["ssm:GetParameters"], [f"{ssm_arn}{p}*" for p in secret_paths]))
    if sm_secrets:
        execution.append(statement("SecretVersions", ["secretsmanager:GetSecretValue"], sm_secrets))
    notes = ["no environment has target: ecs; these policies grant nothing useful"] if not targets else []
    notes += scope_notes(region, account)
    out: dict[str, Any] = {"deployer": {"Version": VERSION, "Statement": deployer}}
    if execution:
        out["task_execution_role"] = {"Version": VERSION, "Statement": execution}
        notes.append("attach task_execution_role to the role the task definition names as executionRoleArn; "
                     "add logs:CreateLogStream/PutLogEvents if its containers log to CloudWatch")
    else:
        notes.append("the task execution role needs nothing from dockyard (no ECR registry, no secret keys)")
    out["notes"] = notes
    return out
