"""The policies `inv ecs.policies` prints, under moto's IAM enforcement: enough for a deploy, and no statement spare.

A CI user gets exactly the printed deployer policy and runs `inv ecs.deploy`; then each statement in turn is taken
away and the deploy must fail with one line and exit 8. moto checks policies only for the calls it authorizes, and
only on resources for S3 out of the box: tests/fixtures/moto_resources.py makes it check the ECS, ECR, SSM and
Secrets Manager resources too. What moto never checks is listed in UNCHECKED, with the reason.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fixtures.aws import FAKE_CREDENTIALS, running_moto

from conftest import REPO

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
BUCKET = "dockyard-deploys"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
SETUP_CALLS = 3  # create_user, put_user_policy, create_access_key of the admin who sets the rest up

# Statements whose removal a deploy against moto cannot notice, and why:
UNCHECKED = {
    # iam:PassRole is an implicit check AWS makes when RegisterTaskDefinition names roles; moto makes none (and the
    # test's task definition names no role).
    "PassTaskRoles",
    # Reading the release command's log lines is best effort (a denial only hides them), and the test's task
    # definition has no awslogs configuration.
    "ReleaseCommandLogs",
}
#: Needed by what reads the audit records (`inv history`, `ecs.rollback` choosing the previous good release), not by
#: the deploy itself: checked with `inv history`.
READERS = {"LockAndAuditBucket"}


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory):
    site = tmp_path_factory.mktemp("moto-site")
    shutil.copy(Path(__file__).parent / "fixtures" / "moto_resources.py", site / "sitecustomize.py")
    enforcing = {"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS), "PYTHONPATH": str(site)}
    with running_moto(tmp_path_factory.mktemp("moto-iam-log"), enforcing) as server:
        yield server


class Account:
    """An admin session for the set-up, and a CI user whose one inline policy the test swaps."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.endpoint = endpoint
        anonymous = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                                 aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        anonymous.create_user(UserName="admin")
        anonymous.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
        key = anonymous.create_access_key(UserName="admin")["AccessKey"]
        self.admin = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                                   region_name="us-east-1")
        iam = self.client("iam")
        iam.create_user(UserName="ci")
        key = iam.create_access_key(UserName="ci")["AccessKey"]
        self.ci_env = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                       "AWS_DEFAULT_REGION": "us-east-1", "INVOKE_DOCKYARD_AWS_ENDPOINT_URL": endpoint,
                       "INVOKE_DOCKYARD_AWS_REGION": "us-east-1", "PYTHONPATH": str(REPO)}

    def client(self, service: str):
        return self.admin.client(service, endpoint_url=self.endpoint)

    def grant(self, policy: dict) -> None:
        self.client("iam").put_user_policy(UserName="ci", PolicyName="dockyard", PolicyDocument=json.dumps(policy))


@pytest.fixture(scope="module")
def account(iam_moto):
    return Account(iam_moto.endpoint)


def ecs_world(account: Account, project, *, bucket: str, backend: str = "ssm", release_command: str = "") -> None:
    app = project.app
    ecs = account.client("ecs")
    if not ecs.list_clusters()["clusterArns"]:
        ecs.create_cluster(clusterName="shop")
    if release_command and not ecs.list_container_instances(cluster="shop")["containerInstanceArns"]:
        # moto places a one-off EC2 task only on a registered container instance; its tasks then walk to STOPPED,
        # exit code 0, without running anything
        instance = account.client("ec2").run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
        ecs.register_container_instance(cluster="shop", instanceIdentityDocument=json.dumps(
            {"instanceId": instance["InstanceId"], "region": "us-east-1", "availabilityZone": "us-east-1a",
             "instanceType": "t2.micro", "imageId": "ami-12c6146b", "accountId": "123456789012",
             "privateIp": "10.0.0.1", "version": "2017-09-30", "architecture": "x86_64"}))
    ecs.register_task_definition(family=app, networkMode="bridge", tags=[{"key": "team", "value": "shop"}],
                                 containerDefinitions=[{"name": "web", "image": f"{REGISTRY}/{app}:1.2.3",
                                                        "memory": 256}])
    service = service_name(app, bucket, backend, release_command)
    ecs.create_service(cluster="shop", serviceName=service, taskDefinition=app, desiredCount=0)
    ecr = account.client("ecr")
    try:
        ecr.create_repository(repositoryName=app)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    for tag in ("1.2.3", "1.2.4"):
        ecr.put_image(repositoryName=app, imageTag=tag, imageManifest=json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "config": {"digest": f"sha256:{'0' * 63}{tag[-1]}"}, "layers": []}))
    if bucket and bucket not in [b["Name"] for b in account.client("s3").list_buckets()["Buckets"]]:
        account.client("s3").create_bucket(Bucket=bucket)
    settings = {"cluster": "shop", "service": service, "containers": ["web"], "bucket": bucket, "keep": 10,
                "poll_interval": 0}
    if not bucket:  # the SSM store, and a secret the deploy writes to SSM
        settings.update(env_file=True, secret_keys=["DJANGO_SECRET_KEY"])
    if backend == "secretsmanager":  # a secret the deploy creates in Secrets Manager and pins by version
        settings.update(env_file=True, secret_keys=["DJANGO_SECRET_KEY"], secrets_backend="secretsmanager")
    project.configure({"dockyard": {"image": {"repository": f"{REGISTRY}/{app}"}, "ecs": settings,
                                    "environments": {"prod": {"target": "ecs", "release_command": release_command,
                                                              "release_command_timeout": 30}}}})
    project.commit("ecs settings")
    for tag in ("v1.2.3", "v1.2.4"):
        project.git("tag", "-a", tag, "-m", f"release {tag}")


