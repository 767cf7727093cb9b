"""`inv --list` shows one collection per environment; `inv doctor` reports what is there and what to fix."""
from __future__ import annotations

import pytest

from conftest import arguments_without_help


def test_list_has_a_collection_per_environment_with_a_compose_file(sample_project):
    sample_project.configure({"dockyard": {"environments": {"qa": {"compose": "docker/dev/compose.yml"}}}})
    listing = sample_project.inv("--list", check=True).stdout
    for name in ("dev.start", "prod.start", "qa.start", "qa.shell", "image.build", "image.prune", "doctor"):
        assert name in listing
    assert "staging.start" not in listing  # staging has no compose file in the sample


def test_every_task_argument_has_help(sample_project):
    import sys

    sys.path.insert(0, str(sample_project.root))
    import dockyard

    ns = dockyard.namespace(sample_project.root)
    assert arguments_without_help(ns) == []


@pytest.mark.engine
def test_doctor_reports_a_table(engine, sample_project):
    result = sample_project.inv("doctor", check=True)
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["CHECK", "STATUS", "DETAIL", "FIX"]
    engine_row = next(line for line in lines if line.startswith("Docker engine"))
    assert "OK" in engine_row and engine in engine_row
    assert any(line.startswith("Docker Compose") and " OK " in line for line in lines)
    assert any(line.startswith("env file (dev)") and "values hidden" in line for line in lines)
    # APP_ENV=prod is in prod's .env, yet "prod" is public (an environment name), so it is not masked everywhere
    assert any(line.startswith("env file (prod)") for line in lines)


def test_doctor_fails_with_the_fix_when_the_engine_is_missing(sample_project, tmp_path):
    result = sample_project.inv("doctor", "--no-aws", env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert result.returncode == 1
    row = next(line for line in result.stdout.splitlines() if line.startswith("Docker engine"))
    assert "MISSING" in row and ("setup.sh" in row or "install Docker" in row)
    assert "missing: Docker engine" in result.stderr and "Traceback" not in result.stderr


def test_doctor_names_a_configured_ssh_key_that_is_missing(sample_project):
    sample_project.configure({"dockyard": {"ssh": {"key_file": "keys/deploy_ed25519"}}})
    result = sample_project.inv("doctor", "--no-aws")
    row = next(line for line in result.stdout.splitlines() if line.startswith("SSH keys"))
    assert "MISSING" in row and str(sample_project.root / "keys/deploy_ed25519") in row
    (sample_project.root / "keys").mkdir()
    (sample_project.root / "keys/deploy_ed25519").write_text("not read by doctor\n")
    result = sample_project.inv("doctor", "--no-aws")
    row = next(line for line in result.stdout.splitlines() if line.startswith("SSH keys"))
    assert " OK " in row and "deploy_ed25519" in row
