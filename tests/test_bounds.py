"""Every network call has a bound (issue 11): AWS calls, `docker push`, remote commands over SSH.

A lost connection is exit 7 in one line, never a traceback, and never exit 0 when the audit record or the unlock
did not happen. AWS runs against moto in server mode behind a loopback TCP proxy the test freezes or shuts; the
registry is a real htpasswd docker-registry frozen with SIGSTOP, then killed.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time
from types import SimpleNamespace

import pytest
from fixtures.tcp_proxy import tcp_proxy
from test_ecs_deploy import BUCKET as BUCKET_OF_ECS
from test_ecs_deploy import (
    audit_records,
    ecs,  # noqa: F401 - the fixture
)

from dockyard.clients.aws import aws_session
from dockyard.clients.s3 import S3Client
from dockyard.config import AwsBounds
from dockyard.errors import AwsError, Unreachable

BUCKET = "bounds-bucket"


@pytest.fixture(autouse=True)
def moto_credentials(monkeypatch):
    from fixtures.aws import FAKE_CREDENTIALS

    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def bounded_session(aws, **bounds):
    """A session made the way every task makes one (``aws_session``), with the bounds of ``dockyard.aws``."""
    settings = SimpleNamespace(aws_profile="", aws_region="us-east-1", aws_bounds=AwsBounds(**bounds))
    return aws_session(settings)


def test_settings_declare_the_bounds_with_defaults(sample_project):
    from dockyard.config import defaults, parse_settings

    data = defaults()
    assert data["aws"]["connect_timeout"] == 10.0 and data["aws"]["read_timeout"] == 60.0
    assert data["aws"]["max_attempts"] == 3 and data["registry"]["stall_timeout"] == 120.0
    data["app"] = "shop"
    settings = parse_settings(data, root=sample_project.root)
    assert settings.aws_bounds == AwsBounds(10.0, 60.0, 3) and settings.registry.stall_timeout == 120.0
    bad = sample_project.inv("image.list", env={"INVOKE_DOCKYARD_AWS_READ_TIMEOUT": "soon"})
    assert bad.returncode == 2 and "dockyard.aws.read_timeout" in bad.stderr, bad.stderr
    misspelt = sample_project.inv("image.list", env={"INVOKE_DOCKYARD_REGISTRY_STALL_TIMEOUTS": "3"})
    assert misspelt.returncode == 2 and "INVOKE_DOCKYARD_REGISTRY_STALL_TIMEOUT" in misspelt.stderr


def test_every_client_of_a_session_has_the_configured_bounds(aws):
    session = bounded_session(aws, connect_timeout=3, read_timeout=4, max_attempts=2)
    for service in ("s3", "ssm", "ecs", "elasticbeanstalk"):
        config = session.client(service, endpoint_url=aws.endpoint).meta.config
        assert (config.connect_timeout, config.read_timeout) == (3, 4)
        assert config.retries["total_max_attempts"] == 2


def test_an_endpoint_that_stalls_is_one_line_exit_7_within_the_bound(aws):
    aws.client("s3").create_bucket(Bucket=BUCKET)
    session = bounded_session(aws, read_timeout=1, max_attempts=2)
    with tcp_proxy(aws.endpoint) as proxy:
        s3 = S3Client(session.client("s3", endpoint_url=proxy.endpoint))
        s3.write(BUCKET, "before", b"{}")  # it answers through the proxy
        proxy.freeze()
        started = time.monotonic()
        with pytest.raises(Unreachable) as stalled:
            s3.write(BUCKET, "during", b"{}")
        took = time.monotonic() - started
    assert took < 15, took  # two attempts of one second each, and botocore's short backoff
    message = stalled.value.message
    assert stalled.value.exit_code == 7 and isinstance(stalled.value, AwsError)
    assert message.startswith(f"s3:PutObject on s3://{BUCKET}/during: {proxy.endpoint} stopped answering (no data "
                              "for 1s, 2 attempts; dockyard.aws.read_timeout): whether the call took effect is "
                              "unknown"), message
    assert "\n" not in message


def test_an_endpoint_that_is_gone_or_drops_the_connection_is_one_line_exit_7(aws):
    aws.client("s3").create_bucket(Bucket=BUCKET)
    session = bounded_session(aws, connect_timeout=2, read_timeout=5, max_attempts=1)
    with tcp_proxy(aws.endpoint) as proxy:
        s3 = S3Client(session.client("s3", endpoint_url=proxy.endpoint))
        s3.write(BUCKET, "before", b"{}")
        proxy.reset()
        with pytest.raises(Unreachable) as dropped:
            s3.read(BUCKET, "before")
        proxy.shut()
        time.sleep(0.3)
        with pytest.raises(Unreachable) as gone:
            s3.read(BUCKET, "before")
    assert dropped.value.exit_code == 7
    assert dropped.value.message.startswith(f"s3:GetObject on s3://{BUCKET}/before: ")
    assert "closed the connection" in dropped.value.message or "connection to" in dropped.value.message, \
        dropped.value.message
    assert gone.value.exit_code == 7
    assert gone.value.message.startswith(f"s3:GetObject on s3://{BUCKET}/before: cannot reach {proxy.endpoint}")


# --- a deploy whose AWS endpoint goes away mid-run ---------------------------------------------------------------

def run_until(project, args, env, line_starts, then, *, timeout=180):
    """Run `inv ARGS`; when a stdout line starts with ``line_starts``, call ``then()``; return (code, out, err)."""
    import os
    import subprocess
    import sys
    import threading

    from conftest import library_path

    proc = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=project.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": library_path(), **project.env, **env})
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    out, fired = [], False
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            out.append(line)
            if not fired and line.startswith(line_starts):
                then()
                fired = True
            if time.monotonic() > deadline:
                break
        proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    assert fired, "".join(out) + "".join(err)
    return proc.returncode, "".join(out), "".join(err)


@pytest.fixture
def ecs_behind_a_proxy(aws, ecs):  # noqa: F811 - ecs is the fixture of test_ecs_deploy
    env = ecs
    with tcp_proxy(aws.endpoint) as proxy:
        env.proxy = proxy
        env.bounded = {**aws.env, "INVOKE_DOCKYARD_AWS_ENDPOINT_URL": proxy.endpoint,
                       "INVOKE_DOCKYARD_AWS_READ_TIMEOUT": "2", "INVOKE_DOCKYARD_AWS_MAX_ATTEMPTS": "1",
                       "INVOKE_DOCKYARD_ECS_TIMEOUT": "120"}
        yield env


def test_ecs_deploy_whose_endpoint_stalls_mid_run_is_exit_7_and_says_the_lock_may_be_held(ecs_behind_a_proxy):
    """AWS freezes while the service is updated: the update, the audit record and the unlock all time out (2 s
    each); the one line names the last call and says the lock may be held, and how to clear it."""
    e = ecs_behind_a_proxy
    code, out, err = run_until(e.project, ("ecs.deploy", "--version", "1.2.4"), e.bounded,
                               "[3/", e.proxy.freeze)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 7 and len(lines) == 1 and "Traceback" not in err, (code, out, err)
    lock = f"s3://{BUCKET_OF_ECS}/dockyard/{e.project.app}/locks/prod.json"
    assert lines[0].startswith(f"dockyard: s3:DeleteObject on {lock}: {e.proxy.endpoint} stopped answering"), lines
    assert lines[0].endswith(f"the deploy lock of prod ({lock}) may still be held: once it answers, deploy again "
                             "with --force-unlock"), lines
    e.proxy.reset()  # the held requests never arrive
    e.proxy.thaw()
    assert e.aws.client("s3").get_object(Bucket=BUCKET_OF_ECS, Key=lock.split("/", 3)[3])  # it is held indeed
    assert audit_records(e) == []  # the audit record was not written either: so the exit is not 0
    again = e.inv("ecs.deploy", "--version", "1.2.4", "--no-wait", "--force-unlock")
    assert again.returncode == 0 and "cleared the lock of" in again.stdout, again.stdout + again.stderr


# --- docker push / pull: a stall timeout with progress detection ------------------------------------------------

def test_a_watched_command_that_keeps_making_progress_is_not_stopped_and_one_that_stalls_is(capsys):
    from dockyard.runner import Runner, Stalled

    runner = Runner()
    slow = ("for i in 1 2 3 4 5 6; do printf 'abc: Pushing [==>  ] %sMB/9MB\\r' $i; sleep 0.5; done; "
            "printf 'abc: Pushed\\n'; echo 'v1: digest: sha256:0 size: 9'")
    started = time.monotonic()
    result = runner.watch(["sh", "-c", slow], stall_timeout=2)  # 3 s in all, never 2 s without output
    assert result.ok and time.monotonic() - started >= 2.9
    assert result.stdout.splitlines() == ["abc: Pushed", "v1: digest: sha256:0 size: 9"]  # no progress bars
    assert capsys.readouterr().out.splitlines() == ["abc: Pushed", "v1: digest: sha256:0 size: 9"]
    started = time.monotonic()
    with pytest.raises(Stalled) as stalled:
        runner.watch(["sh", "-c", "printf 'abc: Waiting\\n'; sleep 60"], stall_timeout=1.5)
    assert 1.4 < time.monotonic() - started < 10
    assert stalled.value.seconds == 1.5 and stalled.value.last == "abc: Waiting"


def test_a_person_at_a_terminal_sees_dockers_own_progress_display():
    import pty

    from dockyard.runner import Runner

    ours, theirs = pty.openpty()
    with os.fdopen(theirs, "w") as terminal:
        result = Runner().watch(["sh", "-c", "printf 'abc: Pushing [=>  ] 1MB/2MB\\rabc: Pushed\\n'"],
                                stall_timeout=5, stream=terminal)
        shown = os.read(ours, 4096).decode()
    os.close(ours)
    assert "abc: Pushing [=>  ] 1MB/2MB\rabc: Pushed" in shown and result.stdout == "abc: Pushed"


@pytest.fixture
def own_registry(engine, tmp_path, monkeypatch):
    """A registry of the test's own (it is frozen and killed), a tiny image tagged for it, and a docker login."""
    import subprocess
    import uuid

    from fixtures.registry import running_registry

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    root = tmp_path / "registry"
    root.mkdir()
    app = f"t{uuid.uuid4().hex[:8]}"
    with running_registry(root) as registry:
        (tmp_path / "image").mkdir()
        (tmp_path / "image" / "payload").write_bytes(uuid.uuid4().bytes * 4096)
        (tmp_path / "image" / "Dockerfile").write_text(
            f"FROM scratch\nCOPY payload /payload\nLABEL dev.dockyard.app={app}\n")
        ref = registry.repository(f"dockyard-test/{app}:1")
        subprocess.run(["docker", "build", "-q", "-t", ref, str(tmp_path / "image")], check=True, capture_output=True)
        subprocess.run(["docker", "login", "--username", registry.username, "--password-stdin", registry.host],
                       input=registry.password, text=True, check=True, capture_output=True)
        try:
            yield registry, ref
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(registry.pid, signal.SIGCONT)
            subprocess.run(["docker", "image", "rm", "-f", ref], capture_output=True)


