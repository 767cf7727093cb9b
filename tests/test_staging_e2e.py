"""`inv staging.*` against real SSH hosts (Debian's sshd on loopback), the real registry and the real engine."""
from __future__ import annotations

import os
import re
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
from fixtures.plans import planned_steps, ran_steps

PYTHON_BASE = "dockyard-base/python:bookworm"


def docker(*args: str, check: bool = True, config: Path | None = None) -> subprocess.CompletedProcess:
    argv = ["docker", *(["--config", str(config)] if config else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=check)


@pytest.fixture(scope="session")
def staging_images(engine, registry, tmp_path_factory):
    """The sample app pushed as v1, v2, v3 and `bad` (its /health/ answers 503) to the real registry."""
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
    for tag, env in (("bad", "SAMPLE_FAIL_HEALTH=1 APP_VERSION=bad"), ("v3", "APP_VERSION=v3")):
        context = tmp_path_factory.mktemp(f"{tag}-image")
        (context / "Dockerfile").write_text(f"FROM {repo}:v1\nENV {env}\n")
        docker("build", "-q", "-t", f"{repo}:{tag}", str(context))
        refs.append(f"{repo}:{tag}")
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


def test_a_proxy_image_the_host_cannot_pull_is_one_line_naming_proxy_image(staging):
    staging.project.configure({"dockyard": {"ssh": {"proxy_image": "127.0.0.1:9/dockyard-test/no-such-nginx:0"}}})
    setup = staging.inv("staging.setup")
    assert_clean_failure(setup, 3)
    assert len(setup.stderr.strip().splitlines()) == 1, setup.stderr
    assert "dockyard.ssh.proxy_image" in setup.stderr and "no-such-nginx" in setup.stderr


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


def test_staging_dry_run_prints_the_plan_the_deploy_then_runs(staging):
    staging.inv("staging.setup", check=True)
    dry = staging.inv("staging.ssh-deploy", "--version", "v1", "--dry-run", check=True)
    real = staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    assert staging.live_version() == "v1"
    assert planned_steps(dry.stdout) == ran_steps(real.stdout) == planned_steps(real.stdout)
    shown = dry.stdout.split("(dry run: nothing was changed)")[0].strip()
    assert "log in to the registry" in shown and "upload the env file" in shown  # this project has both
    assert shown in real.stdout  # the same plan, host lines included, as the run printed before running it
    assert staging.password not in dry.stdout + real.stdout


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


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_staging_sigterm_mid_deploy_frees_the_lock_and_audits_interrupted(staging, signum, code):
    """What CI cancel and `timeout` send: the lock is freed, the audit says interrupted, the next deploy runs."""
    staging.inv("staging.setup", check=True)
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "staging.ssh-deploy", "--version", "v1"],
                            cwd=staging.project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": library_path(), **staging.project.env,
                                 "PYTHONFAULTHANDLER": "1"})
    seen = []
    try:
        for line in proc.stdout:  # the deployer reports each step as it ends: "  host: pulled IMAGE (1.2s)"
            seen.append(line)
            if re.search(r": pulled \S+ \(\d", line):  # not the plan's "remove the images dockyard pulled..."
                break
        assert proc.poll() is None, seen
        proc.send_signal(signum)  # now inside the host's deploy: starting the container or its health gate
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints where every thread waits
            out, err = proc.communicate(timeout=15)
            pytest.fail(f"the deploy still ran 60 s after {signum.name}:\n{''.join(seen)}{out}\n{err[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, ("".join(seen), out, err)
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("dockyard: interrupted by SIG"), err
    assert not (staging.state_dir() / "lock").exists()
    audit = (staging.state_dir() / "audit.log").read_text().splitlines()
    assert "interrupted" in audit[-1] and "v1" in audit[-1], audit
    again = staging.inv("staging.ssh-deploy", "--version", "v1")
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert staging.live_version() == "v1"


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


def image_present(ref: str) -> bool:
    return docker("image", "inspect", "--format", "{{.Id}}", ref, check=False).returncode == 0


def test_staging_prunes_images_beyond_keep_and_rollback_still_works(staging, staging_images):
    # The host shares this engine with its user: their own images of the repository are here before any deploy
    # (a local build, a commit tag, a release the host will also run), and only what the deploys pulled may go.
    users = [f"{staging_images}:dev", f"{staging_images}:1edf639"]
    for ref in users:
        docker("tag", f"{staging_images}:v1", ref)
    docker("image", "rm", f"{staging_images}:v1", f"{staging_images}:bad", f"{staging_images}:v3")
    assert image_present(f"{staging_images}:v2")  # the user's v2 is here before the deploy pulls it
    staging.project.configure({"dockyard": {"ssh": {"keep": 1, "drain_seconds": 0}}})
    staging.inv("staging.setup", check=True)
    staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    staging.inv("staging.ssh-deploy", "--version", "v2", check=True)
    assert_clean_failure(staging.inv("staging.ssh-deploy", "--version", "bad"), 6)  # pulled, then removed
    assert image_present(f"{staging_images}:bad")
    third = staging.inv("staging.ssh-deploy", "--version", "v3", check=True)
    assert staging.live_version() == "v3"

    # keep=1: v2 stays (stopped, for rollback); v1 went with its container, and `bad`, which never had a
    # retained container, goes too.
    assert image_present(f"{staging_images}:v3") and image_present(f"{staging_images}:v2")
    assert not image_present(f"{staging_images}:v1") and not image_present(f"{staging_images}:bad")
    assert "removed the images" in third.stdout and f"{staging_images}:bad" in third.stdout
    names = docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"label=dev.dockyard.ssh.prefix={staging.prefix}")
    assert sorted(n for n in names.stdout.split() if "-app-" in n) == [f"{staging.prefix}-app-v2",
                                                                       f"{staging.prefix}-app-v3"]

    back = staging.inv("staging.rollback", check=True)
    assert "v3 -> v2" in back.stdout and staging.live_version() == "v2"
    assert image_present(f"{staging_images}:v3") and image_present(f"{staging_images}:v2")  # v3 is retained now

    # A fourth deploy drops v2's container (keep=1): the image was the user's before the first deploy, so it stays.
    fourth = staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    assert staging.live_version() == "v1"
    assert image_present(f"{staging_images}:v2") and f"{staging_images}:v2" not in fourth.stdout
    for ref in users:
        assert image_present(ref), f"the user's {ref} was removed"
    pulled = (staging.state_dir() / "pulled-images").read_text().split()
    assert f"{staging_images}:v2" not in pulled and f"{staging_images}:v1" in pulled
    docker("image", "rm", *users, check=False)


