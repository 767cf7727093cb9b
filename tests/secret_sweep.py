"""A planted-secret sweep: plant distinctive secrets, run a flow as a user would (`inv` in the project), and grep
every place the flow could leave them: its output, the argv of every process on the machine while it ran (polled
from /proc), temp files, the project's files and git history, and the flow's own stores (task definitions, audit
records...). Each place checked is counted; each hit is a leak (flow, place, which secret).

Flows so far: ECS deploy against moto with ``ecs.secret_keys`` (plain and with ``inv -d``); ``release`` +
``publish`` to the htpasswd registry (its password, and the ``user:password`` pair docker keeps base64-encoded);
``staging.setup`` + two ``staging.ssh-deploy`` over real sshd (one with ``inv -d``), with an ``.env`` secret, the
registry password, a webhook URL and a post-deploy hook that prints its whole environment.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus


def spellings(value: str) -> set[str]:
    """A secret as written, URL-encoded, and base64-encoded (how a log, a form body or a config may carry it)."""
    return {value, quote(value, safe=""), quote_plus(value), base64.b64encode(value.encode()).decode()}


@dataclass
class Leak:
    flow: str
    place: str
    secret: str  # the kind (never the value)


@dataclass
class FlowReport:
    flow: str
    places: int = 0
    leaks: list[Leak] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class ArgvPoller:
    """Collects the argv of every process on the machine, every ``interval`` seconds, until stopped (bounded)."""

    def __init__(self, interval: float = 0.02, limit: float = 900) -> None:
        self.interval, self.limit = interval, limit
        self.seen: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self.stop.is_set() and time.monotonic() < deadline:
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    try:
                        with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                            raw = f.read()
                    except OSError:
                        continue
                    if raw:
                        self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            self.stop.wait(self.interval)

    def __enter__(self) -> "ArgvPoller":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


class Sweep:
    """The planted secrets (kind -> value) and the reports of the flows checked against them."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.reports: list[FlowReport] = []

    def plant(self, kind: str) -> str:
        value = f"SWEEP-{kind}-{uuid.uuid4().hex}"
        self.secrets[kind] = value
        return value

    def check(self, report: FlowReport, place: str, data: str | bytes, *, allowed: tuple[str, ...] = ()) -> None:
        """Count ``place`` as checked; record a leak for each planted secret (not ``allowed``) found in ``data``."""
        report.places += 1
        text = data.decode(errors="replace") if isinstance(data, bytes) else data
        for kind, value in self.secrets.items():
            if kind not in allowed and any(s in text for s in spellings(value)):
                report.leaks.append(Leak(report.flow, place, kind))

    def check_tree(self, report: FlowReport, root: Path, *, skip: tuple[Path, ...] = (), max_files: int = 5000,
                   max_bytes: int = 20_000_000) -> None:
        """Every file under ``root`` (bounded), except ``skip`` (the files the user put the secrets in)."""
        count = 0
        for path in sorted(root.rglob("*")):
            if count >= max_files:
                report.notes.append(f"{root}: stopped after {max_files} files")
                break
            if not path.is_file() or path.is_symlink() or path in skip or path.stat().st_size > max_bytes:
                continue
            count += 1
            self.check(report, f"file {path.relative_to(root)}", path.read_bytes())

    def check_run(self, report: FlowReport, name: str, result: subprocess.CompletedProcess, poller: ArgvPoller):
        self.check(report, f"{name}: stdout", result.stdout)
        self.check(report, f"{name}: stderr", result.stderr)
        self.check(report, f"{name}: argv of every process", "\n".join(sorted(poller.seen)))

    def check_git(self, report: FlowReport, root: Path) -> None:
        log = subprocess.run(["git", "log", "-p", "--all"], cwd=root, capture_output=True, text=True, timeout=60)
        self.check(report, "git log -p --all", log.stdout)

    @property
    def leaks(self) -> list[Leak]:
        return [leak for r in self.reports for leak in r.leaks]


def inv(project, *args: str, env: dict[str, str], tmpdir: Path, timeout: float = 300):
    """`inv ARGS` in the project (as a user types it), its temp files under ``tmpdir``, argv polled meanwhile."""
    with ArgvPoller() as poller:
        result = project.inv(*args, env={**env, "TMPDIR": str(tmpdir)}, timeout=timeout)
    return result, poller


# --- flows ---------------------------------------------------------------------------------------------------------