def test_a_push_to_a_frozen_registry_is_stopped_after_the_stall_timeout_in_one_line_exit_7(own_registry):
    from dockyard.clients.docker import DockerClient
    from dockyard.runner import Runner

    registry, ref = own_registry
    docker = DockerClient(Runner(), stall_timeout=3)
    os.kill(registry.pid, signal.SIGSTOP)
    started = time.monotonic()
    try:
        with pytest.raises(Unreachable) as stalled:
            docker.push(ref)
    finally:
        os.kill(registry.pid, signal.SIGCONT)
    assert time.monotonic() - started < 20
    message = stalled.value.message
    assert stalled.value.exit_code == 7 and "\n" not in message
    assert message.startswith(f"docker push of {ref} to {registry.host} made no progress for 3s and was stopped")
    assert message.endswith(f"check that {registry.host} answers (GET /v2/) and the network to it, or raise "
                            "dockyard.registry.stall_timeout")
    assert not [p for p in _processes("docker") if ref in p]  # the stopped push is gone
    docker.push(ref)  # thawed, the same push works
    assert registry.manifest_digest(ref.split("/", 1)[1].rsplit(":", 1)[0], "1")


def test_a_login_to_a_frozen_registry_is_bounded_by_the_stall_timeout(own_registry):
    from dockyard.clients.docker import DockerClient
    from dockyard.core.credentials import RegistryCredentials
    from dockyard.registry import login
    from dockyard.runner import Runner

    registry, _ = own_registry
    credentials = RegistryCredentials(registry.host, registry.username, registry.password)
    os.kill(registry.pid, signal.SIGSTOP)
    started = time.monotonic()
    try:
        with pytest.raises(Unreachable) as stalled:
            login(DockerClient(Runner(), stall_timeout=2), credentials)
    finally:
        os.kill(registry.pid, signal.SIGCONT)
    assert time.monotonic() - started < 15
    assert stalled.value.message == (f"registry {registry.host} did not answer `docker login` within 2s: check that it "
                                     "answers (GET /v2/) and the network, or raise dockyard.registry.stall_timeout")
    assert registry.password not in stalled.value.message


