"""`inv deploy|rollback|status|history|releases` refusals through real `inv`, with and without --json.

Nothing here needs a real part: each command is refused before it reaches AWS, an SSH host or the registry.
"""
from __future__ import annotations

import json

import pytest


def one_line(result, code: int) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dockyard: ")
    return lines[0]


def parsed(result) -> dict:
    data = json.loads(result.stdout)  # exactly one JSON document, nothing else on stdout
    assert data["exit_code"] == result.returncode
    return data


@pytest.mark.parametrize("verb", ["deploy", "rollback", "status", "history"])
def test_an_environment_without_target_is_one_line_exit_2(sample_project, verb):
    line = one_line(sample_project.inv(verb, "--env", "dev"), 2)
    assert "not deployed to Elastic Beanstalk, ECS or SSH hosts" in line
    data = parsed(sample_project.inv(verb, "--env", "dev", "--json"))
    assert (data["verb"], data["environment"], data["target"], data["result"]) == (verb, "dev", "", "invalid")


@pytest.mark.parametrize("env, args, flag", [
    ("staging", ("--no-wait",), "--no-wait"),
    ("staging", ("--timeout", "30"), "--timeout"),
    ("staging", ("--no-rollback",), "--no-rollback"),
    ("prod", ("--lock-wait", "10"), "--lock-wait"),
    ("prod", ("--limit", "1"), "--limit"),
])
def test_a_flag_the_target_cannot_honour_is_one_line_exit_5(sample_project, env, args, flag):
    line = one_line(sample_project.inv("deploy", "--env", env, *args), 5)
    assert line.startswith(f"dockyard: {flag} is not supported by deploy on {env}")
    data = parsed(sample_project.inv("deploy", "--env", env, *args, "--json"))
    assert (data["result"], data["exit_code"], data["target"]) == ("refused", 5, {"prod": "eb", "staging": "ssh"}[env])
    assert flag in data["message"] and data["steps"] == []


def test_rollback_timeout_on_ssh_is_refused(sample_project):
    line = one_line(sample_project.inv("rollback", "--env", "staging", "--timeout", "5"), 5)
    assert "--timeout is not supported by rollback on staging" in line


def test_rollback_force_unlock_on_eb_is_refused(sample_project):
    line = one_line(sample_project.inv("rollback", "--env", "prod", "--force-unlock"), 5)
    assert line.startswith("dockyard: --force-unlock is not supported by rollback on prod (target eb")


def test_default_env_is_the_release_env_else_refused_with_the_list(sample_project):
    # The sample has two targets (staging: ssh, prod: eb); the release environment (prod) is chosen ...
    chosen = parsed(sample_project.inv("deploy", "--lock-wait", "1", "--json"))
    assert (chosen["environment"], chosen["target"], chosen["result"]) == ("prod", "eb", "refused")
    # ... and when the release environment has no target, which one is for the user to say.
    sample_project.configure({"dockyard": {"image": {"release_env": "dev"}}})
    line = one_line(sample_project.inv("deploy"), 5)
    assert line == "dockyard: which environment? several can deploy: prod (eb), staging (ssh); name one with --env"
    assert parsed(sample_project.inv("status", "--json"))["result"] == "refused"


def test_the_one_environment_with_a_target_is_the_default(sample_project):
    sample_project.configure({"dockyard": {"environments": {"prod": {"target": ""}}}})
    data = parsed(sample_project.inv("deploy", "--no-wait", "--json"))
    assert (data["environment"], data["target"], data["result"]) == ("staging", "ssh", "refused")


def test_github_output_on_a_refused_deploy(sample_project, tmp_path):
    out = tmp_path / "github_output"
    result = sample_project.inv("deploy", "--env", "staging", "--no-wait", env={"GITHUB_OUTPUT": str(out)})
    one_line(result, 5)
    assert out.read_text().splitlines() == ["version=", "result=refused", "url="]
    one_line(sample_project.inv("status", "--env", "dev", env={"GITHUB_OUTPUT": str(out)}), 2)
    assert out.read_text().count("result=") == 1  # only a deploy writes there


def test_releases_json(sample_project):
    data = json.loads(sample_project.inv("releases", "--offline", "--json", check=True).stdout)
    assert (data["releases"], data["result"], data["exit_code"]) == ([], "ok", 0)
    sample_project.git("tag", "-a", "v1.0.0", "-m", "first")
    data = json.loads(sample_project.inv("releases", "--offline", "--json", check=True).stdout)
    head = sample_project.git("rev-parse", "HEAD").stdout.strip()
    assert [(r["version"], r["tag"], r["commit"], r["registry"]) for r in data["releases"]] == \
        [("1.0.0", "v1.0.0", head, "?")]
    assert data["releases"][0]["image"] == f"{sample_project.repository}:1.0.0"


def test_releases_json_on_failure(sample_project):
    result = sample_project.inv("releases", "--offline", "--json", env={"INVOKE_DOCKYARD_IMAGE_KEEP": "0"})
    one_line(result, 2)
    data = parsed(result)
    assert (data["result"], data["releases"]) == ("invalid", [])
