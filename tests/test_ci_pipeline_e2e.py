"""The generated pipelines, executed: each job's steps run in order in a fresh clone, as the provider runs them.

tests/pipeline_runner.py interprets the GitHub workflow and the CircleCI config written by `inv ci.config` (and
says what stands in for the provider-side actions). The staging job builds the commit image, pushes it to the real
registry and deploys it over SSH to the real sshd host, with the secrets given only as variables.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import urllib.request
import uuid

import pytest
import yaml

from conftest import free_port, library_path
from pipeline_runner import CircleRunner, GithubRunner, Machine
from test_staging_e2e import Load, docker

pytestmark = [pytest.mark.engine, pytest.mark.registry, pytest.mark.sshd]


class CiProject:
    """The sample project set up as a user would for CI: staging over SSH, its registry, CI files committed."""

    def __init__(self, project, host, registry) -> None:
        self.project = project
        self.host = host
        self.registry = registry
        self.prefix = f"{project.app}-staging"
        self.port = free_port()
        self.repo_path = f"dockyard-test/ci-{uuid.uuid4().hex[:6]}"
        self.env_secret = f"ci-env-secret-{uuid.uuid4().hex[:12]}"
        project.configure({"dockyard": {
            "image": {"repository": registry.repository(self.repo_path)},
            "registry": {"username": registry.username, "password_env": "DOCKYARD_REGISTRY_PASSWORD"},
            # No key file, no known_hosts here: the pipeline writes both from secrets.
            "ssh": {"hosts": [{"address": host.address, "prefix": self.prefix, "proxy_port": self.port}],
                    "proxy_bind": "127.0.0.1", "health_timeout": 60, "drain_seconds": 1, "keep": 2},
            "environments": {"staging": {"target": "ssh"}},
        }})
        example = (project.root / "environments" / "staging" / ".env.example").read_text()
        self.env_text = example.replace("DJANGO_SECRET_KEY=change-me", f"DJANGO_SECRET_KEY={self.env_secret}")
        (project.root / "environments" / "staging" / ".env").unlink(missing_ok=True)  # CI has only the secret
        project.git("checkout", "-q", "-b", "staging")
        for provider in ("github", "circleci"):
            project.inv("ci.config", "--provider", provider, check=True)
        self.sha = project.commit("CI for staging")

    @property
    def secrets(self) -> dict[str, str]:
        return {"DOCKYARD_REGISTRY_PASSWORD": self.registry.password,
                "SSH_PRIVATE_KEY": self.host.key_file.read_text().strip(),
                "SSH_KNOWN_HOSTS": self.host.known_hosts.read_text().strip(),
                "DOCKYARD_ENV_STAGING": self.env_text}

    def workflow(self) -> dict:
        return yaml.safe_load((self.project.root / ".github/workflows/dockyard.yml").read_text())

    def circleci(self) -> dict:
        return yaml.safe_load((self.project.root / ".circleci/config.yml").read_text())

    def live_version(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/", timeout=5) as response:
            return json.loads(response.read().decode())["version"]

    def cleanup(self) -> None:
        ids = docker("ps", "-aq", "--filter", f"label=dev.dockyard.ssh.prefix={self.prefix}").stdout.split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)
        docker("network", "rm", self.prefix, check=False)
        shutil.rmtree(os.path.expanduser(f"~/.dockyard/{self.prefix}"), ignore_errors=True)
        refs = [line for line in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                                        self.registry.repository(self.repo_path)).stdout.split()]
        if refs:
            docker("image", "rm", "-f", *refs, check=False)


@pytest.fixture
def ci_project(sample_project, sshd_host, registry, engine):
    project = CiProject(sample_project, sshd_host, registry)
    yield project
    project.cleanup()


def machine(tmp_path, name: str) -> Machine:
    return Machine(tmp_path / name, {**os.environ, "PYTHONPATH": library_path()})


def assert_no_secret(run, secrets) -> None:
    for name, value in secrets.items():
        for line in value.splitlines():
            if len(line.strip()) > 8:
                assert line.strip() not in run.output, f"{name} appeared in the job's output"


def test_push_to_staging_builds_pushes_and_deploys_with_both_providers(ci_project, tmp_path):
    p = ci_project
    tag = f"staging-{p.sha[:7]}"
    github = GithubRunner(p.workflow(), machine(tmp_path, "gh1"), secrets=p.secrets)
    assert github.should_run("staging", "refs/heads/staging")
    assert not github.should_run("deploy", "refs/heads/staging") and not github.should_run("staging", "refs/heads/main")

    run = github.run("staging", origin=p.project.root, sha=p.sha, ref="refs/heads/staging")
    assert run.ok, run.failed()
    assert [s.name for s in run.steps][-3:] == ["inv image.push staging", "inv staging.setup",
                                                "inv staging.ssh-deploy"]
    # The commit image is in the registry, its digest recorded and published as a step output.
    digest = p.registry.manifest_digest(p.repo_path, tag)
    assert digest and run.outputs["digest"] == f"{p.registry.repository(p.repo_path)}@{digest}"
    assert f"`{p.registry.repository(p.repo_path)}@{digest}`" in run.summary
    record = json.loads((run.workspace / ".git/dockyard/images/staging" / f"{tag}.json").read_text())
    assert record["digest"].endswith(digest) and record["commit"] == p.sha
    # staging.ssh-deploy deployed that commit's tag by default (from GITHUB_SHA), and it serves.
    assert p.live_version() == tag
    assert f"staging now runs {tag}" in run.output
    # The key and the env file were written from secrets, readable by the owner only.
    for path in (run.home / ".ssh/dockyard_deploy_key", run.home / ".ssh/dockyard_known_hosts",
                 run.workspace / "environments/staging/.env"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert p.env_secret in (run.workspace / "environments/staging/.env").read_text()
    assert_no_secret(run, p.secrets)

    # The same commit again (a re-run): nothing is built or pushed, the deploy is a no-op.
    again = GithubRunner(p.workflow(), machine(tmp_path, "gh2"), secrets=p.secrets).run(
        "staging", origin=p.project.root, sha=p.sha, ref="refs/heads/staging")
    assert again.ok, again.failed()
    push_output = again.steps[-3].output
    assert "nothing to build or push" in push_output and "Building" not in push_output
    assert p.registry.manifest_digest(p.repo_path, tag) == digest
    assert "already live" in again.output

    # A new commit on staging, deployed by the CircleCI job while requests run all the time: none fails.
    (p.project.root / "app" / "CHANGES.txt").write_text("second\n")
    second = p.project.commit("second change")
    circle = CircleRunner(p.circleci(), machine(tmp_path, "cc"), context=p.secrets)
    assert circle.should_run("staging", branch="staging") and not circle.should_run("staging", branch="main")
    assert not circle.should_run("deploy", branch="staging")
    with Load(p.port) as load:
        cc = circle.run("staging", origin=p.project.root, sha=second, branch="staging")
    assert cc.ok, cc.failed()
    assert p.live_version() == f"staging-{second[:7]}"
    assert load.failed == [] and load.sent > 20, (load.sent, load.failed[:3])
    assert load.versions == {tag, f"staging-{second[:7]}"}, load.versions
    assert p.registry.manifest_digest(p.repo_path, f"staging-{second[:7]}")
    assert_no_secret(cc, p.secrets)


def test_ci_config_files_validate_with_the_staging_flow(ci_project):
    if not shutil.which("check-jsonschema"):
        pytest.skip("check-jsonschema not installed")
    for path, schema in ((".github/workflows/dockyard.yml", "vendor.github-workflows"),
                         (".circleci/config.yml", "vendor.circle-ci")):
        check = subprocess.run(["check-jsonschema", "--builtin-schema", schema, str(ci_project.project.root / path)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


ROLE = "arn:aws:iam::123456789012:role/dockyard-ci"


def test_release_tag_publishes_and_deploys_to_elastic_beanstalk(eb, sample_project, registry, tmp_path):
    from conftest import git
    from fixtures.aws import FAKE_CREDENTIALS

    project = sample_project
    eb.configure(project, platform="v2")
    repo_path = f"dockyard-test/ci-eb-{uuid.uuid4().hex[:6]}"
    project.configure({"dockyard": {
        "image": {"repository": registry.repository(repo_path)},
        "aws": {"endpoint_url": eb.moto.endpoint, "region": "us-east-1"},  # where this machine's AWS is
        "ci": {"aws_role_arn": ROLE}}})
    eb.upload_dockercfg(project)
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    project.git("remote", "add", "origin", str(origin))
    project.inv("ci.config", "--provider", "github", check=True)
    project.commit("CI")
    project.git("push", "-q", "origin", "main")
    # On the laptop: release and publish (the image goes to the registry, the tag to the remote: CI starts).
    project.inv("release", "1.0.0", check=True, timeout=900)
    project.inv("publish", "1.0.0", check=True)
    sha = project.git("rev-parse", "v1.0.0^{commit}").stdout.strip()
    # CI's machine never had the laptop's image (they share this engine here, so it is removed).
    release_ref = f"{registry.repository(repo_path)}:1.0.0"
    docker("image", "rm", release_ref)

    runner = GithubRunner(yaml.safe_load((project.root / ".github/workflows/dockyard.yml").read_text()),
                          machine(tmp_path, "gh-tag"), secrets={"DOCKYARD_REGISTRY_PASSWORD": registry.password},
                          aws_credentials=FAKE_CREDENTIALS)
    assert runner.should_run("deploy", "refs/tags/v1.0.0") and not runner.should_run("staging", "refs/tags/v1.0.0")
    run = runner.run("deploy", origin=origin, sha=sha, ref="refs/tags/v1.0.0")
    assert run.ok, run.failed()
    assert run.assumed_roles == [ROLE]  # OIDC: the role, never stored keys
    publish = next(s for s in run.steps if s.name.startswith("inv publish"))
    # Published from the laptop: found in the registry, built from the tag's commit, verified; nothing pushed.
    assert f"{release_ref} is not on this machine; the registry has it, built from v1.0.0 ({sha[:7]})" in \
        publish.output
    assert "1.0.0 was already published" in publish.output
    state = eb.state("ebsample-prod")
    assert (state["Status"], state["Health"]) == ("Ready", "Green") and state["VersionLabel"].startswith("1.0.0-")
    assert eb.get("ebsample-prod", "/")[0] == 200
    assert registry.password not in run.output