def test_a_push_to_a_registry_that_is_gone_says_it_refused_the_connection(own_registry):
    from dockyard.clients.docker import DockerClient
    from dockyard.runner import Runner

    registry, ref = own_registry
    os.kill(registry.pid, signal.SIGKILL)
    os.waitpid(registry.pid, 0)
    with pytest.raises(Unreachable) as refused:
        DockerClient(Runner(), stall_timeout=10).push(ref)
    assert refused.value.exit_code == 7
    assert refused.value.message == (f"docker push of {ref}: {registry.host} refused the connection (nothing listens "
                                     "there): check that the registry runs, and image.repository / "
                                     "dockyard.registry.url")


def _processes(name: str) -> list[str]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0].decode(errors="replace")) == name:
                found.append(" ".join(a.decode(errors="replace") for a in argv))
    return found


def test_publish_to_a_registry_frozen_during_the_push_stops_in_one_line_exit_7(engine, sample_project, tmp_path):
    """The issue's case: the registry freezes (SIGSTOP) during `publish`; it used to hang for good."""
    from fixtures.registry import running_registry
    from test_release_flow import make_rig

    root = tmp_path / "registry"
    root.mkdir()
    with running_registry(root) as registry:
        rig = make_rig(sample_project, tmp_path, registry)
        rig.ok("release", "1.0.0")
        ref = f"{rig.repository}:1.0.0"
        frozen = []

        def freeze() -> None:
            os.kill(registry.pid, signal.SIGSTOP)
            frozen.append(time.monotonic())

        try:
            code, out, err = run_until(rig.project, ("publish", "1.0.0"),
                                       {**rig.env, "INVOKE_DOCKYARD_REGISTRY_STALL_TIMEOUT": "3"},
                                       "[2/", freeze, timeout=120)
            took = time.monotonic() - frozen[0]
        finally:
            os.kill(registry.pid, signal.SIGCONT)
        assert f"push {ref}" in out, out
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("$ ")]
        assert code == 7 and len(lines) == 1 and "Traceback" not in err, (code, out, err)
        assert lines[0].startswith(f"dockyard: docker push of {ref} to {registry.host} made no progress for 3s"), lines
        assert took < 30, took
        assert rig.registry_tags() == [] and "refs/tags/v1.0.0" not in rig.origin_refs()  # nothing half-published
        rig.ok("publish", "1.0.0")  # thawed, publishing again works
        assert rig.registry_tags() == ["1.0.0"]


