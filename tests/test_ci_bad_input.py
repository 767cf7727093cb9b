"""Bad `dockyard.ci` settings and arguments: one line on stderr, exit != 0, no traceback, nothing changed."""
from __future__ import annotations

import pytest

from conftest import REPO

PYTHONPATH = {"PYTHONPATH": str(REPO)}


@pytest.mark.parametrize("settings, args, expected", [
    ({"ready_timeout": "soon"}, ("ci.test", "--dry-run"), "dockyard.ci.ready_timeout: expected an integer"),
    ({"services": {"redis": {"image": ""}}}, ("ci.test", "--dry-run"), "dockyard.ci.services.redis.image: is required"),
    ({"services": {"cache": "redis:7"}}, ("ci.test", "--dry-run"), "dockyard.ci.services.cache: expected a mapping"),
    ({"services": {"redis": {"ready": 5}}}, ("ci.test", "--dry-run"), "dockyard.ci.services.redis.ready"),
    ({"provider": "travis"}, ("ci.config",), "dockyard.ci.provider: expected one of"),
    ({"dockerfile": "nope/Dockerfile"}, ("ci.test", "--dry-run"), "dockyard.ci.dockerfile:"),
    ({}, ("ci.config", "--provider", "jenkins"), "--provider: expected circleci or github"),
    ({"staging_tasks": ["publish", "stagng.ssh-deploy"]}, ("ci.config", "--provider", "github"),
     "dockyard.ci.staging_tasks: no task 'stagng.ssh-deploy' in this project"),
    ({"release_tasks": ["publish {version}", "deploi {version} --env prod"]}, ("ci.config", "--stdout"),
     "dockyard.ci.release_tasks: no task 'deploi' in this project"),
    # tasks that exist, called as they cannot be called
    ({"staging_tasks": ["publish", "staging.ssh-deploy"]}, ("ci.config", "--provider", "github"),
     "dockyard.ci.staging_tasks: `inv publish` would fail in CI: 'publish' did not receive required positional "
     "arguments: 'version'"),
    ({"release_tasks": ["deploy {version} --environment prod"]}, ("ci.config", "--provider", "circleci"),
     "dockyard.ci.release_tasks: 'deploy {version} --environment prod': task 'deploy' has no flag --environment"),
    ({"release_tasks": ["deploy 0.1.1"]}, ("ci.config", "--stdout"),
     "dockyard.ci.release_tasks: `inv deploy 0.1.1` would fail in CI: No idea what '0.1.1' is!"),
    ({"aws_auth": "vault"}, ("ci.config",), "dockyard.ci.aws_auth: expected one of"),
    ({"aws_role_arn": "dockyard-ci"}, ("ci.config",), "dockyard.ci.aws_role_arn: expected arn:aws:iam::"),
])
def test_bad_ci_input_is_one_line(sample_project, settings, args, expected):
    sample_project.configure({"dockyard": {"ci": settings}})
    before = sorted(p.name for p in sample_project.root.iterdir())
    result = sample_project.inv(*args, env=PYTHONPATH)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dockyard: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in sample_project.root.iterdir()) == before


def test_a_per_environment_ssh_key_is_refused_because_ci_could_not_reach_it(sample_project):
    sample_project.configure({"dockyard": {"environments": {"staging": {"ssh": {"key_file": "~/.ssh/staging"}}}}})
    result = sample_project.inv("ci.config", "--stdout", env=PYTHONPATH)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        ("dockyard: dockyard.environments.staging.ssh.key_file is set: CI writes the deploy key and known_hosts "
         "from secrets through dockyard.ssh.key_file; move it to dockyard.ssh")]
