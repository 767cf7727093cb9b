"""Hostile input from issue 11: each case is a command line (and what it plants first) that must end in one line
on stderr, its documented exit code, no traceback and no change. Used by tests/test_hostile_input.py and
benchmarks/hostile_input.py.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Callable

import yaml


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    fragment: str  # what the one line must say
    code: int = 2
    plant: Callable[[object], None] | None = field(default=None, repr=False)  # prepares the sample project
    engine: bool = False  # needs the Docker engine (the task asks it before anything else)


def _settings(extra: dict) -> Callable:
    def plant(project) -> None:
        project.configure({"dockyard": extra})
    return plant


def _raw_yaml(text: str) -> Callable:
    def plant(project) -> None:
        (project.root / "invoke.yaml").write_text((project.root / "invoke.yaml").read_text() + text)
    return plant


def _env_bytes(data: bytes, env: str = "dev") -> Callable:
    def plant(project) -> None:
        path = project.root / f"environments/{env}/.env"
        path.write_bytes(path.read_bytes() + data)
    return plant


def _both(*plants: Callable) -> Callable:
    def plant(project) -> None:
        for each in plants:
            each(project)
    return plant


#: A host nobody listens on: the cases must be refused before any connection is tried.
NO_HOST = {"ssh": {"hosts": ["deploy@127.0.0.1:1"]}}


def _garbled_known_hosts(project) -> None:
    known = project.root / "known_hosts"
    known.write_text("127.0.0.1 ssh-ed25519 AAAA!!this-is-not-base64\n")
    project.configure({"dockyard": {"ssh": {"hosts": ["deploy@127.0.0.1:1"], "known_hosts": str(known)}}})


def _second_prod(project) -> None:
    data = yaml.safe_load((project.root / "invoke.yaml").read_text())
    data["dockyard"]["environments"]["Prod"] = {"port": 8080}
    (project.root / "invoke.yaml").write_text(yaml.safe_dump(data))


CASES: tuple[Case, ...] = (
    # numeric flags Invoke used to cast itself (a ValueError traceback)
    Case("deploy --timeout abc", ("deploy", "--timeout", "abc"), "--timeout: expected a whole number"),
    Case("deploy --timeout 1.5", ("deploy", "--timeout", "1.5"), "--timeout: expected a whole number"),
    Case("deploy --timeout -5", ("deploy", "--timeout", "-5"), "--timeout: expected a whole number of at least 0"),
    Case("ecs.deploy --timeout abc", ("ecs.deploy", "--timeout", "abc"), "--timeout: expected a whole number"),
    Case("staging.ssh-deploy --lock-wait abc", ("staging.ssh-deploy", "--lock-wait", "abc"), "--lock-wait: expected"),
    Case("staging.ssh-deploy --limit 0", ("staging.ssh-deploy", "--limit", "0"), "--limit: expected"),
    Case("staging.logs --tail abc", ("staging.logs", "--tail", "abc"), "--tail: expected a whole number"),
    Case("staging.logs --for abc", ("staging.logs", "--for", "abc"), "--for: expected a number"),
    Case("staging.audit --lines -3", ("staging.audit", "--lines", "-3"), "--lines: expected"),
    Case("ecs.status --events abc", ("ecs.status", "--events", "abc"), "--events: expected a whole number"),
    Case("eb.events --count -1", ("eb.events", "--count", "-1"), "--count: expected a whole number of at least 1"),
    Case("eb.events --count abc", ("eb.events", "--count", "abc"), "--count: expected a whole number"),
    Case("eb.local --port 70000", ("eb.local", "--port", "70000"), "--port: expected a whole number from 1 to 65535"),
    Case("dev.start --timeout abc", ("dev.start", "--timeout", "abc"), "--timeout: expected a whole number"),
    Case("image.prune --keep -1", ("image.prune", "--keep", "-1"), "--keep: expected a whole number of at least 1"),
    Case("image.prune --keep 0", ("image.prune", "--keep", "0"), "--keep: expected a whole number of at least 1"),
    # choices and paths
    Case("eb.bundle --platform v9", ("eb.bundle", "--platform", "v9"), "--platform: expected one of v1, v2, compose"),
    Case("eb.dockercfg --format bogus", ("eb.dockercfg", "--format", "bogus"), "--format: expected one of legacy"),
    Case("eb.bundle --output missing/", ("eb.bundle", "--output", "missing/b.zip"), "--output: directory missing"),
    Case("ecs.render --output missing/", ("ecs.render", "--output", "missing/t.json"), "--output: directory missing"),
    Case("ci.config --output through a file", ("ci.config", "--output", "invoke.yaml/ci.yml"),
         "--output: cannot write"),
    Case("ci.cache.save --dir /proc/x", ("ci.cache.save", "--dir", "/proc/dockyard-x"),
         "--dir: cannot create directory /proc/dockyard-x", engine=True),
    # settings files
    Case("-f missing.yaml", ("-f", "missing.yaml", "dev.ps"), "-f missing.yaml: no such settings file"),
    Case("duplicate key in invoke.yaml", ("dev.ps",), "key 'app' appears twice", plant=_raw_yaml("  app: other\n")),
    Case("aws.endpoint_url: not a url", ("eb.status",), "dockyard.aws.endpoint_url: expected an http",
         plant=_settings({"aws": {"endpoint_url": "not a url"}})),
    Case("eb.bucket with $(...)", ("eb.status",), "dockyard.eb.bucket: not an S3 bucket name",
         plant=_settings({"eb": {"bucket": "b$(touch pwned)"}})),
    Case("Prod next to prod", ("dev.ps",), "both read INVOKE_DOCKYARD_ENVIRONMENTS_PROD_PORT", plant=_second_prod),
    Case("garbled known_hosts line", ("staging.status",), "dockyard.ssh.known_hosts:", plant=_garbled_known_hosts),
    # .env files
    Case(".env with binary bytes", ("dev.start",), "holds control characters", plant=_env_bytes(b"BLOB=a\x00\x01b\n")),
    Case(".env not UTF-8", ("dev.start",), "not UTF-8 text", plant=_env_bytes(b"NAME=caf\xe9\n")),
    Case(".env multi-line value", ("staging.ssh-deploy", "--dry-run"), "spans several lines",
         plant=_both(_settings(NO_HOST), _env_bytes(b'CERT="line one\nline two"\n', "staging"))),
)


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: int
    lines: list[str]
    traceback: bool
    changed: list[str]

    @property
    def clean(self) -> bool:
        return (self.code == self.case.code and len(self.lines) == 1 and not self.traceback and not self.changed
                and self.case.fragment in self.lines[0])


def snapshot(project) -> list[str]:
    """What a refused command must leave as it was: the project's files (with their content) and its git state."""
    files = sorted(str(p.relative_to(project.root)) + ":" + str(p.stat().st_size) + ":" + str(p.stat().st_mtime_ns)
                   for p in project.root.rglob("*") if ".git" not in p.parts and p.is_file())
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project.root, capture_output=True, text=True,
                            check=False)
    return files + ["git: " + status.stdout]


def run_case(project, case: Case, env: dict[str, str]) -> Outcome:
    if case.plant is not None:
        case.plant(project)
    before = snapshot(project)
    result = project.inv(*case.args, env=env, timeout=120)
    after = snapshot(project)
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("$ ")]
    changed = sorted(set(before) ^ set(after))
    return Outcome(case, result.returncode, lines, "Traceback" in result.stderr + result.stdout, changed)