# --- SSH: remote commands have a bound (dockyard.ssh.command_timeout) --------------------------------------------

def test_ssh_command_timeout_is_a_setting_with_a_default(sample_project):
    from dockyard.config import defaults, parse_settings

    data = defaults()
    assert data["ssh"]["command_timeout"] == 900.0
    data.update(app="shop")
    data["environments"]["staging"]["target"] = "ssh"
    data["environments"]["prod"]["target"] = "ssh"
    data["environments"]["prod"]["ssh"] = {"command_timeout": 30}
    settings = parse_settings(data, root=sample_project.root)
    assert settings.ssh.command_timeout("staging") == 900.0 and settings.ssh.command_timeout("prod") == 30.0
    data["ssh"]["command_timeout"] = 0
    from dockyard.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        parse_settings(data, root=sample_project.root)
    assert "dockyard.ssh.command_timeout" in refused.value.message


def test_a_remote_command_over_its_bound_is_stopped_in_one_line_exit_7(sshd_host):
    from dockyard.clients.ssh import SshHost, SshOptions
    from dockyard.runner import Command

    options = SshOptions(key_file=sshd_host.key_file, use_agent=False, known_hosts=sshd_host.known_hosts,
                         command_timeout=2)
    host = SshHost(sshd_host.user, "127.0.0.1", sshd_host.port, options, name="staging-1")
    marker = f"{os.getpid()}{time.monotonic_ns() % 10000}"
    try:
        assert host.output(Command(("echo", "answers"))) == "answers"
        started = time.monotonic()
        with pytest.raises(Unreachable) as stopped:
            host.run(Command(("sleep", f"7{marker}")))
        assert time.monotonic() - started < 10
        assert stopped.value.exit_code == 7
        assert stopped.value.message == (f"staging-1: `sleep 7{marker}` did not finish within 2s and was stopped: "
                                         "check the host (its network, disk, the registry it pulls from), or raise "
                                         "dockyard.ssh.command_timeout")
        assert host.output(Command(("echo", "still"))) == "still"  # the connection is still usable
    finally:
        host.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and [p for p in _processes("sleep") if marker in p]:
        time.sleep(0.2)
    assert not [p for p in _processes("sleep") if marker in p]  # the remote command was hung up


