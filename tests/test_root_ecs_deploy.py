"""`inv deploy|rollback|status|history --env prod` on an environment whose target is ecs, against moto.

The same fixture as tests/test_ecs_deploy.py (moto never moves a waited deploy's PRIMARY deployment, which drives
the rollback path); here prod says `target: ecs`, so the root tasks take the ECS code.
"""
from __future__ import annotations

import json

import pytest
from test_ecs_deploy import BUCKET, audit_records, ecs  # noqa: F401 - `ecs` is the fixture


@pytest.fixture
def ecs_env(ecs):  # noqa: F811
    ecs.project.configure({"dockyard": {"environments": {"prod": {"target": "ecs"}}}})
    ecs.project.commit("prod deploys to ECS")
    return ecs


def as_json(result) -> dict:
    data = json.loads(result.stdout)  # stdout holds the one JSON object and nothing else
    assert data["exit_code"] == result.returncode, result.stderr
    assert "Traceback" not in result.stderr
    return data


def test_dry_run_prints_what_ecs_deploy_prints(ecs_env):
    root = ecs_env.inv("deploy", "--env", "prod", "--version", "1.2.4", "--dry-run")
    own = ecs_env.inv("ecs.deploy", "--version", "1.2.4", "--dry-run")
    assert root.returncode == own.returncode == 0, root.stderr + own.stderr
    assert root.stdout == own.stdout
    assert 'Changed image of container "web"' in root.stdout and "(dry run: nothing was changed)" in root.stdout
    assert ecs_env.active() == [1]


def test_deploy_json_then_history_status_and_rollback_to_a_version(ecs_env):
    app = ecs_env.project.app
    started = ecs_env.inv("deploy", "--env", "prod", "--version", "1.2.4", "--no-wait", "--json")
    data = as_json(started)
    assert started.returncode == 0, started.stderr
    assert {k: data[k] for k in ("verb", "environment", "target", "version", "image", "previous", "result")} == {
        "verb": "deploy", "environment": "prod", "target": "ecs", "version": "1.2.4",
        "image": f"{ecs_env.repository}:1.2.4", "previous": f"{app}:1", "result": "started"}
    assert data["details"]["label"] == f"{app}:2"
    # --no-wait plans no wait step (the plan lists only what runs)
    assert [s["step"].split()[0] for s in data["steps"]] == ["Take", "Register", "Update", "Deregister"]
    assert all(s["ok"] and s["seconds"] >= 0 for s in data["steps"])
    assert "registered" in started.stderr  # the human text went to stderr
    assert ecs_env.service()["taskDefinition"].endswith(f"/{app}:2")

    history = as_json(ecs_env.inv("history", "--env", "prod", "--json"))
    assert [(r["action"], r["version"], r["label"], r["previous"], r["result"]) for r in history["details"]["records"]] \
        == [("deploy", "1.2.4", f"{app}:2", f"{app}:1", "started")]

    back = ecs_env.inv("rollback", "--env", "prod", "--to", "1.2.3", "--json")
    data = as_json(back)
    assert back.returncode == 0, back.stderr
    assert (data["result"], data["version"], data["previous"], data["details"]["label"]) == \
        ("succeeded", "1.2.3", f"{app}:2", f"{app}:1")
    assert ecs_env.service()["taskDefinition"].endswith(f"/{app}:1")
    assert [r["action"] for r in audit_records(ecs_env)] == ["deploy", "rollback"]

    status = as_json(ecs_env.inv("status", "--json"))  # prod: the release environment
    assert (status["environment"], status["version"], status["image"], status["details"]["task_definition"]) == \
        ("prod", "1.2.3", f"{ecs_env.repository}:1.2.3", f"{app}:1")
    newest_first = as_json(ecs_env.inv("history", "--json"))["details"]["records"]
    assert [r["action"] for r in newest_first] == ["rollback", "deploy"]
    table = ecs_env.inv("history")
    assert table.stdout.splitlines()[0].split()[:3] == ["WHEN", "ACTION", "VERSION"]


def test_failed_deploy_is_rolled_back_and_json_says_so(ecs_env, tmp_path):
    out = tmp_path / "github_output"
    result = ecs_env.inv("deploy", "--env", "prod", "--version", "1.2.4", "--json", env={"GITHUB_OUTPUT": str(out)})
    assert result.returncode == 11, result.stdout + result.stderr
    data = as_json(result)
    assert (data["result"], data["version"], data["previous"]) == ("rolled_back", "1.2.4", f"{ecs_env.project.app}:1")
    assert f"rolled back to {ecs_env.project.app}:1" in data["message"]
    assert data["steps"][-1]["step"].startswith("Wait") and data["steps"][-1]["ok"] is False
    assert result.stderr.strip().splitlines()[-1] == f"dockyard: {data['message']}"
    assert out.read_text().splitlines() == ["version=1.2.4", "result=rolled_back", "url="]
    assert ecs_env.service()["taskDefinition"].endswith(f"/{ecs_env.project.app}:1")


def test_lock_held_and_unpublished_release(ecs_env):
    s3 = ecs_env.aws.client("s3")
    key = f"dockyard/{ecs_env.project.app}/locks/prod.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"holder": "someone@ci", "environment": "prod",
                                                           "version": "1.2.3", "acquired": "2024-01-01T00:00:00+00:00"}))
    locked = ecs_env.inv("deploy", "--env", "prod", "--version", "1.2.4", "--no-wait", "--json")
    assert locked.returncode == 9, locked.stderr
    data = as_json(locked)
    assert data["result"] == "locked" and "someone@ci" in data["message"]
    assert ecs_env.active() == [1]
    s3.delete_object(Bucket=BUCKET, Key=key)

    refused = ecs_env.inv("deploy", "--env", "prod", "--version", "1.2.5", "--json")
    assert refused.returncode == 5
    data = as_json(refused)
    assert (data["result"], data["version"]) == ("refused", "1.2.5") and "is not published" in data["message"]
    assert audit_records(ecs_env) == []
