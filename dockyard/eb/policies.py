"""Least-privilege IAM policies for an Elastic Beanstalk deploy, derived from the settings in force (pure data).

Two principals: the CI user (or role) that runs ``inv deploy`` / ``eb.setenv`` / ``eb.swap``, and the EB instance
profile that pulls the image and reads the secrets. Resources are as narrow as the Service Authorization Reference
allows for each action; an action that takes no resource-level permission (the ``Describe*`` ones) gets ``*``.

``UpdateEnvironment`` is not only an EB call: EB updates the environment's CloudFormation stack and its Auto
Scaling group with the caller's permissions, and reads and writes the environment's storage bucket
(``elasticbeanstalk-<region>-<account>``) — the EB developer guide's user-policy pages list these services beside EB's
own actions. Those statements are scoped to the ``awseb-`` names EB gives the resources it creates.
"""
from __future__ import annotations

import re
from typing import Any

#: ``<account>.dkr.ecr.<region>.amazonaws.com``: an ECR registry host names its account and region.
ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")

VERSION = "2012-10-17"


def scope(settings: Any, account: str = "") -> tuple[str, str, str]:
    """(partition, region, account) for ARNs: ``aws.region``, else the ECR registry host's; the account given (CI's
    role ARN names it), else the ECR host's; ``*`` when unknown."""
    host = settings.repository.split("/", 1)[0]
    found = ECR_HOST.match(host)
    region = settings.aws_region or (found.group("region") if found else "") or "*"
    account = account or (found.group("account") if found else "") or "*"
    partition = "aws-cn" if region.startswith("cn-") else "aws"
    return partition, region, account


def statement(sid: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}


