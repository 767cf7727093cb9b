"""`inv dev.release-command` and `dev.start --migrate` against the real engine: the sample's real migrations."""
from __future__ import annotations

import subprocess
import time

import pytest
from test_deploy_hooks import WEBHOOK_SECRET, Webhook

pytestmark = pytest.mark.engine


def one_offs(project_name: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project_name}",
                          "--filter", "label=com.docker.compose.oneoff=True"], capture_output=True, text=True,
                         check=True, timeout=30)
    return out.stdout.split()


def one_clear_line(result, code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dockyard: ") and "Traceback" not in result.stdout, result.stderr
    return lines[0]


def test_dev_release_command_migrates_once_and_a_failure_is_exit_10(engine, sample_project):
    project = f"{sample_project.app}-dev"
    unset = sample_project.inv("dev.start", "--migrate")
    assert "release_command is not set" in one_clear_line(unset, 2)
    assert one_offs(project) == []

    # The sample keeps its sqlite database in DJANGO_DATA_DIR: a named volume, so the migration outlives its
    # one-off container and the app sees it.
    compose = sample_project.root / "docker" / "dev" / "compose.yml"
    compose.write_text(compose.read_text().replace("      - ../../app:/app\n",
                                                   "      - ../../app:/app\n      - data:/var/lib/sample\n")
                       + "volumes:\n  data: {}\n")
    sample_project.configure({"dockyard": {"environments": {"dev": {
        "release_command": "python manage.py migrate --noinput", "release_command_timeout": 120}}}})
    try:
        started = sample_project.inv("dev.start", "--migrate", check=True)
        out = started.stdout
        assert out.index("Starting the dev stack") < out.index("Running the release command") < out.index("is up")
        assert "Applying auth.0001_initial... OK" in out
        plan = sample_project.inv("dev.run", "python manage.py showmigrations --plan", check=True).stdout
        assert "[X]  auth.0001_initial" in plan and "[ ]" not in plan
        with Webhook() as webhook:
            again = sample_project.inv("dev.release-command", check=True, env={"DOCKYARD_WEBHOOK_URL": webhook.url})
            assert "No migrations to apply." in again.stdout and "succeeded" in again.stdout
            assert one_offs(project) == []

            sample_project.configure({"dockyard": {"environments": {"dev": {
                "release_command": "sh -c 'echo boom; exit 3'"}}}})
            failed = sample_project.inv("dev.release-command", env={"DOCKYARD_WEBHOOK_URL": webhook.url})
            line = one_clear_line(failed, 10)
            assert "exited 3" in line and "boom" in failed.stdout
            assert one_offs(project) == []
        # one notification each time the release command ended, saying how
        assert [(b["dockyard"]["action"], b["dockyard"]["result"], b["dockyard"]["exit_code"])
                for b in webhook.bodies] == [("release-command", "succeeded", 0), ("release-command", "failed", 10)]
        assert WEBHOOK_SECRET not in again.stdout + again.stderr + failed.stdout + failed.stderr

        sample_project.configure({"dockyard": {"environments": {"dev": {
            "release_command": "sleep 60", "release_command_timeout": 3}}}})
        began = time.monotonic()
        slow = sample_project.inv("dev.release-command", timeout=120)
        assert "ran longer than 3s" in one_clear_line(slow, 10) and time.monotonic() - began < 45
        assert one_offs(project) == []
    finally:
        sample_project.inv("dev.down", "--volumes")