def clear_lock(account: Account, bucket: str, app: str) -> None:
    if bucket:
        account.client("s3").delete_object(Bucket=bucket, Key=f"dockyard/{app}/locks/prod.json")
    else:
        try:
            account.client("ssm").delete_parameter(Name=f"/dockyard/{app}/locks/prod")
        except Exception:  # noqa: BLE001 - not held
            pass


def service_name(app: str, bucket: str, backend: str = "ssm", release_command: str = "") -> str:
    return (f"{app}-{'s3' if bucket else 'ssm'}" + ("-sm" if backend == "secretsmanager" else "")
            + ("-release" if release_command else ""))


@pytest.mark.parametrize("bucket, backend, release_command",
                         [(BUCKET, "ssm", ""), ("", "ssm", ""), (BUCKET, "secretsmanager", ""),
                          (BUCKET, "ssm", "python manage.py migrate")],
                         ids=["s3-store", "ssm-store-and-secrets", "s3-store-and-secretsmanager", "release-command"])
def test_the_printed_deployer_policy_is_enough_and_every_statement_is_needed(account, sample_project, bucket,
                                                                              backend, release_command):
    ecs_world(account, sample_project, bucket=bucket, backend=backend, release_command=release_command)
    printed = sample_project.inv("ecs.policies")
    assert printed.returncode == 0, printed.stderr
    deployer = json.loads(printed.stdout)["deployer"]
    statements = deployer["Statement"]

    def deploy(version: str):
        return sample_project.inv("ecs.deploy", "--version", version, "--no-wait", env=account.ci_env)

    account.grant(deployer)
    ran = deploy("1.2.4")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    service = account.client("ecs").describe_services(
        cluster="shop", services=[service_name(sample_project.app, bucket, backend, release_command)])["services"][0]
    assert account.client("ecs").describe_task_definition(taskDefinition=service["taskDefinition"])[
        "taskDefinition"]["containerDefinitions"][0]["image"].endswith(":1.2.4")

    refused: dict[str, str] = {}
    version = "1.2.3"
    for statement in statements:
        account.grant({**deployer, "Statement": [s for s in statements if s is not statement]})
        clear_lock(account, bucket, sample_project.app)
        result = deploy(version)
        if result.returncode == 0:
            version = "1.2.4" if version == "1.2.3" else "1.2.3"  # it moved: the next one deploys the other
            continue
        assert result.returncode == 8, (statement["Sid"], result.stdout + result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in result.stderr, (statement["Sid"], result.stderr)
        refused[statement["Sid"]] = lines[0]
    clear_lock(account, bucket, sample_project.app)
    sids = {s["Sid"] for s in statements}
    assert set(refused) == sids - UNCHECKED - READERS, refused

    account.grant(deployer)
    history = sample_project.inv("history", "--env", "prod", env=account.ci_env)
    assert history.returncode == 0 and "1.2.4" in history.stdout, history.stdout + history.stderr
    for sid in READERS & sids:
        account.grant({**deployer, "Statement": [s for s in statements if s["Sid"] != sid]})
        denied = sample_project.inv("history", "--env", "prod", env=account.ci_env)
        assert denied.returncode == 8 and len(denied.stderr.strip().splitlines()) == 1, (sid, denied.stderr)
