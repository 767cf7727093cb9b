"""The two apps of tests/apps/ adopt dockyard by configuration alone, and a setting one needs is named when missing.

Fast checks (no engine): the files README's "Adapting dockyard to another app" asks for, and nothing more; every
task of the life is there; a missing setting or env key is one line naming it. The whole life runs in
tests/test_adopt_notes_e2e.py and tests/test_adopt_tally_e2e.py.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from adopt import APPS, fill_env_files
from conftest import git, library_path

NAMES = ("notes", "tally", "shelf")
LIFE = ("doctor", "dev.start", "dev.run", "dev.test", "prod.start", "image.build", "release", "publish",
        "staging.setup", "staging.ssh-deploy", "staging.rollback", "deploy", "eb.dockercfg", "ecs.render", "ci.test")
TASKS_PY = "from pathlib import Path\n\nimport dockyard\n\nns = dockyard.namespace(Path(__file__).parent)\n"


def inv(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], check=False, cwd=root, capture_output=True, text=True,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root), "PYTHONPATH": library_path()},
                          stdin=subprocess.DEVNULL, timeout=120)


def copy(name: str, dest: Path) -> Path:
    shutil.copytree(APPS / name, dest, ignore=shutil.ignore_patterns("__pycache__", ".env"))
    fill_env_files(dest, {})
    return dest


def edit_settings(root: Path, change) -> None:
    data = yaml.safe_load((root / "invoke.yaml").read_text())
    change(data["dockyard"])
    (root / "invoke.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("name", NAMES)
def test_the_app_is_adopted_with_tasks_py_invoke_yaml_compose_files_and_env_examples(name):
    root = APPS / name
    assert (root / "tasks.py").read_text() == TASKS_PY
    for env in ("dev", "prod", "staging"):
        assert (root / "environments" / env / ".env.example").is_file()
        assert not (root / "environments" / env / ".env").exists()
    # The app's code and Dockerfile know nothing of dockyard (the base images' names aside).
    code = [p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".js", ".json", "")
            and p.name not in ("tasks.py", "README.md") and "environments" not in p.parts]
    assert code, "no app code found"
    for path in code:
        text = re.sub(r"dockyard-base/\w+", "", path.read_text())
        assert "import dockyard" not in text and "dockyard." not in text, path
    compose = yaml.safe_load((root / "docker" / "compose.yml").read_text())
    assert compose["services"]["web"]["image"] == "${DOCKYARD_IMAGE}" and "build" in compose["services"]["web"]


@pytest.mark.parametrize("name", NAMES)
def test_every_task_of_the_life_is_listed(name, tmp_path):
    listed = inv(copy(name, tmp_path / name), "--list")
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0] for line in listed.stdout.splitlines() if line.startswith("  ")}
    assert set(LIFE) <= names, sorted(set(LIFE) - names)


def test_a_missing_env_key_is_named_with_its_example(tmp_path):
    root = copy("notes", tmp_path / "notes")
    env_file = root / "environments" / "dev" / ".env"
    env_file.write_text("".join(line + "\n" for line in env_file.read_text().splitlines()
                                if not line.startswith("MYSQL_USER=")))
    result = inv(root, "dev.start")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [(
        "dockyard: environments/dev/.env lacks MYSQL_USER (listed in environments/dev/.env.example): add it to "
        "environments/dev/.env")]


def test_a_named_volume_without_a_decision_names_the_setting(tmp_path):
    root = copy("notes", tmp_path / "notes")
    edit_settings(root, lambda d: d.pop("ecs"))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "notes")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "tag", "-a", "v1.0.0", "-m", "1.0.0")
    result = inv(root, "ecs.render", "--output", str(tmp_path / "taskdef.json"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "dockyard: compose service 'mariadb': key 'volumes.db' is a named volume and nothing decides what it becomes "
        "on ECS; set dockyard.ecs.volumes.db to scratch")
    assert not (tmp_path / "taskdef.json").exists()


def test_staging_without_hosts_names_the_setting(tmp_path):
    result = inv(copy("tally", tmp_path / "tally"), "staging.ssh-deploy", "--version", "1.0.0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("dockyard: dockyard.ssh.hosts is empty for staging")