def test_staging_logs_follow_every_host_with_prefixes(sample_project, sshd_hosts, registry, staging_images):
    staging = StagingProject(sample_project, sshd_hosts, registry, staging_images, count=2)
    try:
        staging.inv("staging.setup", check=True)
        staging.inv("staging.ssh-deploy", "--version", "v1", "--limit", "2", check=True)
        marker = f"marker-{uuid.uuid4().hex[:8]}"
        for n in range(2):  # a request to each host's app, so each log has a fresh line
            staging.get(f"/health/?{marker}={n}", n=n)
        started = time.monotonic()
        # bounded by --for, not by the (endless) stream: without it this would run into the 120 s timeout
        followed = staging.inv("staging.logs", "--follow", "--tail", "20", "--for", "3", check=True, timeout=120)
        took = time.monotonic() - started
        lines = followed.stdout.splitlines()
        for n, port in enumerate(sshd_hosts[:2]):
            name = f"{port.address}/{staging.prefixes[n]}"
            mine = [line for line in lines if line.startswith(f"{name} | ")]
            assert any(f"{marker}={n}" in line for line in mine), (name, followed.stdout[-2000:])
        assert took >= 3, took  # it followed for the whole --for
        assert staging.secret not in followed.stdout
        assert remote_followers(staging.prefixes) == []  # hung up on the hosts too

        # Without --for it runs until Ctrl-C, which ends it quietly.
        proc = subprocess.Popen([sys.executable, "-m", "invoke", "staging.logs", "--follow", "--tail", "1"],
                                cwd=staging.project.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": library_path(), **staging.project.env})
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        try:
            # Interrupt only once both hosts are followed and each has printed a line (bounded wait).
            deadline = time.monotonic() + 60
            while len(remote_followers(staging.prefixes, wait=0)) < 2 or not all(
                    any(f"{staging.prefixes[n]} | " in line for line in list(lines)) for n in range(2)):
                assert proc.poll() is None and time.monotonic() < deadline, lines
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)  # a loaded 2-core machine needs a while to hang up on both hosts
            reader.join(timeout=10)
            err = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
        out = "".join(lines)
        assert proc.returncode is not None
        assert "Traceback" not in err and all(f"{staging.prefixes[n]} | " in out for n in range(2)), (out, err)
        assert remote_followers(staging.prefixes) == []
    finally:
        staging.cleanup()