def ecs_flow(sweep: Sweep, ecs, workdir: Path, *, debug: bool = False) -> FlowReport:
    """`inv [-d] ecs.deploy` against moto with an ``.env`` secret in ``ecs.secret_keys`` and a planted AWS secret key
    and session token. A non-secret ``.env`` value must reach the task definition (the control: the grep finds it)."""
    report = FlowReport("ecs.deploy -d" if debug else "ecs.deploy")
    env_secret = sweep.plant("ecs-env-secret")
    aws_secret = sweep.plant("aws-secret-key")
    token = sweep.plant("aws-session-token")
    public = f"public-{uuid.uuid4().hex}"
    env_file = ecs.project.root / "environments" / "prod" / ".env"
    env_file.write_text(f"DJANGO_SECRET_KEY={env_secret}\nDJANGO_DEBUG=0\nDJANGO_ALLOWED_HOSTS={public}\n"
                        "APP_ENV=prod\n")
    ecs.project.configure({"dockyard": {"ecs": {"env_file": True, "secret_keys": ["DJANGO_SECRET_KEY"]}}})
    if ecs.project.git("status", "--porcelain").stdout.strip():
        ecs.project.commit("ecs secrets")
    tmpdir = workdir / f"tmp-{report.flow.replace(' ', '')}"
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = {**ecs.aws.env, "AWS_SECRET_ACCESS_KEY": aws_secret, "AWS_SESSION_TOKEN": token}
    args = (["-d"] if debug else []) + ["ecs.deploy", "--version", "1.2.4", "--no-wait"]
    result, poller = inv(ecs.project, *args, env=env, tmpdir=tmpdir)
    if result.returncode != 0:
        report.notes.append(f"inv exited {result.returncode}: {result.stderr[-500:]}")
    sweep.check_run(report, "inv " + " ".join(args), result, poller)
    if debug and "botocore" not in result.stderr:
        report.notes.append("no botocore debug log in the output")
    sweep.check_tree(report, tmpdir)
    sweep.check_tree(report, ecs.project.root, skip=(env_file, ecs.project.root / "invoke.yaml"))
    sweep.check_git(report, ecs.project.root)
    definitions = ecs.ecs.list_task_definitions(familyPrefix=ecs.project.app)["taskDefinitionArns"]
    for arn in definitions:
        text = json.dumps(ecs.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"], default=str)
        sweep.check(report, f"task definition {arn.rsplit('/', 1)[-1]}", text)
        if arn == definitions[-1] and public not in text:
            report.notes.append("control failed: the non-secret .env value is not in the new task definition")
    s3 = ecs.aws.client("s3")
    for obj in s3.list_objects_v2(Bucket="dockyard-deploys").get("Contents") or []:
        sweep.check(report, f"s3 {obj['Key']}", s3.get_object(Bucket="dockyard-deploys", Key=obj["Key"])["Body"].read())
    sweep.reports.append(report)
    return report


def publish_flow(sweep: Sweep, rig, workdir: Path) -> FlowReport:
    """`inv release 1.0.0` then `inv publish 1.0.0` to the htpasswd registry with its password from the
    environment. The password and ``user:password`` must appear nowhere but the private Docker config that
    ``docker login`` writes (0600); the control: that config does hold the pair, so the grep finds it there."""
    report = FlowReport("release + publish")
    registry = rig.registry
    sweep.secrets["registry-password"] = registry.password
    sweep.secrets["registry-login"] = f"{registry.username}:{registry.password}"
    tmpdir = workdir / "tmp-publish"
    tmpdir.mkdir(parents=True, exist_ok=True)
    for args in (("release", "1.0.0"), ("publish", "1.0.0", "--dry-run"), ("publish", "1.0.0")):
        result, poller = inv(rig.project, *args, env=rig.env, tmpdir=tmpdir, timeout=600)
        if result.returncode != 0:
            report.notes.append(f"inv {' '.join(args)} exited {result.returncode}: {result.stderr[-500:]}")
        sweep.check_run(report, "inv " + " ".join(args), result, poller)
    sweep.check_tree(report, tmpdir)
    sweep.check_tree(report, rig.project.root)  # .git/dockyard/releases records included
    sweep.check_git(report, rig.project.root)
    config = Path(rig.env["DOCKER_CONFIG"]) / "config.json"
    if not config.is_file() or base64.b64encode(sweep.secrets["registry-login"].encode()).decode() \
            not in config.read_text():
        report.notes.append("control failed: the private Docker config holds no login for the registry")
    elif config.stat().st_mode & 0o077:
        report.leaks.append(Leak(report.flow, f"{config.name} mode {oct(config.stat().st_mode & 0o777)}",
                                 "registry-login"))
    sweep.check_tree(report, config.parent, skip=(config,))
    image = f"{rig.repository}:1.0.0"
    archive = tmpdir / "image.tar"
    saved = subprocess.run(["docker", "save", "-o", str(archive), image], capture_output=True, text=True,
                           timeout=300)
    if saved.returncode != 0:
        report.notes.append(f"docker save {image}: {saved.stderr.strip()}")
    else:
        history = subprocess.run(["docker", "history", "--no-trunc", image], capture_output=True, text=True,
                                 timeout=60)
        sweep.check(report, "docker history --no-trunc", history.stdout)
        sweep.check(report, "docker inspect", subprocess.run(["docker", "image", "inspect", image],
                                                             capture_output=True, text=True, timeout=60).stdout)
        with tarfile.open(archive) as outer:
            for member in outer.getmembers():  # each layer (itself a tar) and the image config
                if member.isfile() and member.size <= 500_000_000:
                    data = outer.extractfile(member).read()
                    sweep.check(report, f"image {member.name}", data)
        archive.unlink()
    sweep.reports.append(report)
    return report


def staging_flow(sweep: Sweep, staging, webhook, workdir: Path) -> FlowReport:
    """``staging.setup``, ``staging.ssh-deploy`` v1 and v2 (``-d``) to the loopback sshd host, with the ``.env``
    secret, the registry password and a planted webhook URL; a post-deploy hook prints its environment (a secret
    there is a leak in the output). Checked beyond the outputs and argv: every file in the host's state directory
    (the audit log, the proxy configuration, the journal...) except the env file and the Docker config meant to
    hold them (both 0600), and each webhook body. Controls: the env file holds the secret, the webhook was called."""
    report = FlowReport("staging.ssh-deploy")
    sweep.secrets["env-secret"] = staging.secret
    sweep.secrets["registry-password"] = staging.password
    token = sweep.plant("webhook-token")
    url = f"http://127.0.0.1:{webhook.server.server_address[1]}/services/{token}"
    project = staging.project
    hooks = project.root / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "post-deploy").write_text("#!/bin/sh\necho 'hook environment:'\nenv | sort\n")
    (hooks / "post-deploy").chmod(0o755)
    project.commit("a post-deploy hook that prints its environment")
    tmpdir = workdir / "tmp-staging"
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = {"DOCKYARD_WEBHOOK_URL": url}
    for args in (("staging.setup",), ("staging.ssh-deploy", "--version", "v1"),
                 ("-d", "staging.ssh-deploy", "--version", "v2"), ("staging.status",)):
        result, poller = inv(project, *args, env=env, tmpdir=tmpdir, timeout=600)
        if result.returncode != 0:
            report.notes.append(f"inv {' '.join(args)} exited {result.returncode}: {result.stderr[-500:]}")
        sweep.check_run(report, "inv " + " ".join(args), result, poller)
        if args[-1] == "v1" and "hook environment:" not in result.stdout:
            report.notes.append("control failed: the post-deploy hook's output is not shown")
    sweep.check_tree(report, tmpdir)
    state = staging.state_dir()
    env_file, docker_config = state / "app.env", state / "docker" / "config.json"
    for held in (env_file, docker_config):
        if held.is_file() and held.stat().st_mode & 0o077:
            report.leaks.append(Leak(report.flow, f"{held.name} mode {oct(held.stat().st_mode & 0o777)}",
                                     "env-secret" if held == env_file else "registry-password"))
    if not env_file.is_file() or staging.secret not in env_file.read_text():
        report.notes.append("control failed: the host's env file does not hold the .env secret")
    sweep.check_tree(report, state, skip=(env_file, docker_config))
    sweep.check_tree(report, project.root, skip=(project.root / "environments" / "staging" / ".env",
                                                 project.root / "invoke.yaml"))
    sweep.check_git(report, project.root)
    if len(webhook.raw) != 2:
        report.notes.append(f"control failed: {len(webhook.raw)} webhook calls for 2 deploys")
    for n, body in enumerate(webhook.raw):
        sweep.check(report, f"webhook body {n + 1}", body)
    sweep.reports.append(report)
    return report