def ecr_pull(partition: str, region: str, account: str, repository: str) -> list[dict[str, Any]]:
    """What pulling ``repository`` from ECR takes: the registry token (no resource-level permission) and the layers."""
    return [statement("EcrAuth", ["ecr:GetAuthorizationToken"], ["*"]),
            statement("EcrPull", ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
                                  "ecr:BatchGetImage"],
                      [f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"])]


def scope_notes(region: str, account: str) -> list[str]:
    if "*" in (region, account):
        return ["region or account unknown (set dockyard.aws.region; an ECR image.repository names both): "
                "'*' stands in for them"]
    return []


def secret_prefixes(eb: Any) -> list[str]:
    """The paths the ``secret_keys`` are stored under, one per environment (``EbSettings.secret_prefix``)."""
    if not eb.secret_keys:
        return []
    return sorted({eb.secret_prefix(env) for env in eb.environments} or {eb.secret_prefix("ENV")})


def secret_statements(eb: Any, partition: str, region: str, account: str) -> tuple[list[dict], list[dict]]:
    """(the deployer's, the instance profile's) statements for the secret keys' backend.

    The deploy, ``eb.setenv`` and ``eb.rollback`` read the stored current values (and a recorded version's, to
    restore it) and write the changed ones; the instances read them through EB's environment secrets
    (``ssm:GetParameters`` / ``secretsmanager:GetSecretValue`` on those ARNs; a customer managed KMS key needs
    ``kms:Decrypt`` as well, granted on the key: see the notes)."""
    prefixes = secret_prefixes(eb)
    if not prefixes:
        return [], []
    if eb.secrets_backend == "secretsmanager":
        # a secret's ARN ends with a random suffix (-XXXXXX) AWS adds: the name, then the wildcard
        arns = [f"arn:{partition}:secretsmanager:{region}:{account}:secret:{p.lstrip('/')}*" for p in prefixes]
        return ([statement("Secrets", ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                                       "secretsmanager:CreateSecret"], arns)],
                [statement("Secrets", ["secretsmanager:GetSecretValue"], arns)])
    arns = [f"arn:{partition}:ssm:{region}:{account}:parameter{p}*" for p in prefixes]
    return ([statement("Secrets", ["ssm:GetParameter", "ssm:PutParameter"], arns)],
            [statement("Secrets", ["ssm:GetParameters"], arns)])


def policies(settings: Any, eb: Any, *, account: str = "") -> dict[str, Any]:
    """``{"ci_user": policy, "instance_profile": policy or absent, "notes": [...]}``."""
    partition, region, account = scope(settings, account)
    app = eb.application
    names = sorted({t.name for t in eb.environments.values()} | {t.twin for t in eb.environments.values() if t.twin})
    has_twin = any(t.twin for t in eb.environments.values())
    bucket_arn = f"arn:{partition}:s3:::{eb.bucket or 'BUCKET'}"
    eb_arn = f"arn:{partition}:elasticbeanstalk:{region}:{account}"
    storage = f"arn:{partition}:s3:::elasticbeanstalk-{region}-{account}"
    ssm_arn = f"arn:{partition}:ssm:{region}:{account}:parameter"
    deploy_actions = ["elasticbeanstalk:UpdateEnvironment"] + (["elasticbeanstalk:SwapEnvironmentCNAMEs"]
                                                               if has_twin else [])
    ci = [
        statement("Bundles", ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"], [f"{bucket_arn}/{eb.key()}/*"]),
        statement("Bucket", ["s3:ListBucket", "s3:GetBucketLocation"], [bucket_arn]),
        # CreateApplicationVersion is authorized on the application as well as on the new version.
        statement("Versions", ["elasticbeanstalk:CreateApplicationVersion"],
                  [f"{eb_arn}:application/{app}", f"{eb_arn}:applicationversion/{app}/*"]),
        statement("Deploy", deploy_actions, [f"{eb_arn}:environment/{app}/{name}" for name in names]),
        statement("Read", ["elasticbeanstalk:DescribeApplications", "elasticbeanstalk:DescribeApplicationVersions",
                           "elasticbeanstalk:DescribeEnvironments", "elasticbeanstalk:DescribeEvents",
                           "elasticbeanstalk:DescribeConfigurationSettings",
                           "elasticbeanstalk:DescribeEnvironmentHealth"], ["*"]),
        statement("EnvironmentStack", [
            "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
            "cloudformation:DescribeStackResource", "cloudformation:DescribeStackResources",
            "cloudformation:GetTemplate", "cloudformation:ListStackResources", "cloudformation:UpdateStack",
            "cloudformation:CancelUpdateStack"],
            [f"arn:{partition}:cloudformation:{region}:{account}:stack/awseb-*"]),
        statement("EnvironmentScaling", ["autoscaling:SuspendProcesses", "autoscaling:ResumeProcesses",
                                         "autoscaling:UpdateAutoScalingGroup"],
                  [f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/awseb-*"]),
        statement("EnvironmentRead", [
            "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeScalingActivities", "autoscaling:DescribeLaunchConfigurations",
            "ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets",
            "ec2:DescribeVpcs", "ec2:DescribeLaunchTemplateVersions",
            "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeInstanceHealth"], ["*"]),
        statement("EnvironmentStorage", ["s3:GetObject", "s3:PutObject"], [f"{storage}/*"]),
        statement("EnvironmentStorageBucket", ["s3:ListBucket", "s3:GetBucketLocation"], [storage]),
    ]
    ci_secrets, instance_secrets = secret_statements(eb, partition, region, account)
    ci += ci_secrets
    instance: list[dict[str, Any]] = []
    if eb.auth == "dockercfg":
        instance.append(statement("Dockercfg", ["s3:GetObject"], [f"{bucket_arn}/{eb.dockercfg_key}"]))
    if eb.auth == "ecr":
        repository = settings.repository.split("/", 1)[-1]
        instance += ecr_pull(partition, region, account, repository)
    if eb.auth == "ssm":
        instance.append(statement("RegistryLogin", ["ssm:GetParameters"],
                                  [f"{ssm_arn}{eb.ssm_username}", f"{ssm_arn}{eb.ssm_password}"]))
    instance += instance_secrets
    notes = scope_notes(region, account)
    if instance_secrets:
        notes.append(f"secret keys in {eb.secrets_backend}: with a customer managed KMS key, grant kms:Decrypt on "
                     "it to the instance profile (and kms:Encrypt, kms:GenerateDataKey to the deployer)")
    out: dict[str, Any] = {"ci_user": {"Version": VERSION, "Statement": ci}}
    if instance:
        out["instance_profile"] = {"Version": VERSION, "Statement": instance}
        notes.append("attach instance_profile to the EB instance profile role (aws-elasticbeanstalk-ec2-role)")
    else:
        notes.append(f"the instance profile needs nothing from dockyard (auth {eb.auth}, no secret keys)")
    out["notes"] = notes
    return out