def remote_followers(prefixes: list[str], wait: float = 5) -> list[str]:
    """`docker logs --follow` processes of these deploys still running on the host (after up to ``wait`` s)."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if cmdline.startswith("docker ") and " logs " in cmdline and "--follow" in cmdline and \
                        any(f"{p}-app-" in cmdline for p in prefixes):
                    found.append(cmdline)
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def test_staging_exec_tty_gives_the_command_a_terminal(staging):
    staging.inv("staging.setup", check=True)
    staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    plain = staging.inv("staging.exec", "test -t 0 && echo is-a-tty || echo not-a-tty", check=True)
    assert "not-a-tty" in plain.stdout
    interactive = staging.inv("staging.exec", "--tty", "test -t 0 && echo is-a-tty || echo not-a-tty; "
                              "read line; echo got-$line", input="hello\n", check=True, timeout=60)
    assert "is-a-tty" in interactive.stdout and "got-hello" in interactive.stdout, interactive.stdout


ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_staging_ecr_token_goes_on_the_remote_login_stdin(sample_project, sshd_shim_host, registry, staging_images,
                                                          aws):
    import base64

    host, shims = sshd_shim_host
    argv_log, stdin_log = shims / "argv.log", shims / "stdin.log"
    real = shutil.which("docker")
    # The host's `docker`: records every call; `login` keeps what it read on stdin and says yes (a stand-in for
    # ECR accepting the token); everything else is the real docker.
    (shims / "docker").write_text(f"""#!/bin/sh
