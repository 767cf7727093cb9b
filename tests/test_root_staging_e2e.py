"""`inv deploy --env staging` (target ssh) is `inv staging.ssh-deploy`, against the real sshd hosts and registry."""
from __future__ import annotations

import json

from test_staging_e2e import docker, staging, staging_images  # noqa: F401 - fixtures


def as_json(result) -> dict:
    data = json.loads(result.stdout)  # stdout holds the one JSON object and nothing else
    assert data["exit_code"] == result.returncode, result.stderr
    assert "Traceback" not in result.stderr
    return data


def _untimed(line: str) -> str:
    """An audit line without its finished time (the first word) and its ``started=`` field."""
    return " ".join(w for w in line.split(" ")[1:] if not w.startswith("started="))


def what_it_did(staging, result) -> dict:  # noqa: F811
    """What a user checks after a deploy: the app containers, the audit line (minus its times), the plan shown."""
    assert result.returncode == 0, result.stdout + result.stderr
    containers = docker("ps", "--filter", f"label=dev.dockyard.ssh.prefix={staging.prefix}", "--format",
                        "{{.Names}} {{.Image}} {{.State}}").stdout.split("\n")
    audit = (staging.state_dir() / "audit.log").read_text().splitlines()
    shown = result.stdout.split("\n[1/")[0]  # the plan, printed before it runs
    progress = [line for line in result.stdout.splitlines() if line.startswith("[")]
    return {"containers": sorted(c for c in containers if "-app-" in c), "audit": [_untimed(a) for a in audit],
            "plan": shown, "progress": progress, "live": staging.live_version()}


def test_deploy_env_staging_does_what_ssh_deploy_does(staging):  # noqa: F811
    staging.inv("staging.setup", check=True)
    dry_root = staging.inv("deploy", "--env", "staging", "--version", "v1", "--dry-run", check=True)
    dry_own = staging.inv("staging.ssh-deploy", "--version", "v1", "--dry-run", check=True)
    assert dry_root.stdout == dry_own.stdout and "(dry run: nothing was changed)" in dry_root.stdout

    own = what_it_did(staging, staging.inv("staging.ssh-deploy", "--version", "v1"))
    staging.cleanup()
    staging.inv("staging.setup", check=True)
    root = what_it_did(staging, staging.inv("deploy", "--env", "staging", "--version", "v1"))
    assert root == own
    assert own["live"] == "v1" and len(own["audit"]) == 1 and "deploy version=v1" in own["audit"][0]
    assert any(c.startswith(f"{staging.prefix}-app-v1 ") and c.endswith(" running") for c in own["containers"])


def test_deploy_json_on_ssh_success_failure_lock_history_rollback(staging, staging_images, tmp_path):  # noqa: F811
    staging.inv("staging.setup", check=True)
    staging.inv("deploy", "--env", "staging", "--version", "v1", check=True)
    out = tmp_path / "github_output"
    second = staging.inv("deploy", "--env", "staging", "--version", "v2", "--json", env={"GITHUB_OUTPUT": str(out)})
    data = as_json(second)
    url = f"http://127.0.0.1:{staging.ports[0]}/"
    assert {k: data[k] for k in ("environment", "target", "version", "image", "previous", "result", "url")} == {
        "environment": "staging", "target": "ssh", "version": "v2", "image": f"{staging_images}:v2",
        "previous": "v1", "result": "succeeded", "url": url}
    assert data["digest"] and data["digest"].startswith("sha256:")
    steps = [s["step"] for s in data["steps"]]
    assert len(steps) == 3 and all(s["ok"] for s in data["steps"]), steps
    assert steps[0].startswith("take the deploy lock on ") and steps[1].startswith("deploy v2 on ")
    assert steps[2] == "release the deploy lock"
    assert out.read_text().splitlines() == ["version=v2", "result=succeeded", f"url={url}"]
    assert staging.live_version() == "v2"

    bad = staging.inv("deploy", "--env", "staging", "--version", "bad", "--json")
    assert bad.returncode == 6
    data = as_json(bad)
    assert (data["result"], data["version"], data["previous"]) == ("unhealthy", "bad", "v2")
    assert staging.live_version() == "v2"

    history = as_json(staging.inv("history", "--env", "staging", "--json"))["details"]["records"]
    assert [(r["action"], r["version"], r["previous"], r["result"]) for r in history] == [
        ("deploy", "bad", "v2", "health_failed"), ("deploy", "v2", "v1", "succeeded"),
        ("deploy", "v1", "", "succeeded")]

    back = as_json(staging.inv("rollback", "--env", "staging", "--json"))
    assert (back["result"], back["version"], back["previous"]) == ("succeeded", "v1", "v2")
    assert staging.live_version() == "v1"
    status = as_json(staging.inv("status", "--env", "staging", "--json"))
    assert status["version"] == "v1" and [h["live"] for h in status["details"]["hosts"]] == ["v1"]

    lock = staging.state_dir() / "lock"
    lock.mkdir()
    (lock / "details").write_text("holder: someone@ci\naction: deploy\nversion: v9\n")
    locked = staging.inv("deploy", "--env", "staging", "--version", "v2", "--json")
    assert locked.returncode == 9
    data = as_json(locked)
    assert data["result"] == "locked" and "someone@ci" in data["message"]
    assert staging.live_version() == "v1"

    # --force-unlock is staging.ssh-deploy's own flag: `inv deploy` passes it on instead of refusing it.
    unlocked = as_json(staging.inv("deploy", "--env", "staging", "--version", "v2", "--force-unlock", "--json"))
    assert (unlocked["result"], unlocked["version"], unlocked["previous"]) == ("succeeded", "v2", "v1")
    assert staging.live_version() == "v2" and not lock.exists()
