"""Staging runs the environment's compose services: the app with its compose command, a worker of the same image
swapped with it, a named volume kept across deploys and rollbacks (real sshd, registry and engine)."""
from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
from conftest import PYTHON_BASE
from minimal_app import make_minimal_project
from test_staging_e2e import CmdlineWatch, StagingProject, assert_clean_failure, docker

# One script, three roles: the image's CMD (`devserver`), the compose file's app command (`serve`) and its worker.
APP_PY = """\
import json, os, signal, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VERSION = os.environ.get("APP_VERSION", "unknown")
DATA = Path(os.environ.get("DATA_DIR", "/tmp/data"))
MODE = sys.argv[1] if len(sys.argv) > 1 else "none"
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        log = DATA / "worker.log"
        body = json.dumps({"version": VERSION, "mode": MODE, "data_dir": str(DATA),
                           "secret_set": bool(os.environ.get("DJANGO_SECRET_KEY")),
                           "written": log.read_text().splitlines() if log.exists() else []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if MODE in ("serve", "devserver"):
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
elif MODE == "worker":
    if os.environ.get("WORKER_CRASH"):
        sys.exit("worker: WORKER_CRASH is set, exiting")
    DATA.mkdir(parents=True, exist_ok=True)
    with open(DATA / "worker.log", "a") as log:
        log.write(f"written by {VERSION}\\n")
    while True:
        time.sleep(1)
"""

DOCKERFILE = f"""\
FROM {PYTHON_BASE}
COPY app.py /srv/app.py
ARG APP_VERSION=unknown
ENV APP_VERSION=$APP_VERSION
CMD ["python3", "/srv/app.py", "devserver"]
"""

COMPOSE = """\
services:
  web:
    image: ${DOCKYARD_IMAGE}
    command: ["python3", "/srv/app.py", "serve"]
    env_file: [../environments/staging/.env]
    environment: {DATA_DIR: /data}
    volumes: [shared:/data]
  worker:
    image: ${DOCKYARD_IMAGE}
    command: ["python3", "/srv/app.py", "worker"]
    env_file: [../environments/staging/.env]
    environment: {DATA_DIR: /data}
    volumes: [shared:/data]
  cache:
    image: dockyard-base/redis:bookworm
    env_file: [../environments/staging/.env]
    environment: {CACHE_ROLE: staging}
    volumes: [cachedata:/data]
volumes:
  shared: {}
  cachedata: {}
"""


@pytest.fixture(scope="session")
def worker_images(engine, registry, tmp_path_factory):
    """The compose app's image pushed as v1 and v2 to the real registry."""
    config = tmp_path_factory.mktemp("docker-config")
    repo = registry.repository(f"dockyard-test/compose-{uuid.uuid4().hex[:6]}")
    subprocess.run(["docker", "--config", str(config), "login", "--username", registry.username, "--password-stdin",
                    registry.host], input=registry.password, capture_output=True, text=True, check=True)
    context = tmp_path_factory.mktemp("compose-app")
    (context / "app.py").write_text(APP_PY)
    (context / "Dockerfile").write_text(DOCKERFILE)
    refs = [f"{repo}:{version}" for version in ("v1", "v2")]
    for ref in refs:
        docker("build", "-q", "--build-arg", f"APP_VERSION={ref.rsplit(':', 1)[1]}", "-t", ref, str(context))
        docker("push", ref, config=config)
    yield repo
    docker("image", "rm", "-f", *refs, check=False)


@pytest.fixture
def compose_staging(tmp_path, sshd_hosts, registry, worker_images):
    project = make_minimal_project(tmp_path / "project")
    (project.root / "docker" / "staging.yml").write_text(COMPOSE)
    env_dir = project.root / "environments" / "staging"
    env_dir.mkdir(parents=True)
    (env_dir / ".env.example").write_text("DJANGO_SECRET_KEY=\n")
    (env_dir / ".env").write_text("DJANGO_SECRET_KEY=change-me\n")
    staging = StagingProject(project, sshd_hosts, registry, worker_images)
    project.configure({"dockyard": {
        "health_path": "/health/",
        "ssh": {"proxy_image": "dockyard-base/nginx:bookworm", "worker_start_seconds": 2},
        "environments": {"staging": {"target": "ssh", "compose": "docker/staging.yml"}},
    }})
    yield staging
    staging.cleanup()


def page(staging) -> dict:
    status, body = staging.get("/")
    assert status == 200, status
    return json.loads(body)


def workers(staging) -> dict[str, str]:
    """The worker containers of this deploy: name -> state."""
    listed = docker("ps", "-a", "--filter", f"label=dev.dockyard.ssh.prefix={staging.prefix}", "--filter",
                    "label=dev.dockyard.ssh.role=worker", "--format", "{{.Names}} {{.State}}").stdout.split("\n")
    return dict(line.split(" ", 1) for line in listed if line.strip())


