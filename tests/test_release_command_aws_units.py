"""The pure parts of the ECS and EB release command: where a task logs, how it is placed, why it failed, the bundle."""
from __future__ import annotations

from pathlib import Path

from dockyard.clients.ecs import TaskState, _placement
from dockyard.core.release_command import ReleaseCommand
from dockyard.core.versions import NO_RELEASE_COMMAND, label_version
from dockyard.ecs.release import failure_reason, log_stream_of
from dockyard.ecs.taskdef import TaskDefinition

REPO = Path(__file__).resolve().parent.parent


def definition(log_options: dict | None) -> TaskDefinition:
    web = {"name": "web", "image": "app:1", "memory": 64}
    if log_options is not None:
        web["logConfiguration"] = {"logDriver": "awslogs", "options": log_options}
    return TaskDefinition.from_api({"family": "app", "revision": 2, "taskDefinitionArn": "arn:x:task-definition/app:2",
                                    "containerDefinitions": [web]})


def test_the_log_stream_is_known_only_with_awslogs_and_a_stream_prefix():
    logs = log_stream_of(definition({"awslogs-group": "/ecs/app", "awslogs-stream-prefix": "app"}), "web")
    assert logs is not None and logs.stream("web", "arn:aws:ecs:r:1:task/shop/abc123") == "app/web/abc123"
    assert log_stream_of(definition({"awslogs-group": "/ecs/app"}), "web") is None  # EC2 names it by container id
    assert log_stream_of(definition(None), "web") is None


def test_a_one_off_task_is_placed_like_the_service():
    network = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"]}}
    fargate = dict(_placement({"launchType": "FARGATE", "platformVersion": "1.4.0", "networkConfiguration": network}))
    assert fargate == {"launchType": "FARGATE", "platformVersion": "1.4.0", "networkConfiguration": network}
    strategy = [{"capacityProvider": "cp", "weight": 1}]
    assert dict(_placement({"launchType": "EC2", "capacityProviderStrategy": strategy, "networkConfiguration": {}})) \
        == {"capacityProviderStrategy": strategy}  # RunTask takes one or the other; an empty configuration is none


def test_a_stopped_task_fails_unless_its_container_exited_0():
    done = TaskState("arn:t/shop/1", "STOPPED", "EssentialContainerExited", "Essential container in task exited", 0, "")
    assert failure_reason(done) == ""
    failed = TaskState("arn:t/shop/1", "STOPPED", "EssentialContainerExited", "Essential container exited", 3, "")
    assert failure_reason(failed).startswith("exited 3 (task 1: EssentialContainerExited")
    never = TaskState("arn:t/shop/1", "STOPPED", "TaskFailedToStart", "CannotPullContainerError", None, "")
    assert failure_reason(never).startswith("stopped without an exit code") and "CannotPull" in failure_reason(never)


def test_a_skipped_release_command_label_still_names_its_release():
    assert str(label_version(f"2.0.0-rc.1-abc1234{NO_RELEASE_COMMAND}")) == "2.0.0-rc.1"


def test_the_eb_bundle_runs_the_command_leader_only_without_secrets_on_a_command_line():
    import yaml

    from dockyard.eb.bundle import RELEASE_CONFIG, RELEASE_SCRIPT, BundleInputs, build_bundle

    class Env:
        name = "prod"
        health_path = "/health/"

    bundle = build_bundle(BundleInputs(
        project_root=REPO, env=Env(), eb_environment="shop-prod", platform="v1", image="reg:5000/shop:1.0.0",
        auth="none", registry="reg:5000", dockercfg=None,
        release_command=ReleaseCommand(("python", "manage.py", "migrate", "--noinput"), 120)))
    config = yaml.safe_load(bundle.text(RELEASE_CONFIG))
    assert config == {"container_commands": {"00_dockyard_release_command": {
        "command": f"bash {RELEASE_SCRIPT}", "leader_only": True}}}
    script = bundle.text(RELEASE_SCRIPT)
    assert bundle.file(RELEASE_SCRIPT).executable
    assert 'timeout --kill-after=10 120 docker run --rm --sig-proxy=false --name "$name" --env-file "$work/env"' \
        in script
    assert '"$image" python manage.py migrate --noinput' in script and "image=reg:5000/shop:1.0.0" in script
    without = build_bundle(BundleInputs(project_root=REPO, env=Env(), eb_environment="shop-prod", platform="v1",
                                        image="reg:5000/shop:1.0.0", auth="none", registry="reg:5000", dockercfg=None))
    assert without.file(RELEASE_CONFIG) is None and without.file(RELEASE_SCRIPT) is None
