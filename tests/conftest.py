"""Shared fixtures: the real parts (engine, registry, sshd, moto) and throw-away copies of the sample project.

A test that needs a real part asks for its fixture; where the part is missing the test skips with the reason,
except under ``CI=true``, where a missing part is a failure (CI installs and starts all of them).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

pytest_plugins = ["fixtures.registry", "fixtures.aws", "fixtures.sshd", "fixtures.eb"]

# Base images the sample's Dockerfiles use (scripts/base-images.sh builds them).
PYTHON_BASE = "dockyard-base/python:bookworm"
NGINX_BASE = "dockyard-base/nginx:bookworm"


def unavailable(reason: str) -> None:
    """Skip, or fail under CI=true where every real part must be present."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def engine_reachable() -> bool:
    try:
        out = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                             text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


@pytest.fixture(scope="session")
def engine() -> str:
    """A reachable Docker engine with the sample's base images; skips (fails under CI) otherwise."""
    if not engine_reachable():
        unavailable("no Docker engine reachable (start dockerd; see scripts/setup.sh)")
    for base in (PYTHON_BASE, NGINX_BASE):
        if subprocess.run(["docker", "image", "inspect", base], capture_output=True).returncode != 0:
            unavailable(f"base image {base} missing (run scripts/base-images.sh)")
    return subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="session")
def buildx(engine: str):  # -> dockyard.clients.buildx.BuildxInstall
    """Docker Buildx as dockyard finds it (scripts/setup.sh installs it); skips (fails under CI) without it."""
    from dockyard.clients.buildx import find_buildx
    from dockyard.runner import Runner

    install = find_buildx(Runner(echo=False))
    if install is None:
        unavailable("Docker Buildx not installed (bash scripts/buildx.sh installs it)")
    return install


def private_docker_config(path: Path) -> str:
    """A DOCKER_CONFIG of its own (no host logins) that still sees this user's CLI plugins (Buildx, Compose)."""
    path.mkdir(parents=True, exist_ok=True)
    from dockyard.clients.compose import user_plugin_dir

    plugins = user_plugin_dir(os.environ)
    if plugins.is_dir() and not (path / "cli-plugins").exists():
        (path / "cli-plugins").symlink_to(plugins)
    return str(path)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.invalid",
           "GIT_COMMITTER_NAME": "Test Author", "GIT_COMMITTER_EMAIL": "author@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check)


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def arguments_without_help(ns) -> list[str]:
    """``task --arg`` for every argument of ``ns`` with no help text.

    Invoke's ``Task.get_arguments`` pops each help text it uses, and task objects are shared by every collection
    built in this process, so the texts are put back for the next reader.
    """
    missing = []
    for name in ns.task_names:
        task = ns[name]
        saved = dict(task.help)
        try:
            missing += [f"{name} --{arg.name}" for arg in task.get_arguments() if not arg.help]
        finally:
            task.help = saved
    return missing


def library_path() -> str:
    """PYTHONPATH that lets a project copy's tasks.py import this checkout's dockyard."""
    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)


@dataclass
class SampleProject:
    """A copy of this repository's sample project in a temp dir, as a git repository, driven by real `inv`."""

    root: Path
    app: str
    env: dict[str, str] = field(default_factory=dict)

    def inv(self, *args: str, check: bool = False, env: dict[str, str] | None = None, timeout: float = 600,
            input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", *args], cwd=self.root, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": library_path(), **self.env, **(env or {})}, timeout=timeout,
            input=input, stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"inv {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    @property
    def config(self) -> dict:
        return yaml.safe_load((self.root / "invoke.yaml").read_text())

    def configure(self, extra: dict) -> None:
        """Merge ``extra`` into the project's invoke.yaml (under the top level)."""
        (self.root / "invoke.yaml").write_text(yaml.safe_dump(deep_merge(self.config, extra), sort_keys=False))

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return git(self.root, *args, check=check)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").stdout.strip()

    @property
    def repository(self) -> str:
        return self.config["dockyard"]["image"]["repository"]


PROJECT_FILES = ("tasks.py", "tasks", "invoke.yaml", ".dockerignore", ".gitignore", "requirements.txt", "app", "docker",
                 "environments", "templates")


def make_sample_project(dest: Path, *, app: str | None = None) -> SampleProject:
    app = app or f"t{uuid.uuid4().hex[:8]}"
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".env",
                                                                               "db.sqlite3"))
        elif source.exists():
            shutil.copy2(source, dest / name)
    for example in (dest / "environments").glob("*/.env.example"):
        shutil.copy(example, example.with_name(".env"))
    project = SampleProject(dest, app)
    project.configure({"dockyard": {
        "app": app,
        "image": {"repository": f"127.0.0.1:5000/dockyard-test/{app}"},
        "environments": {
            "dev": {"port": free_port(), "health_timeout": 60},
            "prod": {"port": free_port(), "health_timeout": 60},
        },
    }})
    git(dest, "init", "-q", "-b", "main")
    project.commit("initial")
    return project


def remove_test_artifacts(app: str) -> None:
    """Remove every container, volume, network and image a test project made (found by labels)."""
    def ids(*argv: str) -> list[str]:
        out = subprocess.run(list(argv), capture_output=True, text=True)
        return out.stdout.split()

    for prefix in (f"{app}-",):
        containers = ids("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project")
        mine = [c for c in containers if subprocess.run(
            ["docker", "inspect", "--format", "{{index .Config.Labels \"com.docker.compose.project\"}}", c],
            capture_output=True, text=True).stdout.strip().startswith(prefix)]
        if mine:
            subprocess.run(["docker", "rm", "-f", "-v", *mine], capture_output=True)
        for kind in ("network", "volume"):
            names = [n for n in ids("docker", kind, "ls", "-q") if n.startswith(prefix)]
            if names:
                subprocess.run(["docker", kind, "rm", *names], capture_output=True)
    images = ids("docker", "image", "ls", "-q", "--filter", f"label=dev.dockyard.app={app}")
    if images:
        subprocess.run(["docker", "image", "rm", "-f", *sorted(set(images))], capture_output=True)


@pytest.fixture
def sample_project(tmp_path: Path):
    """A fresh copy of the sample project (unique app name, free ports); everything it made is removed after."""
    project = make_sample_project(tmp_path / "project")
    yield project
    if engine_reachable():
        remove_test_artifacts(project.app)
