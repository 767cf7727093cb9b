"""What ``inv deploy|rollback|status|history`` share whatever the target: which environment, which flags, the result.

Pure data and small functions: :func:`default_environment` picks the environment when ``--env`` is not given,
:func:`refuse_unsupported` refuses a flag the environment's target cannot honour, :class:`Result` is the one
object ``--json`` prints, and :func:`machine_output` keeps stdout for it alone.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ConfigError, Refused

VERBS = ("deploy", "rollback", "status", "history")

#: Per target, the verbs it has and the options of each verb it honours (beyond ``--env``, ``--json``).
SUPPORTED: Mapping[str, Mapping[str, frozenset[str]]] = {
    "eb": {
        "deploy": frozenset({"version", "dry_run", "no_wait", "timeout", "no_rollback", "force_unlock",
                             "skip_release_command"}),
        "rollback": frozenset({"to", "dry_run", "timeout"}),
        "status": frozenset(),
        "history": frozenset({"count"}),
    },
    "ecs": {
        "deploy": frozenset({"version", "dry_run", "no_wait", "timeout", "no_rollback", "force_unlock",
                             "skip_release_command"}),
        "rollback": frozenset({"to", "dry_run", "timeout"}),
        "status": frozenset(),
        "history": frozenset({"count"}),
    },
    "ssh": {
        "deploy": frozenset({"version", "dry_run", "lock_wait", "limit", "force_unlock", "skip_release_command"}),
        "rollback": frozenset({"to", "dry_run", "lock_wait", "limit", "force_unlock"}),
        "status": frozenset(),
        "history": frozenset({"count"}),
    },
}

TARGET_NAMES = {"eb": "Elastic Beanstalk", "ecs": "ECS", "ssh": "SSH hosts"}

#: The ``result`` of a failed run, by exit code (dockyard/errors.py); any other code is ``failed``.
FAILURES = {
    1: "failed", 2: "invalid", 3: "command_failed", 4: "engine_unavailable", 5: "refused", 6: "unhealthy",
    7: "unreachable", 8: "aws_error", 9: "locked", 10: "failed", 11: "rolled_back", 12: "timed_out",
    130: "interrupted",
}


def default_environment(targets: Mapping[str, str], release_env: str, verb: str) -> str:
    """``--env`` when not given: the one environment with a target (for ``verb``), else the release environment.

    ``targets`` maps each environment to its ``target`` setting ("" = not deployed).
    """
    candidates = [name for name, target in targets.items() if verb in SUPPORTED.get(target, {})]
    if len(candidates) == 1:
        return candidates[0]
    if release_env in candidates:
        return release_env
    if not candidates:
        raise Refused(f"no environment can {verb}: set dockyard.environments.<name>.target to eb, ecs or ssh "
                      "in invoke.yaml")
    listed = ", ".join(f"{name} ({targets[name]})" for name in sorted(candidates))
    raise Refused(f"which environment? several can {verb}: {listed}; name one with --env")


def require_target(env: str, target: str) -> None:
    if target not in SUPPORTED:
        raise ConfigError(f"environment {env!r} is not deployed to Elastic Beanstalk, ECS or SSH hosts (it has no "
                          f"target): set dockyard.environments.{env}.target to eb, ecs or ssh")


def refuse_unsupported(env: str, target: str, verb: str, given: Mapping[str, Any]) -> None:
    """One line, exit 5, for the first option given that ``target`` cannot honour for ``verb``."""
    allowed = SUPPORTED[target][verb]
    for name, value in given.items():
        if value and name not in allowed:
            flag = "--" + name.replace("_", "-")
            honoured = ", ".join(sorted("--" + n.replace("_", "-") for n in allowed)) or "none"
            raise Refused(f"{flag} is not supported by {verb} on {env} (target {target}, {TARGET_NAMES[target]}): "
                          f"drop it (options it honours: {honoured})")


@dataclass
class Result:
    """What ``--json`` prints: one object, whatever the verb, target and outcome."""

    verb: str
    environment: str = ""
    target: str = ""
    version: str = ""
    image: str = ""
    digest: str = ""
    previous: str = ""
    result: str = ""
    exit_code: int = 0
    url: str = ""
    dry_run: bool = False
    message: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def failed(self, exit_code: int, message: str) -> None:
        self.exit_code = exit_code
        self.result = FAILURES.get(exit_code, "failed")
        self.message = message

    def to_json(self) -> str:
        data = asdict(self)
        for name in ("version", "image", "digest", "previous", "url"):
            data[name] = data[name] or None  # unknown, rather than an empty string
        return json.dumps(data, sort_keys=False)


def append_github_output(path: str, result: Result) -> None:
    """``version=``, ``result=`` and ``url=`` lines appended to ``$GITHUB_OUTPUT`` (GitHub's ``name=value`` form)."""
    values = {"version": result.version, "result": result.result, "url": result.url}
    with open(path, "a", encoding="utf-8") as out:  # one line each, whatever the value
        out.writelines(f"{name}={' '.join(str(value).split())}\n" for name, value in values.items())


@contextmanager
def machine_output(enabled: bool) -> Iterator[Any]:
    """While enabled, everything written to stdout (ours, Invoke's, child processes') goes to stderr.

    Yields a function that writes the one JSON document to the real stdout, after the block.
    """
    if not enabled:
        yield lambda text: None
        return
    pending: list[str] = []
    sys.stdout.flush()
    saved_fd = os.dup(1)
    saved = sys.stdout
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        yield pending.append
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_fd, 1)
        os.close(saved_fd)
        sys.stdout = saved
        for text in pending:
            print(text, flush=True)
