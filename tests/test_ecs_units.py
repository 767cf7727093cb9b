"""Pure parts of the ECS feature: task-definition values and diffs, the planner, the waiter's decisions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dockyard.clients.ecs import Deployment, ServiceEvent, ServiceState
from dockyard.ecs.planner import env_file_split, plan_task_definition, previous_revision, revisions_to_deregister
from dockyard.ecs.taskdef import TaskDefinition, UnknownContainer, diff
from dockyard.ecs.waiter import DeploymentFailed, assess, wait_for_deployment

ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:{}"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def definition(image="repo:1.2.3", env=(("A", "1"),), revision=3) -> TaskDefinition:
    return TaskDefinition.from_api({
        "family": "shop", "revision": revision, "taskDefinitionArn": ARN.format(revision), "status": "ACTIVE",
        "networkMode": "bridge", "compatibilities": ["EC2"],
        "containerDefinitions": [
            {"name": "web", "image": image, "memory": 256, "environment": [{"name": k, "value": v} for k, v in env]},
            {"name": "nginx", "image": "nginx:1.27", "memory": 64, "links": ["web"]},
        ],
    }, tags=[{"key": "team", "value": "shop"}])


def test_changing_the_image_gives_a_new_value_and_a_readable_diff():
    current = definition()
    intent = plan_task_definition(current, image="repo:1.2.4", containers=["web"])
    assert current.images()["web"] == "repo:1.2.3"  # the old value is untouched
    assert intent.desired.images() == {"web": "repo:1.2.4", "nginx": "nginx:1.27"}
    assert intent.changes == ('Changed image of container "web" to: "repo:1.2.4" (was: "repo:1.2.3")',)
    rest = lambda td: {k: v for k, v in td.payload.items() if k != "containerDefinitions"}  # noqa: E731
    assert rest(intent.desired) == rest(current)  # tags, network mode... carried over
    assert "compatibilities" not in intent.desired.payload and "revision" not in intent.desired.payload


def test_same_image_is_no_change():
    assert plan_task_definition(definition(), image="repo:1.2.3", containers=["web"]).noop


def test_environment_and_secret_changes_are_listed():
    current = definition(env=(("A", "1"), ("B", "2")))
    intent = plan_task_definition(current, image="repo:1.2.3", containers=["web"],
                                  environment={"A": "9", "C": "3"}, secrets={"B": "/shop/prod/B"})
    assert intent.changes == (
        'Changed environment "A" of container "web" to: "9" (was: "1")',
        'Removed environment "B" from container "web"',
        'Added environment "C" to container "web": "3"',
        'Added secret "B" to container "web": "/shop/prod/B"',
    )


def test_diff_of_other_keys():
    old = definition()
    new = TaskDefinition.new({**old.payload, "cpu": "256"})
    assert diff(old, new) == ['Added cpu: "256"']


def test_unknown_container_names_the_setting_and_the_known_ones():
    with pytest.raises(UnknownContainer, match="dockyard.ecs.containers: .* no container 'app' .*nginx, web"):
        plan_task_definition(definition(), image="repo:1", containers=["app"])


def test_env_file_split_sends_secret_keys_to_ssm():
    plain, refs = env_file_split({"DEBUG": "0", "SECRET_KEY": "x"}, ["SECRET_KEY"], "/shop/prod")
    assert plain == {"DEBUG": "0"} and refs == {"SECRET_KEY": "/shop/prod/SECRET_KEY"}


def test_keep_n_never_deregisters_the_live_or_new_revision():
    active = [ARN.format(n) for n in range(7, 0, -1)]
    doomed = revisions_to_deregister(active, 3, {ARN.format(2), ARN.format(7)})
    assert doomed == [ARN.format(4), ARN.format(3), ARN.format(1)]
    assert previous_revision(active, ARN.format(5)) == ARN.format(4)
    assert previous_revision([ARN.format(5)], ARN.format(5)) == ""


def state(td=3, running=2, desired=2, rollout="IN_PROGRESS", reason="", events=()) -> ServiceState:
    primary = Deployment("ecs-svc/1", "PRIMARY", ARN.format(td), desired, running, desired - running, rollout, reason,
                         NOW)
    return ServiceState("c", "shop", "ACTIVE", ARN.format(td), desired, running, 0, (primary,), tuple(events))


def test_waiter_succeeds_when_primary_is_ours_and_running_equals_desired():
    assert assess(state(), ARN.format(3)).done
    assert not assess(state(running=1), ARN.format(3)).done


def test_waiter_fails_when_primary_is_not_ours():
    verdict = assess(state(td=2), ARN.format(3))
    assert "PRIMARY deployment runs shop:2, not shop:3" in verdict.failure


def test_waiter_fails_on_circuit_breaker():
    verdict = assess(state(running=0, rollout="FAILED", reason="tasks failed to start"), ARN.format(3))
    assert verdict.failure.endswith("tasks failed to start")


def test_waiter_fails_on_unable_events_after_the_deploy_only():
    old = ServiceEvent(NOW - timedelta(hours=1), "(service shop) was unable to place a task (old)")
    assert not assess(state(running=0, events=[old]), ARN.format(3), since=NOW).failure
    new = ServiceEvent(NOW + timedelta(seconds=5), "(service shop) was unable to place a task because no "
                       "container instance met all of its requirements.")
    assert "unable to place" in assess(state(running=0, events=[new]), ARN.format(3), since=NOW).failure


def test_wait_loop_polls_until_steady_and_times_out():
    snapshots = iter([state(running=0), state(running=1), state(running=2)])
    slept: list[float] = []
    verdict = wait_for_deployment(lambda: next(snapshots), ARN.format(3), timeout=60, interval=5, sleep=slept.append)
    assert verdict.done and slept == [5, 5]

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(DeploymentFailed, match="not steady after 10s"):
        wait_for_deployment(lambda: state(running=0), ARN.format(3), timeout=10, interval=5, sleep=sleep,
                            clock=lambda: now[0])


def record(label, result, action="deploy"):
    from dockyard.core.history import AuditRecord

    return AuditRecord(action=action, environment="prod", target="ecs:c/s", version="x", label=label, who="w",
                       started="2026-01-01T00:00:00+00:00", result=result)


@pytest.mark.parametrize("records, live, active, expected", [
    # newest first: the live one's record, a failed one, then the good one
    ([record("shop:5", "started"), record("shop:4", "rolled back"), record("shop:3", "succeeded")],
     "shop:5", ["shop:5", "shop:4", "shop:3"], "shop:3"),
    # successes recorded after the live revision went out are not "before" it
    ([record("shop:6", "succeeded"), record("shop:5", "succeeded"), record("shop:4", "succeeded")],
     "shop:5", ["shop:6", "shop:5", "shop:4"], "shop:4"),
    # a successful rollback counts as a good release; a deregistered revision does not
    ([record("shop:5", "succeeded"), record("shop:2", "succeeded", "rollback"), record("shop:1", "succeeded")],
     "shop:5", ["shop:5", "shop:1"], "shop:1"),
    # live set outside dockyard: every record counts
    ([record("shop:4", "succeeded")], "shop:9", ["shop:9", "shop:4"], "shop:4"),
    ([record("shop:5", "succeeded"), record("shop:4", "failed")], "shop:5", ["shop:5", "shop:4"], None),
])
def test_previous_good_release_from_audit_records(records, live, active, expected):
    from dockyard.core.history import previous_good_release

    found = previous_good_release(records, live, active)
    assert (found.label if found else None) == expected


def test_secret_writes_skip_values_ssm_already_holds_and_never_show_them():
    from dockyard.ecs.planner import with_secret_writes

    intent = plan_task_definition(definition(), image="repo:1.2.4", containers=["web"])
    planned = with_secret_writes(intent, {"/shop/prod/A": "hunter22", "/shop/prod/B": "same"},
                                 {"/shop/prod/B": "same"})
    assert planned.ssm_writes == (("/shop/prod/A", "hunter22"),)
    assert planned.lines[-1] == 'Set secret "A" in SSM /shop/prod/A (SecureString) to: "********"'
    assert "hunter22" not in repr(planned) and "hunter22" not in "\n".join(planned.lines)


def test_parameter_names_and_arns():
    from dockyard.clients.ssm import parameter_arn, parameter_name

    assert parameter_name("dockyard/shop", "audit", "prod", "2026-deploy-shop:3") == \
        "/dockyard/shop/audit/prod/2026-deploy-shop.3"
    assert parameter_arn("/shop/prod/KEY", region="cn-north-1", account="1") == \
        "arn:aws-cn:ssm:cn-north-1:1:parameter/shop/prod/KEY"
