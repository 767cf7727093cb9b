"""The whole release flow with real parts: git with a bare `origin`, the Docker engine, a htpasswd registry.

release 1.0.0 -> publish 1.0.0 -> publish again (idempotent) -> release 1.0.1 from release-v1.0 -> publish ->
releases. The password test wraps `docker` with a recorder of every argv.
"""
from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import SampleProject, git, private_docker_config

IDENTITY = {"user.name": "Release Tester", "user.email": "release@example.invalid"}


@dataclass
class ReleaseRig:
    """A sample project with a bare origin, its own Docker client config, and (optionally) the test registry."""

    project: SampleProject
    origin: Path
    registry: object | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def repository(self) -> str:
        return self.project.repository

    @property
    def repository_path(self) -> str:
        return self.repository.split("/", 1)[1]

    def inv(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return self.project.inv(*args, env={**self.env, **(env or {})})

    def ok(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = self.inv(*args, env=env)
        assert result.returncode == 0, f"inv {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def refs(self) -> dict[str, str]:
        out = self.project.git("for-each-ref", "--format=%(refname) %(objectname)").stdout
        return dict(line.split(" ", 1) for line in out.splitlines())

    def origin_refs(self) -> dict[str, str]:
        out = git(self.origin, "for-each-ref", "--format=%(refname) %(objectname)").stdout
        return dict(line.split(" ", 1) for line in out.splitlines())

    def image_tags(self) -> list[str]:
        out = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", self.repository],
                             capture_output=True, text=True).stdout
        return sorted(out.split())

    def registry_tags(self) -> list[str]:
        if self.registry is None:
            return []
        auth = base64.b64encode(f"{self.registry.username}:{self.registry.password}".encode()).decode()
        request = urllib.request.Request(f"http://{self.registry.host}/v2/{self.repository_path}/tags/list",
                                         headers={"Authorization": f"Basic {auth}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return sorted(json.loads(response.read()).get("tags") or [])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise

    def records(self) -> list[str]:
        folder = self.project.root / ".git" / "dockyard" / "releases"
        return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []

    def snapshot(self) -> dict:
        """Everything a release or publish could change."""
        return {"refs": self.refs(), "origin": self.origin_refs(), "images": self.image_tags(),
                "registry": self.registry_tags(), "records": self.records(),
                "status": self.project.git("status", "--porcelain").stdout}

    def label(self, ref: str, name: str) -> str:
        out = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", ref],
                             capture_output=True, text=True)
        return (json.loads(out.stdout) or {}).get(name, "") if out.returncode == 0 else ""

    def commit_file(self, name: str, text: str, message: str) -> str:
        (self.project.root / name).write_text(text)
        return self.project.commit(message)


def make_rig(project: SampleProject, tmp_path: Path, registry=None) -> ReleaseRig:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=main", str(origin))
    settings: dict = {}
    if registry is not None:  # the release image is built from the prod compose file's build section
        settings["image"] = {"repository": registry.repository(f"dockyard-test/{project.app}")}
        settings["registry"] = {"username": registry.username}
    for key, value in IDENTITY.items():
        project.git("config", key, value)
    if settings:
        project.configure({"dockyard": settings})
        project.commit("release settings")
    project.git("remote", "add", "origin", str(origin))
    project.git("push", "-q", "origin", "main")
    env = {"DOCKER_CONFIG": private_docker_config(tmp_path / "docker-config"), "CI": "true"}
    if registry is not None:
        env["DOCKYARD_REGISTRY_PASSWORD"] = registry.password
    return ReleaseRig(project, origin, registry, env)


def assert_one_line_refusal(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dockyard: ")
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0], lines[0]


def docker_recorder(folder: Path) -> tuple[Path, Path]:
    """A `docker` first on PATH that appends its argv to a log and execs the real one."""
    real = subprocess.run(["sh", "-c", "command -v docker"], capture_output=True, text=True).stdout.strip()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "argv.log"
    script = folder / "docker"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder, log


@pytest.fixture
def rig(engine, registry, sample_project, tmp_path) -> ReleaseRig:
    return make_rig(sample_project, tmp_path, registry)


@pytest.mark.parametrize("builder", ["auto", "legacy"])
def test_release_publish_patch_publish(rig: ReleaseRig, builder: str):
    """The sample app's release life, through BuildKit (Buildx, as auto finds it) and through the legacy builder."""
    repo = rig.repository
    if builder != "auto":
        rig.project.configure({"dockyard": {"image": {"builder": builder}}})
        rig.project.commit(f"build with the {builder} builder")
    rig.project.git("tag", "wip-local-only")  # publish must never push other tags or branches
    rig.project.git("branch", "feature-local-only")

    out = rig.ok("release", "1.0.0", "--message", "First cut").stdout
    building = next(line for line in out.splitlines() if line.startswith("Building "))
    assert building.endswith("(buildkit)" if builder == "auto" else "(legacy)"), building
    head = rig.project.git("rev-parse", "HEAD").stdout.strip()
    assert rig.project.git("rev-parse", "v1.0.0^{commit}").stdout.strip() == head
    assert rig.project.git("cat-file", "-t", "v1.0.0").stdout.strip() == "tag"  # annotated
    message = rig.project.git("tag", "-l", "--format=%(contents)", "v1.0.0").stdout
    assert "First cut" in message and "* release settings (" in message and "Test Author)" in message
    assert rig.project.git("rev-parse", "release-v1.0").stdout.strip() == head
    assert f"{repo}:1.0.0" in rig.image_tags()
    assert rig.label(f"{repo}:1.0.0", "org.opencontainers.image.revision") == head
    assert rig.label(f"{repo}:1.0.0", "org.opencontainers.image.version") == "1.0.0"
    record = json.loads((rig.project.root / ".git/dockyard/releases/1.0.0.json").read_text())
    assert record["commit"] == head and record["image_id"].startswith("sha256:")
    assert "inv publish 1.0.0" in out

    rig.ok("publish", "1.0.0")
    digest = rig.registry.manifest_digest(rig.repository_path, "1.0.0")
    assert digest
    repo_digests = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", f"{repo}:1.0.0"],
                                  capture_output=True, text=True).stdout
    assert f"{repo}@{digest}" in repo_digests
    origin = rig.origin_refs()
    assert origin["refs/tags/v1.0.0"] == rig.project.git("rev-parse", "v1.0.0").stdout.strip()
    assert origin["refs/heads/release-v1.0"] == head
    assert "refs/tags/wip-local-only" not in origin and "refs/heads/feature-local-only" not in origin
    assert rig.registry_tags() == ["1.0.0"]  # latest only when asked
    record = json.loads((rig.project.root / ".git/dockyard/releases/1.0.0.json").read_text())
    assert record["digest"] == f"{repo}@{digest}"

    before = rig.snapshot()
    again = rig.ok("publish", "1.0.0")
    assert "already published" in again.stdout and "docker push" not in again.stderr
    assert rig.snapshot() == before

    rig.project.git("switch", "-q", "release-v1.0")
    fix = rig.commit_file("app/FIX.txt", "fixed\n", "Fix the thing")
    rig.ok("release", "1.0.1")
    message = rig.project.git("tag", "-l", "--format=%(contents)", "v1.0.1").stdout
    assert "* Fix the thing (" in message and "release settings" not in message and "since 1.0.0" in message
    assert rig.label(f"{repo}:1.0.1", "org.opencontainers.image.revision") == fix

    rig.ok("publish", "1.0.1", "--latest")
    assert rig.origin_refs()["refs/heads/release-v1.0"] == fix
    assert rig.registry_tags() == ["1.0.0", "1.0.1", "latest"]
    assert rig.registry.manifest_digest(rig.repository_path, "latest") == \
        rig.registry.manifest_digest(rig.repository_path, "1.0.1")

    table = rig.ok("releases").stdout.splitlines()
    assert table[0].split()[:3] == ["TAG", "DATE", "COMMIT"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert list(rows) == ["v1.0.1", "v1.0.0"]
    assert fix[:7] in rows["v1.0.1"] and " yes " in rows["v1.0.1"]
    assert digest[:19] in rows["v1.0.0"]
    listed = rig.ok("releases", "--json")
    data = json.loads(listed.stdout)  # the one JSON object; the table went to stderr
    assert (data["result"], data["exit_code"]) == ("ok", 0) and "TAG" in listed.stderr
    assert [(r["tag"], r["registry"]) for r in data["releases"]] == [("v1.0.1", "yes"), ("v1.0.0", "yes")]
    assert data["releases"][1]["digest"] == digest and data["releases"][0]["commit"] == fix
    assert [r["platforms"] for r in data["releases"]] == [["linux/amd64"], ["linux/amd64"]]  # the local images'


def test_publish_never_shows_the_password(rig: ReleaseRig, tmp_path: Path):
    rig.ok("release", "1.0.0")
    folder, log = docker_recorder(tmp_path / "recorder")
    env = {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}
    result = rig.ok("publish", "1.0.0", "--dry-run", env=env)
    published = rig.ok("publish", "1.0.0", env=env)
    password = rig.registry.password
    for output in (result.stdout, result.stderr, published.stdout, published.stderr):
        assert password not in output
    argv = log.read_text()
    assert "login --username dockyard --password-stdin" in argv  # the recorder saw the login...
    assert password not in argv  # ...and no command line ever held the password
    assert password not in (rig.project.root / ".git/dockyard/releases/1.0.0.json").read_text()
    assert rig.registry.manifest_digest(rig.repository_path, "1.0.0")


def test_release_dry_run_changes_nothing(rig: ReleaseRig):
    before = rig.snapshot()
    result = rig.ok("release", "v1.0.0", "--dry-run")
    assert rig.snapshot() == before
    text = result.stdout
    assert "read 'v1.0.0' as version 1.0.0" in text
    assert "release-v1.0" in text and "v1.0.0" in text and f"{rig.repository}:1.0.0" in text
    assert "* release settings (" in text and "dry run: nothing was changed" in text
