"""`inv staging.*` against real SSH hosts (Debian's sshd on loopback), the real registry and the real engine."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import REPO, free_port, library_path

PYTHON_BASE = "dockyard-base/python:bookworm"


def docker(*args: str, check: bool = True, config: Path | None = None) -> subprocess.CompletedProcess:
    argv = ["docker", *(["--config", str(config)] if config else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def staging_images(engine, registry, tmp_path_factory):
    """The sample app pushed as v1, v2 and `bad` (its /health/ answers 503) to the real registry."""
    config = tmp_path_factory.mktemp("docker-config")
    repo = registry.repository(f"dockyard-test/staging-{uuid.uuid4().hex[:6]}")
    subprocess.run(["docker", "--config", str(config), "login", "--username", registry.username, "--password-stdin",
                    registry.host], input=registry.password, capture_output=True, text=True, check=True)
    refs = []
    for version in ("v1", "v2"):
        ref = f"{repo}:{version}"
        docker("build", "-q", "-f", "docker/app/Dockerfile", "--build-arg", f"PYTHON_IMAGE={PYTHON_BASE}",
               "--build-arg", f"APP_VERSION={version}", "-t", ref, str(REPO))
        refs.append(ref)
    bad = tmp_path_factory.mktemp("bad-image")
    (bad / "Dockerfile").write_text(f"FROM {repo}:v1\nENV SAMPLE_FAIL_HEALTH=1 APP_VERSION=bad\n")
    docker("build", "-q", "-t", f"{repo}:bad", str(bad))
    refs.append(f"{repo}:bad")
    for ref in refs:
        docker("push", ref, config=config)
    yield repo
    docker("image", "rm", "-f", *refs, check=False)


class StagingProject:
    """A sample project configured to deploy `staging` over SSH to the fixture hosts."""

    def __init__(self, project, hosts, registry, repo: str, *, count: int = 1) -> None:
        self.project = project
        self.prefix = f"{project.app}-staging"
        self.ports = [free_port() for _ in range(count)]
        self.secret = f"env-secret-{uuid.uuid4().hex[:12]}"
        self.password = registry.password
        entries = []
        for n in range(count):
            entries.append({"address": hosts[n].address, "prefix": f"{self.prefix}{'' if n == 0 else n}",
                            "proxy_port": self.ports[n]})
        self.prefixes = [e["prefix"] for e in entries]
        project.configure({"dockyard": {
            "image": {"repository": repo},
            "registry": {"username": registry.username, "password_env": "DOCKYARD_REGISTRY_PASSWORD"},
            "ssh": {"hosts": entries, "key_file": str(hosts[0].key_file), "known_hosts": str(hosts[0].known_hosts),
                    "use_agent": False, "proxy_bind": "127.0.0.1", "health_timeout": 60, "drain_seconds": 1,
                    "keep": 2},
            "environments": {"staging": {"target": "ssh"}},
        }})
        env_file = project.root / "environments" / "staging" / ".env"
        env_file.write_text(env_file.read_text().replace("DJANGO_SECRET_KEY=change-me",
                                                         f"DJANGO_SECRET_KEY={self.secret}"))
        project.env["DOCKYARD_REGISTRY_PASSWORD"] = registry.password

    def inv(self, *args: str, **kwargs):
        return self.project.inv(*args, **kwargs)

    def state_dir(self, n: int = 0) -> Path:
        return Path.home() / ".dockyard" / self.prefixes[n]

    def get(self, path: str = "/health/", n: int = 0, timeout: float = 5) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[n]}{path}", timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    def live_version(self, n: int = 0) -> str:
        import json

        status, body = self.get(n=n)
        return json.loads(body)["version"] if status == 200 else f"HTTP {status}"

    def cleanup(self) -> None:
        for prefix in self.prefixes:
            ids = docker("ps", "-aq", "--filter", f"label=dev.dockyard.ssh.prefix={prefix}").stdout.split()
            if ids:
                docker("rm", "-f", "-v", *ids, check=False)
            docker("network", "rm", prefix, check=False)
            volumes = [v for v in docker("volume", "ls", "-q").stdout.split() if v.startswith(prefix + "-")]
            if volumes:
                docker("volume", "rm", *volumes, check=False)
            shutil.rmtree(Path.home() / ".dockyard" / prefix, ignore_errors=True)


@pytest.fixture
def staging(sample_project, sshd_hosts, registry, staging_images):
    project = StagingProject(sample_project, sshd_hosts, registry, staging_images)
    yield project
    project.cleanup()


class Load:
    """Requests to the proxy's public port, all the time, from a few threads; counts what failed."""

    def __init__(self, port: int, threads: int = 4) -> None:
        self.url = f"http://127.0.0.1:{port}/health/"
        self.stop = threading.Event()
        self.sent = 0
        self.failed: list[str] = []
        self.versions: set[str] = set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, daemon=True) for _ in range(threads)]

    def loop(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    body = response.read().decode()
                ok, detail = response.status == 200, body
            except Exception as exc:  # noqa: BLE001 - every failure counts
                ok, detail = False, repr(exc)
            with self.lock:
                self.sent += 1
                if not ok:
                    self.failed.append(detail)
                elif '"version"' in detail:
                    self.versions.add(detail.split('"version"')[1].split('"')[1])

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


class CmdlineWatch:
    """Reads every process's command line on this host (the staging host) while a deploy runs."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [s.encode() for s in secrets]
        self.stop = threading.Event()
        self.seen: list[str] = []
        self.scans = 0
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        cmdline = f.read()
                except OSError:
                    continue
                # The registry fixture (of any test session on this machine) sets its password with htpasswd.
                if any(s in cmdline for s in self.secrets) and not cmdline.startswith(b"htpasswd\0"):
                    self.seen.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
            self.scans += 1
            time.sleep(0.01)

    def __enter__(self) -> "CmdlineWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def assert_clean_failure(result, code: int) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("dockyard: ")


def test_staging_deploy_switch_rollback_and_lock(staging):
    setup = staging.inv("staging.setup", check=True)
    assert "proxy" in setup.stdout
    assert staging.inv("staging.setup", check=True).returncode == 0  # idempotent
    assert staging.get()[0] == 502  # the proxy answers; nothing is deployed yet

    first = staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    assert staging.live_version() == "v1", first.stdout
    env_file = staging.state_dir() / "app.env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"

    # A second version while requests run all the time: none fails, and no secret shows anywhere.
    with CmdlineWatch([staging.password, staging.secret]) as watch, Load(staging.ports[0]) as load:
        time.sleep(1)
        started = time.monotonic()
        second = staging.inv("staging.ssh-deploy", "--version", "v2", check=True)
        took = time.monotonic() - started
        time.sleep(1)
    assert load.failed == [], load.failed[:5]
    assert load.sent > 50 and load.versions == {"v1", "v2"}, (load.sent, load.versions)
    assert watch.scans > 10 and watch.seen == []
    for text in (first.stdout, first.stderr, second.stdout, second.stderr):
        assert staging.password not in text and staging.secret not in text
    assert staging.live_version() == "v2"
    print(f"deploy of v2 took {took:.1f}s with {load.sent} requests, 0 failed")

    # A version whose health check fails: the old one keeps serving, the exit code says so, no lock is left.
    bad = staging.inv("staging.ssh-deploy", "--version", "bad")
    assert_clean_failure(bad, 6)
    assert "keeps serving" in bad.stderr and "| " in bad.stdout  # its last log lines are shown
    assert staging.live_version() == "v2"
    assert not (staging.state_dir() / "lock").exists()
    assert docker("ps", "-aq", "--filter", f"name={staging.prefix}-app-bad").stdout.strip() == ""

    # Rollback: the previous version from the audit log, through the same health gate, no pull.
    back = staging.inv("staging.rollback", check=True)
    assert "v1" in back.stdout
    assert staging.live_version() == "v1"

    status = staging.inv("staging.status", check=True)
    assert "live v1" in status.stdout and "lock: free" in status.stdout
    audit = staging.inv("staging.audit", check=True).stdout
    assert "deploy version=v2" in audit and "outcome=health-failed" in audit and "rollback version=v1" in audit

    # Another deploy holds the lock: refused with the holder's details; unlock clears it.
    lock = staging.state_dir() / "lock"
    lock.mkdir()
    (lock / "details").write_text("holder: someone@ci\naction: deploy\nversion: v9\n")
    refused = staging.inv("staging.ssh-deploy", "--version", "v2")
    assert_clean_failure(refused, 9)  # lock held
    assert "someone@ci" in refused.stderr
    assert staging.live_version() == "v1"
    assert "someone@ci" in staging.inv("staging.unlock", check=True).stdout
    assert not lock.exists()

    ran = staging.inv("staging.exec", "echo hello-from-$APP_VERSION", check=True)
    assert "hello-from-v1" in ran.stdout
    logs = staging.inv("staging.logs", "--tail", "5", check=True)
    assert staging.secret not in logs.stdout


def test_staging_ctrl_c_mid_deploy_releases_the_lock(staging):
    staging.inv("staging.setup", check=True)
    lock = staging.state_dir() / "lock"
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "staging.ssh-deploy", "--version", "v1"], cwd=staging.project.root,
                            env={**os.environ, "PYTHONPATH": library_path(), **staging.project.env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not lock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out
    assert "Traceback" not in err
    assert not lock.exists(), (out, err)


def test_staging_unreachable_host_and_wrong_key_change_nothing(staging, sshd_hosts, tmp_path):
    closed = free_port()
    staging.project.configure({"dockyard": {"ssh": {"hosts": [f"{sshd_hosts[0].user}@127.0.0.1:{closed}"]}}})
    result = staging.inv("staging.ssh-deploy", "--version", "v1")
    assert_clean_failure(result, 7)
    assert "unreachable" in result.stderr

    wrong = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    staging.project.configure({"dockyard": {"ssh": {"hosts": [sshd_hosts[0].address], "key_file": str(wrong)}}})
    result = staging.inv("staging.ssh-deploy", "--version", "v1")
    assert_clean_failure(result, 7)
    assert "authentication failed" in result.stderr

    unknown = tmp_path / "known_hosts"
    unknown.write_text("")
    staging.project.configure({"dockyard": {"ssh": {"key_file": str(sshd_hosts[0].key_file),
                                                    "known_hosts": str(unknown)}}})
    result = staging.inv("staging.setup", env={"CI": "true"})
    assert_clean_failure(result, 7)
    assert "host key unknown" in result.stderr

    assert docker("ps", "-aq", "--filter", f"label=dev.dockyard.ssh.prefix={staging.prefix}").stdout.strip() == ""
    assert not staging.state_dir().exists()


def test_staging_two_hosts_in_batches(sample_project, sshd_hosts, registry, staging_images):
    staging = StagingProject(sample_project, sshd_hosts, registry, staging_images, count=2)
    staging.project.configure({"dockyard": {"ssh": {"accessories": {
        "redis": {"image": "dockyard-base/redis:bookworm", "volume": "redis-data:/data"}}}}})
    try:
        staging.inv("staging.setup", check=True)
        for prefix in staging.prefixes:  # each host has its own accessory, with its own volume
            state = docker("inspect", "--format", "{{.State.Status}} {{range .Mounts}}{{.Name}}{{end}}",
                           f"{prefix}-redis").stdout.split()
            assert state == ["running", f"{prefix}-redis-data"]
        assert "already running" in staging.inv("staging.setup", check=True).stdout
        result = staging.inv("staging.ssh-deploy", "--version", "v1", "--limit", "1", check=True)
        assert "batch 2/2" in result.stdout
        assert staging.live_version(0) == "v1" and staging.live_version(1) == "v1"
        dry = staging.inv("staging.ssh-deploy", "--version", "v2", "--dry-run", check=True)
        assert "dry run" in dry.stdout and staging.live_version(1) == "v1"
        assert staging.password not in dry.stdout
        # The app reaches the accessory by its name on the app network.
        ping = staging.inv("staging.exec", "python -c \"import socket; socket.create_connection(('redis', 6379)); "
                                           "print('redis-ok')\"", check=True)
        assert "redis-ok" in ping.stdout
        staging.inv("staging.accessories.stop", check=True)
        assert docker("inspect", "--format", "{{.State.Status}}", f"{staging.prefixes[1]}-redis").stdout.strip() \
            == "exited"
    finally:
        staging.cleanup()