def test_eb_deploy_whose_endpoint_goes_away_mid_wait_is_one_line_exit_7_and_releases_the_lock(
        eb, eb_release_images, sample_project):
    """The issue's case: the EB endpoint is gone mid-deploy (it was a 131-line EndpointConnectionError traceback)."""
    from fixtures.eb import tag_release

    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0", "first release")
    with tcp_proxy(eb.endpoint) as proxy:
        env = {"INVOKE_DOCKYARD_EB_ENDPOINT_URL": proxy.endpoint, "INVOKE_DOCKYARD_AWS_MAX_ATTEMPTS": "1",
               "INVOKE_DOCKYARD_AWS_CONNECT_TIMEOUT": "2"}
        code, out, err = run_until(sample_project, ("deploy",), env, "[5/", proxy.shut, timeout=300)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 7 and len(lines) == 1 and "Traceback" not in err, (code, out, err)
    assert lines[0].startswith("dockyard: elasticbeanstalk:Describe"), lines
    # the connection in use is dropped (closed before answering), or a new one is refused (cannot reach)
    assert f"cannot reach {proxy.endpoint}" in lines[0] or f"{proxy.endpoint} closed the connection" in lines[0], lines
    keys = [o["Key"] for o in eb.s3().list_objects_v2(Bucket=eb.bucket).get("Contents") or []]
    assert not [k for k in keys if "/locks/" in k], keys  # S3 still answers: the lock was released
    audits = [k for k in keys if "/audit/" in k]
    assert len(audits) == 1, keys
    import json

    record = json.loads(eb.s3().get_object(Bucket=eb.bucket, Key=audits[0])["Body"].read())
    assert record["result"] == "failed" and proxy.endpoint in record["detail"], record
