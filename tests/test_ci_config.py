"""`inv ci.config`: CircleCI 2.1 and GitHub Actions files that validate against the providers' published schemas."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from conftest import REPO, unavailable

PYTHONPATH = {"PYTHONPATH": str(REPO)}
SCHEMAS = {"circleci": "vendor.circle-ci", "github": "vendor.github-workflows"}
OUTPUTS = {"circleci": ".circleci/config.yml", "github": ".github/workflows/dockyard.yml"}


@pytest.mark.parametrize("provider", ["circleci", "github"])
def test_config_validates_against_the_provider_schema(sample_project, provider):
    if not shutil.which("check-jsonschema"):
        unavailable("check-jsonschema not installed (pip install check-jsonschema)")
    secret = "very-secret-registry-password"
    result = sample_project.inv("ci.config", "--provider", provider,
                                env={**PYTHONPATH, "DOCKYARD_REGISTRY_PASSWORD": secret})
    assert result.returncode == 0, result.stderr
    path = sample_project.root / OUTPUTS[provider]
    text = path.read_text()
    check = subprocess.run(["check-jsonschema", "--builtin-schema", SCHEMAS[provider], str(path)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert secret not in text
    data = yaml.safe_load(text)
    commands = [line.strip() for line in text.splitlines()]
    assert any("inv ci.test" in c for c in commands)
    assert any("inv staging.ssh-deploy" in c for c in commands) and any("inv publish" in c for c in commands)
    # deploy takes --version (a flag); publish takes VERSION (positional): each as the task defines it
    assert any('inv deploy --version \\"$DOCKYARD_VERSION\\"' in c for c in commands)
    assert any('inv publish \\"$DOCKYARD_VERSION\\"' in c for c in commands)
    if provider == "github":
        assert data["jobs"]["staging"]["env"]["DOCKYARD_REGISTRY_PASSWORD"] == \
            "${{ secrets.DOCKYARD_REGISTRY_PASSWORD }}"
        assert data["jobs"]["deploy"]["if"] == "startsWith(github.ref, 'refs/tags/')"
        assert data[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads the key `on` as True
    else:
        jobs = {next(iter(j)): j[next(iter(j))] for j in data["workflows"]["dockyard"]["jobs"]}
        assert jobs["deploy"]["filters"]["tags"]["only"] == "/^v.*$/"
        assert jobs["staging"]["filters"]["branches"]["only"] == "staging"
        assert jobs["staging"]["context"] == "dockyard"


def test_config_to_stdout_writes_nothing(sample_project):
    result = sample_project.inv("ci.config", "--provider", "github", "--stdout", env=PYTHONPATH)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# GitHub Actions workflow")
    assert not (sample_project.root / ".github").exists()


def test_project_template_overrides_the_builtin(sample_project):
    override = sample_project.root / "templates" / "ci" / "github.yml.j2"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text("# custom for [[ app ]]\nname: custom\non: push\njobs: {}\n")
    result = sample_project.inv("ci.config", "--stdout", "--provider", "github", env=PYTHONPATH)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# custom for {sample_project.app}")


def test_tasks_the_project_adds_itself_may_be_called_from_ci(sample_project):
    tasks_py = sample_project.root / "tasks.py"
    tasks_py.write_text(tasks_py.read_text() + (
        "\nfrom invoke import task\n\n\n@task\ndef notify_team(c):\n    \"\"\"Tell the team.\"\"\"\n\n\n"
        "ns.add_task(notify_team)\n"))
    sample_project.configure({"dockyard": {"ci": {"release_tasks": ["deploy {version}", "notify-team"]}}})
    result = sample_project.inv("ci.config", "--provider", "github", "--stdout", env=PYTHONPATH)
    assert result.returncode == 0, result.stderr
    assert "inv notify-team" in result.stdout
