"""`inv ecs.deploy` with `environments.prod.release_command`: one RunTask of the new revision before UpdateService.

Against a moto server whose ECS runs a one-off task's command override as a local process (a stand-in agent:
tests/fixtures/moto_ecs_agent.py), so the exit code, the stop reason and the CloudWatch log lines the deploy reads
back are a real process's. What moto cannot show: the command running in the release image, or reaching the
database over the service's network; the stand-in runs it on the moto host with the container's environment.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fixtures.aws import running_moto
from fixtures.plans import planned_steps, ran_steps

from conftest import REPO

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
BUCKET = "dockyard-deploys"
LOG_GROUP = "/ecs/shop"
STARTED_BY = "dockyard-release-command"


@pytest.fixture(scope="module")
def agent_moto(tmp_path_factory):
    site = tmp_path_factory.mktemp("moto-agent-site")
    shutil.copy(Path(__file__).parent / "fixtures" / "moto_ecs_agent.py", site / "sitecustomize.py")
    with running_moto(tmp_path_factory.mktemp("moto-agent-log"), {"PYTHONPATH": str(site)}) as server:
        yield server


class World:
    def __init__(self, project, aws, marker: Path):
        self.project = project
        self.aws = aws
        self.ecs = aws.client("ecs")
        self.marker = marker
        self.repository = f"{REGISTRY}/{project.app}"

    def inv(self, *args):
        return self.project.inv(*args, env={**self.aws.env, "PYTHONPATH": str(REPO)}, timeout=240)

    def release_command(self, script: str, timeout: int = 60) -> None:
        self.project.configure({"dockyard": {"environments": {"prod": {
            "release_command": f"sh -c {json.dumps(script)}", "release_command_timeout": timeout}}}})

    def service(self) -> dict:
        return self.ecs.describe_services(cluster="shop", services=["shop-web"])["services"][0]

    def one_off_tasks(self) -> list[dict]:
        arns = self.ecs.list_tasks(cluster="shop", startedBy=STARTED_BY)["taskArns"]
        return self.ecs.describe_tasks(cluster="shop", tasks=arns)["tasks"] if arns else []

    def records(self) -> list[dict]:
        s3 = self.aws.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents") or []]
        return [json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in sorted(keys) if "/audit/" in k]


@pytest.fixture
def world(agent_moto, sample_project, tmp_path):
    agent_moto.reset()
    w = World(sample_project, agent_moto, tmp_path / "migrated")
    sample_project.configure({"dockyard": {
        "image": {"repository": w.repository},
        "ecs": {"cluster": "shop", "service": "shop-web", "containers": ["web"], "bucket": BUCKET, "keep": 3,
                "timeout": 5, "rollback_timeout": 5, "poll_interval": 0.2},
    }})
    sample_project.commit("ecs settings")
    for tag in ("v1.2.3", "v1.2.4"):
        sample_project.git("tag", "-a", tag, "-m", f"release {tag}")
    ec2 = agent_moto.client("ec2")
    w.ecs.create_cluster(clusterName="shop")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    w.ecs.register_container_instance(cluster="shop", instanceIdentityDocument=json.dumps(
        {"instanceId": instance["InstanceId"], "region": "us-east-1", "availabilityZone": "us-east-1a",
         "instanceType": "t2.micro", "imageId": "ami-12c6146b", "accountId": "123456789012",
         "privateIp": "10.0.0.1", "version": "2017-09-30", "architecture": "x86_64"}))
    w.ecs.register_task_definition(family=sample_project.app, networkMode="bridge", containerDefinitions=[
        {"name": "web", "image": f"{w.repository}:1.2.3", "memory": 256,
         "environment": [{"name": "MARKER", "value": str(w.marker)}],
         "logConfiguration": {"logDriver": "awslogs", "options": {
             "awslogs-group": LOG_GROUP, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "shop"}}}])
    w.ecs.create_service(cluster="shop", serviceName="shop-web", taskDefinition=sample_project.app, desiredCount=0)
    ecr = agent_moto.client("ecr")
    ecr.create_repository(repositoryName=sample_project.app)
    for tag in ("1.2.3", "1.2.4"):
        ecr.put_image(repositoryName=sample_project.app, imageTag=tag, imageManifest=json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "config": {"digest": f"sha256:{'0' * 63}{tag[-1]}"}, "layers": []}))
    agent_moto.client("s3").create_bucket(Bucket=BUCKET)
    return w


MIGRATE = 'echo "applying 0002_orders"; date +%s.%N >> "$MARKER"; echo "migrated"'


def test_a_succeeding_release_command_runs_once_on_the_new_revision_before_the_service_moves(world):
    world.release_command(MIGRATE)
    result = world.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert result.returncode == 0, result.stdout + result.stderr
    app = world.project.app
    assert world.service()["taskDefinition"].endswith(f"/{app}:2")
    tasks = world.one_off_tasks()
    assert len(tasks) == 1  # exactly one RunTask per deploy
    task = tasks[0]
    assert task["taskDefinitionArn"].endswith(f"/{app}:2")  # the new revision, not the live one
    assert task["overrides"]["containerOverrides"] == [{"name": "web", "command": ["sh", "-c", MIGRATE]}]
    assert task["lastStatus"] == "STOPPED" and task["containers"][0]["exitCode"] == 0
    ran = world.marker.read_text().split()
    assert len(ran) == 1  # the migration ran exactly once
    primary = next(d for d in world.service()["deployments"] if d["status"] == "PRIMARY")
    assert float(ran[0]) <= primary["createdAt"].timestamp()  # before the service was pointed at the new revision
    assert "| applying 0002_orders" in result.stdout and "| migrated" in result.stdout  # its log stream, shown
    record = world.records()[-1]
    assert (record["result"], record["extra"]["release_command"]) == ("started", "succeeded")


def test_a_failing_release_command_leaves_the_service_on_the_old_revision_and_exits_10(world):
    world.release_command('echo "applying 0003_broken"; echo "relation orders does not exist" >&2; exit 3')
    result = world.inv("ecs.deploy", "--version", "1.2.4")
    assert result.returncode == 10, result.stdout + result.stderr
    app = world.project.app
    assert "Traceback" not in result.stderr
    assert "release command 'sh -c" in result.stderr and "exited 3" in result.stderr
    assert f"{app}:1 still serves" in result.stderr
    assert "  | relation orders does not exist" in result.stderr  # its last output lines
    assert world.service()["taskDefinition"].endswith(f"/{app}:1")  # UpdateService never called
    assert [d["taskDefinition"].rsplit("/", 1)[1] for d in world.service()["deployments"]] == [f"{app}:1"]
    assert [s.split(" ")[0] for s in ran_steps(result.stdout)] == ["Take", "Register", "Run"]
    assert len(world.one_off_tasks()) == 1
    record = world.records()[-1]
    assert record["result"] == "failed" and record["detail"].startswith("release command failed: exited 3")
    assert record["extra"]["release_command"].startswith("failed: exited 3")
    assert record["previous_label"] == f"{app}:1"
    s3 = world.aws.client("s3")
    assert not [o for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents") or [] if "/locks/" in o["Key"]]


def test_a_release_command_past_its_timeout_is_stopped_and_nothing_moves(world):
    world.release_command("echo started; sleep 60", timeout=2)
    result = world.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert result.returncode == 10, result.stdout + result.stderr
    assert "did not finish within 2s (release_command_timeout)" in result.stderr
    task = world.one_off_tasks()[0]
    assert task["lastStatus"] == "STOPPED" and task["stoppedReason"].startswith("dockyard: release command ran")
    assert world.service()["taskDefinition"].endswith(f"/{world.project.app}:1")


def test_dry_run_shows_the_release_step_and_runs_nothing(world):
    world.release_command(MIGRATE)
    dry = world.inv("ecs.deploy", "--version", "1.2.4", "--no-wait", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    steps = planned_steps(dry.stdout)
    assert [s.split(" ")[0] for s in steps] == ["Take", "Register", "Run", "Update", "Deregister"]
    assert "command override of container web: sh -c" in dry.stdout and "launchType=EC2" in dry.stdout
    assert world.one_off_tasks() == [] and not world.marker.exists()
    real = world.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert real.returncode == 0, real.stdout + real.stderr
    assert ran_steps(real.stdout) == steps


def test_skip_release_command_runs_no_task_and_the_audit_record_says_so(world):
    world.release_command("exit 1")
    world.project.configure({"dockyard": {"environments": {"prod": {"target": "ecs"}}}})
    result = world.inv("deploy", "--env", "prod", "--version", "1.2.4", "--no-wait", "--skip-release-command")
    assert result.returncode == 0, result.stdout + result.stderr
    assert """release command "sh -c 'exit 1'" skipped (--skip-release-command)""" in result.stdout
    assert world.one_off_tasks() == []
    assert world.service()["taskDefinition"].endswith(f"/{world.project.app}:2")
    assert world.records()[-1]["extra"] == {"release_command": "skipped (--skip-release-command)"}