printf '%s\\n' "$*" >> "{argv_log}"
case " $* " in *" login "*) cat > "{stdin_log}"; exit 0 ;; esac
exec "{real}" "$@"
""")
    (shims / "docker").chmod(0o755)
    staging = StagingProject(sample_project, [host], registry, staging_images)
    staging.project.configure({"dockyard": {"image": {"repository": f"{ECR_HOST}/app"},
                                            "aws": {"region": "us-east-1", "endpoint_url": aws.endpoint}}})
    staging.project.env.update({k: v for k, v in aws.env.items() if k.startswith("AWS_")})
    data = aws.client("ecr").get_authorization_token()["authorizationData"][0]
    token = base64.b64decode(data["authorizationToken"]).decode().partition(":")[2]
    try:
        staging.inv("staging.setup", check=True)
        with CmdlineWatch([token]) as watch:
            result = staging.inv("staging.ssh-deploy", "--version", "v1")
        logins = [line for line in argv_log.read_text().splitlines() if " login " in f" {line} "]
        assert logins == [f"--config {staging.state_dir()}/docker login --username AWS --password-stdin {ECR_HOST}"]
        assert stdin_log.read_text() == token + "\n"
        assert any(line.endswith(f"pull --quiet {ECR_HOST}/app:v1") for line in argv_log.read_text().splitlines())
        # moto is no registry: the pull fails, as one line saying where, and nothing is left behind.
        assert_clean_failure(result, 7)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert f"{ECR_HOST}" in result.stderr and "unreachable" in result.stderr
        assert token not in result.stdout + result.stderr
        assert watch.scans > 10 and watch.seen == []
        assert not (staging.state_dir() / "lock").exists()
        # this project's containers only: other projects on the same engine may be deploying their own v1
        assert "app-v1" not in docker("ps", "-a", "--filter", f"label=dev.dockyard.ssh.prefix={staging.prefix}",
                                      "--format", "{{.Names}}").stdout
    finally:
        staging.cleanup()


def test_the_samples_app_tasks_run_on_the_first_staging_host(staging):
    """`tasks/app.py` through the staging exec path; the superuser's password never shows on a command line."""
    password = f"pw-{uuid.uuid4().hex[:12]}"
    staging.inv("staging.setup", check=True)
    staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    staging.inv("app.migrate", "--env", "staging", check=True)
    with CmdlineWatch([password]) as watch:
        created = staging.inv("app.createsuperuser", "--env", "staging", "--username", "ops",
                              env={"DJANGO_SUPERUSER_PASSWORD": password}, check=True)
    assert "Superuser created successfully." in created.stdout
    assert watch.scans > 10 and watch.seen == []
    assert password not in created.stdout + created.stderr
    staging.inv("app.loaddata", "--env", "staging", check=True)
    checked = staging.inv("app.shell", "--env", "staging", "--command",
                          "from django.contrib.auth.models import Group, User; "
                          f"print('ops', User.objects.get(username='ops').check_password('{password}'), "
                          "sorted(g.name for g in Group.objects.all()))", check=True)
    assert "ops True ['editors', 'viewers']" in checked.stdout


def test_streamed_container_output_is_masked(staging):
    """`staging.exec env` and the logs print what the container was given: the .env's secrets come back masked."""
    staging.inv("staging.setup", check=True)
    staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    shown = staging.inv("staging.exec", "env")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "DJANGO_SECRET_KEY=********" in shown.stdout
    both = staging.inv("staging.exec", "--all-hosts", "echo $DJANGO_SECRET_KEY >&2; printf %s $DJANGO_SECRET_KEY")
    logs = staging.inv("staging.logs", "--tail", "50")
    for result in (shown, both, logs):
        assert staging.secret not in result.stdout + result.stderr
    assert "********" in both.stderr and "********" in both.stdout  # a last line without a newline too


