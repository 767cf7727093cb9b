"""The pure parts of `inv deploy|rollback|status|history`: which environment, which flags, the JSON result."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dockyard.dispatch import (
    Result,
    append_github_output,
    default_environment,
    machine_output,
    refuse_unsupported,
    require_target,
)
from dockyard.errors import ConfigError, Refused
from dockyard.plan import ApiCall, Plan, Step, StepTiming, execute, recording_timings

SAMPLE = {"dev": "", "staging": "ssh", "prod": "eb"}


@pytest.mark.parametrize("targets, release_env, expected", [
    ({"dev": "", "prod": "eb"}, "prod", "prod"),  # the one environment with a target
    ({"dev": "", "qa": "ecs"}, "prod", "qa"),  # ... even when it is not the release environment
    ({"dev": "", "staging": "ssh", "prod": "eb"}, "prod", "prod"),  # several: the release environment
    ({"a": "ecs", "b": "ecs", "c": ""}, "b", "b"),
])
def test_default_environment(targets, release_env, expected):
    for verb in ("deploy", "rollback", "status", "history"):
        assert default_environment(targets, release_env, verb) == expected


def test_default_environment_refuses_when_several_deploy_and_the_release_env_does_not():
    with pytest.raises(Refused) as caught:
        default_environment({"dev": "", "staging": "ssh", "qa": "ecs"}, "dev", "deploy")
    assert caught.value.exit_code == 5
    assert caught.value.message == ("which environment? several can deploy: qa (ecs), staging (ssh); name one "
                                    "with --env")


def test_default_environment_refuses_when_none_has_a_target():
    with pytest.raises(Refused) as caught:
        default_environment({"dev": "", "prod": ""}, "prod", "status")
    assert "set dockyard.environments.<name>.target to eb, ecs or ssh" in caught.value.message
    assert "\n" not in caught.value.message


def test_an_environment_without_target_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        require_target("dev", "")
    assert caught.value.exit_code == 2 and "dockyard.environments.dev.target" in caught.value.message
    require_target("prod", "eb")


@pytest.mark.parametrize("target, verb, given, flag", [
    ("ssh", "deploy", {"no_wait": True}, "--no-wait"),
    ("ssh", "deploy", {"timeout": 30}, "--timeout"),
    ("eb", "rollback", {"force_unlock": True}, "--force-unlock"),
    ("ecs", "rollback", {"force_unlock": True}, "--force-unlock"),
    ("ssh", "deploy", {"no_rollback": True}, "--no-rollback"),
    ("eb", "deploy", {"lock_wait": 10}, "--lock-wait"),
    ("ecs", "deploy", {"limit": 2}, "--limit"),
    ("ssh", "rollback", {"timeout": 5}, "--timeout"),
    ("eb", "rollback", {"limit": 1}, "--limit"),
])
def test_a_flag_the_target_cannot_honour_is_refused(target, verb, given, flag):
    with pytest.raises(Refused) as caught:
        refuse_unsupported("e", target, verb, given)
    assert caught.value.exit_code == 5
    assert caught.value.message.startswith(f"{flag} is not supported by {verb} on e (target {target}")


@pytest.mark.parametrize("target, verb, given", [
    ("eb", "deploy", {"dry_run": True, "no_wait": True, "timeout": 5, "no_rollback": True, "force_unlock": True}),
    ("ecs", "deploy", {"dry_run": True, "no_wait": True, "timeout": 5, "no_rollback": True, "force_unlock": True}),
    ("ssh", "deploy", {"dry_run": True, "lock_wait": 5, "limit": 2, "version": "v1", "force_unlock": True}),
    ("ssh", "rollback", {"to": "v1", "lock_wait": 0, "limit": 1, "force_unlock": True}),
    ("ecs", "rollback", {"to": "3", "timeout": 9}),
])
def test_flags_the_target_honours_pass(target, verb, given):
    refuse_unsupported("e", target, verb, given)


@pytest.mark.parametrize("code, word", [(5, "refused"), (9, "locked"), (10, "failed"), (11, "rolled_back"),
                                        (12, "timed_out"), (2, "invalid"), (6, "unhealthy"), (42, "failed")])
def test_failed_result_names_the_exit_code(code, word):
    result = Result(verb="deploy", environment="prod", target="eb", version="1.0.0")
    result.failed(code, "why")
    data = json.loads(result.to_json())
    assert (data["result"], data["exit_code"], data["message"]) == (word, code, "why")
    assert data["image"] is None and data["previous"] is None and data["version"] == "1.0.0"


def test_github_output_lines_are_appended(tmp_path):
    out = tmp_path / "github_output"
    out.write_text("earlier=1\n")
    append_github_output(str(out), Result(verb="deploy", version="1.2.3", result="succeeded",
                                          url="http://shop.example/"))
    append_github_output(str(out), Result(verb="deploy", result="refused"))
    assert out.read_text().splitlines() == ["earlier=1", "version=1.2.3", "result=succeeded",
                                            "url=http://shop.example/", "version=", "result=refused", "url="]


def test_machine_output_sends_everything_else_to_stderr(capfd):
    with machine_output(True) as emit:
        print("human text")
        subprocess.run([sys.executable, "-c", "print('child process text')"], check=True)
        emit('{"result": "ok"}')
    out, err = capfd.readouterr()
    assert out == '{"result": "ok"}\n'
    assert "human text" in err and "child process text" in err
    with machine_output(False) as emit:
        print("plain")
        emit("ignored")
    assert capfd.readouterr().out == "plain\n"


def test_recording_timings_has_every_executed_step_and_the_failed_one(capsys):
    class Steps:
        def one(self):
            return 1

        def boom(self):
            raise Refused("no")

    def step(name: str, operation: str) -> Step:
        return Step(name, instruction=ApiCall.of("steps", operation))

    plan = Plan("p", (step("one", "one"), step("two", "boom"), step("three", "one")))
    ticks = iter([0.0, 0.5, 1.0, 3.0])
    with recording_timings() as timings, pytest.raises(Refused):
        execute(plan, clock=lambda: next(ticks), performers={"steps": Steps()})
    assert timings == [StepTiming("one", 0.5, True), StepTiming("two", 2.0, False)]
    execute(Plan("q", (step("four", "one"),)), performers={"steps": Steps()})  # outside the block nothing is recorded
    assert len(timings) == 2