def written(staging, line: str, timeout: float = 20) -> list[str]:
    """What the app reads from the shared volume, once ``line`` is there (the worker writes it at its start)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = page(staging)["written"]
        if line in seen or time.monotonic() > deadline:
            return seen
        time.sleep(0.3)


def test_staging_runs_the_compose_app_and_worker_and_keeps_the_volume(compose_staging):
    staging = compose_staging
    setup = staging.inv("staging.setup", check=True)
    assert f"{staging.prefix}-shared" in setup.stdout
    worker_v1, worker_v2 = f"{staging.prefix}-worker-v1", f"{staging.prefix}-worker-v2"
    cache = f"{staging.prefix}-cache"  # a compose service with an image of its own: an accessory
    shown = docker("inspect", "--format", "{{.Id}} {{.State.Status}} {{range .Mounts}}{{.Name}}{{end}}", cache)
    cache_id, state, mount = shown.stdout.split()
    assert (state, mount) == ("running", f"{staging.prefix}-cachedata")
    env = docker("inspect", "--format", "{{json .Config.Env}}", cache).stdout
    assert "CACHE_ROLE=staging" in env and f"DJANGO_SECRET_KEY={staging.secret}" in env  # compose env + the .env

    staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    first = page(staging)
    assert (first["version"], first["mode"], first["data_dir"], first["secret_set"]) == ("v1", "serve", "/data", True)
    assert "written by v1" in written(staging, "written by v1")  # the worker wrote it, the app reads it
    assert workers(staging) == {worker_v1: "running"}

    dry = staging.inv("staging.ssh-deploy", "--version", "v2", "--dry-run", check=True)
    shown = dry.stdout.split("(dry run: nothing was changed)")[0].strip()
    assert f"start the workers {worker_v2}" in shown and f"stop {staging.prefix}-app-v1, {worker_v1}" in shown
    assert f"--name {worker_v2} " in shown and " python3 /srv/app.py worker" in shown
    with CmdlineWatch([staging.secret]) as watch:
        second = staging.inv("staging.ssh-deploy", "--version", "v2", check=True)
    assert shown in second.stdout  # the plan the dry run showed is the one that ran
    assert watch.scans > 10 and watch.seen == []  # the .env reached the containers in files only
    assert page(staging)["version"] == "v2"
    assert written(staging, "written by v2") == ["written by v1", "written by v2"]  # v1's data survived
    assert workers(staging) == {worker_v1: "exited", worker_v2: "running"}  # one version's worker at a time
    status = staging.inv("staging.status", check=True).stdout
    assert "workers: v2: worker running; v1: worker exited" in status, status

    back = staging.inv("staging.rollback", check=True)
    assert "v2 -> v1" in back.stdout
    assert page(staging)["version"] == "v1" and page(staging)["mode"] == "serve"
    assert written(staging, "written by v1")[:2] == ["written by v1", "written by v2"]
    assert workers(staging) == {worker_v1: "running", worker_v2: "exited"}
    assert docker("volume", "inspect", f"{staging.prefix}-shared").returncode == 0
    logs = staging.inv("staging.logs", "--service", "worker", "--tail", "5", check=True)
    assert worker_v1 in logs.stdout
    # the accessory was kept across the deploys and the rollback, and the app reaches it by its service name
    assert docker("inspect", "--format", "{{.Id}}", cache).stdout.strip() == cache_id
    ping = staging.inv("staging.exec", "python3 -c \"import socket; socket.create_connection(('cache', 6379)); "
                                       "print('cache-ok')\"", check=True)
    assert "cache-ok" in ping.stdout


def test_a_worker_that_exits_at_once_fails_the_deploy_and_v1_keeps_serving(compose_staging):
    staging = compose_staging
    staging.inv("staging.setup", check=True)
    docker("rm", "-f", f"{staging.prefix}-cache")  # a deploy starts a compose accessory it finds missing
    first = staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    assert "start the accessory cache (dockyard-base/redis:bookworm)" in first.stdout
    assert docker("inspect", "--format", "{{.State.Status}}", f"{staging.prefix}-cache").stdout.strip() == "running"
    compose = staging.project.root / "docker" / "staging.yml"
    worker = '"worker"]\n    env_file: [../environments/staging/.env]\n    environment: {DATA_DIR: /data'
    compose.write_text(COMPOSE.replace(worker, worker + ", WORKER_CRASH: '1'"))
    assert "WORKER_CRASH" in compose.read_text()

    failed = staging.inv("staging.ssh-deploy", "--version", "v2")
    assert_clean_failure(failed, 6)
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert f"worker {staging.prefix}-worker-v2 exited right after its start" in failed.stderr
    assert "v1 keeps serving" in failed.stderr
    assert "WORKER_CRASH is set" in failed.stdout  # its last log lines are shown
    assert page(staging)["version"] == "v1"
    assert workers(staging) == {f"{staging.prefix}-worker-v1": "running"}  # nothing of v2 is left
    assert docker("ps", "-aq", "--filter", f"name={staging.prefix}-app-v2").stdout.strip() == ""
    assert not (staging.state_dir() / "lock").exists()
    last = (staging.state_dir() / "audit.log").read_text().splitlines()[-1]
    assert "deploy version=v2" in last and "outcome=failed" in last, last