def test_read_only_tasks_create_nothing_on_the_host(staging):
    """status, audit and logs before any setup: they report, and the host has no new directory."""
    assert not staging.state_dir().exists()
    status = staging.inv("staging.status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "lock: free" in status.stdout and "live none" in status.stdout
    audit = staging.inv("staging.audit")
    assert audit.returncode == 0 and "(no deploys yet)" in audit.stdout, audit.stdout + audit.stderr
    staging.inv("staging.logs")  # no container to show: whatever it says, it writes nothing
    assert not staging.state_dir().exists()


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _pids_running(marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_connection_lost_mid_command_is_exit_7_in_one_line(staging):
    """The SSH session dies while a remote command runs: Unreachable (7), one line, no traceback."""
    staging.inv("staging.setup", check=True)
    staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    marker = f"{uuid.uuid4().int % 1000}.{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "staging.exec", f"echo started; sleep {marker}"],
                            cwd=staging.project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": library_path(), **staging.project.env})
    try:
        assert "started" in proc.stdout.readline()
        # The remote `docker exec` client runs under the SSH session that this test's command opened: end that
        # session (its sshd process, found from the command's own pid), as a dropped connection would.
        client = next(pid for pid in _pids_running(marker) if pid != proc.pid and _parent(pid) != 1)
        session = client
        while not Path(f"/proc/{session}/comm").read_text().startswith("sshd"):
            session = _parent(session)
        os.kill(session, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "the SSH connection broke" in lines[0], (proc.returncode, out, err)
    assert proc.returncode == 7


def test_doctor_reaches_the_staging_hosts_and_the_registry(staging, sshd_hosts):
    lines = staging.inv("doctor", "--no-aws", check=True).stdout.splitlines()
    hosts_row = next(line for line in lines if line.startswith("staging hosts (staging)"))
    assert " OK " in hosts_row and "Docker usable" in hosts_row
    registry_row = next(line for line in lines if line.startswith("registry"))
    assert " OK " in registry_row and "v2 API" in registry_row
    keys_row = next(line for line in lines if line.startswith("SSH keys"))
    assert " OK " in keys_row and sshd_hosts[0].key_file.name in keys_row  # ssh.key_file counts as a key

    closed = free_port()
    staging.project.configure({"dockyard": {"ssh": {"hosts": [f"{sshd_hosts[0].user}@127.0.0.1:{closed}"]},
                                            "registry": {"url": f"127.0.0.1:{free_port()}"}}})
    result = staging.inv("doctor", "--no-aws")
    assert result.returncode == 0, result.stderr  # neither is needed on every machine: a warning with the fix
    lines = result.stdout.splitlines()
    hosts_row = next(line for line in lines if line.startswith("staging hosts (staging)"))
    assert " WARN " in hosts_row and str(closed) in hosts_row and "key_file" in hosts_row
    registry_row = next(line for line in lines if line.startswith("registry"))
    assert " WARN " in registry_row and "unreachable" in registry_row


# --- the release command (issue 16) -------------------------------------------------------------------------------

# The release command of these tests: a stand-in migration that appends "<unix time>_<version>" to a list in the
# redis accessory (reached by its name on the app network) and says so on stdout.
MARKER_COMMAND = (
    "python -c \"import os, socket, time; s = socket.create_connection(('redis', 6379)); "
    "s.sendall(('RPUSH migrations %.6f_%s\\r\\n' % (time.time(), os.environ['APP_VERSION'])).encode()); "
    "print('migrated', os.environ['APP_VERSION'], 'secret' if os.environ.get('DJANGO_SECRET_KEY') else 'no-secret', "
    "s.recv(64).decode().strip())\""
)
REDIS = {"redis": {"image": "dockyard-base/redis:bookworm"}}


def migrations(prefix: str) -> list[tuple[float, str]]:
    said = docker("exec", f"{prefix}-redis", "redis-cli", "LRANGE", "migrations", "0", "-1").stdout.split()
    return [(float(when), version) for when, _, version in (entry.partition("_") for entry in said)]


def first_request(container: str) -> float:
    """When the container logged its first request (the engine's timestamp of that log line)."""
    from datetime import datetime

    logs = docker("logs", "--timestamps", container)
    line = next(line for line in (logs.stdout + logs.stderr).splitlines() if '"GET /' in line)
    stamp = line.split()[0]  # 2026-01-01T10:00:00.123456789Z
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float(f"0.{fraction or 0}")


def test_staging_release_command_runs_once_on_the_primary_before_the_new_version_serves(
        sample_project, sshd_hosts, registry, staging_images):
    staging = StagingProject(sample_project, sshd_hosts, registry, staging_images, count=2)
    staging.project.configure({"dockyard": {"ssh": {"accessories": REDIS}, "environments": {
        "staging": {"release_command": MARKER_COMMAND, "release_command_timeout": 60}}}})
    try:
        staging.inv("staging.setup", check=True)
        dry = staging.inv("staging.ssh-deploy", "--version", "v1", "--limit", "1", "--dry-run", check=True)
        primary = f"{sshd_hosts[0].address}/{staging.prefixes[0]}"
        assert f"run the release command on {primary}" in planned_steps(dry.stdout)
        assert "in a one-off container of v1" in dry.stdout and "--rm --name" in dry.stdout
        assert migrations(staging.prefixes[0]) == []

        for version in ("v1", "v2"):
            started = time.time()
            with CmdlineWatch([staging.secret, staging.password]) as watch, Load(staging.ports[0]) as load:
                run = staging.inv("staging.ssh-deploy", "--version", version, "--limit", "1", check=True)
            assert load.failed == [] or version == "v1", load.failed[:3]  # nothing served before v1
            steps = ran_steps(run.stdout)
            assert steps.index(f"run the release command on {primary}") == 1 and len(steps) == 5, steps
            assert f"migrated {version} secret :" in run.stdout  # its output, with the env file's values
            assert staging.secret not in run.stdout + run.stderr and watch.seen == []
            assert staging.live_version(0) == version and staging.live_version(1) == version
            # once per deploy, on the primary only (each host has its own redis)
            marks = migrations(staging.prefixes[0])
            assert [v for _, v in marks] == ["v1", "v2"][: len(marks)] and marks[-1][1] == version
            assert migrations(staging.prefixes[1]) == []
            # before the new version answered its first request (the health gate's) on either host
            when = marks[-1][0]
            assert started < when, (started, when)
            for prefix in staging.prefixes:
                assert when < first_request(f"{prefix}-app-{version}"), prefix
        assert planned_steps(dry.stdout) == [s.replace("v2", "v1") for s in steps]
        audit = (staging.state_dir() / "audit.log").read_text().splitlines()
        assert "release_command='ran " in audit[-1] and "before the switch" in audit[-1], audit[-1]
        assert docker("ps", "-aq", "--filter", f"name={staging.prefixes[0]}-release").stdout.strip() == ""
    finally:
        staging.cleanup()


FAILING_COMMAND = ("sh -c 'echo \"migrating $APP_VERSION\"; case $APP_VERSION in v2) echo boom; exit 3;; "
                   "v3) sleep 60;; esac'")


def test_staging_failing_release_command_keeps_the_old_version_and_changes_nothing(staging):
    staging.project.configure({"dockyard": {"environments": {
        "staging": {"release_command": FAILING_COMMAND, "release_command_timeout": 12}}}})
    staging.inv("staging.setup", check=True)
    staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    assert staging.live_version() == "v1"

    with Load(staging.ports[0]) as load:
        failed = staging.inv("staging.ssh-deploy", "--version", "v2")
    assert_clean_failure(failed, 10)
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert "release command" in failed.stderr and "exited 3" in failed.stderr and "v1 still serves" in failed.stderr
    assert "boom" in failed.stdout and "migrating v2" in failed.stdout  # its last output lines
    assert load.failed == [] and load.versions == {"v1"}, (load.failed[:3], load.versions)
    assert staging.live_version() == "v1"
    ours = docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"label=dev.dockyard.ssh.prefix={staging.prefix}")
    assert sorted(ours.stdout.split()) == [f"{staging.prefix}-app-v1", f"{staging.prefix}-proxy"]
    assert not (staging.state_dir() / "lock").exists()
    audit = (staging.state_dir() / "audit.log").read_text().splitlines()
    assert "version=v2" in audit[-1] and "outcome=release-command-failed" in audit[-1], audit[-1]
    assert "exited 3" in audit[-1]

    # One that runs too long is stopped on the host and removed: the same failure.
    started = time.monotonic()
    slow = staging.inv("staging.ssh-deploy", "--version", "v3")
    assert_clean_failure(slow, 10)
    assert "ran longer than 12s" in slow.stderr and time.monotonic() - started < 50
    assert docker("ps", "-aq", "--filter", f"name={staging.prefix}-release").stdout.strip() == ""
    assert staging.live_version() == "v1" and not (staging.state_dir() / "lock").exists()

    # An emergency deploy without it: v2 goes live, and the audit says the command was skipped.
    dry = staging.inv("staging.ssh-deploy", "--version", "v2", "--skip-release-command", "--dry-run", check=True)
    assert "skipped (--skip-release-command)" in dry.stdout and "run the release command" not in dry.stdout
    skipped = staging.inv("deploy", "--env", "staging", "--version", "v2", "--skip-release-command", check=True)
    assert "migrating v2" not in skipped.stdout and staging.live_version() == "v2"
    audit = (staging.state_dir() / "audit.log").read_text().splitlines()
    assert "outcome=succeeded" in audit[-1] and "release_command='skipped (--skip-release-command)'" in audit[-1]
