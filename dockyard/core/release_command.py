"""The release command every target shares: what it is, and how its failure reads.

``environments.<env>.release_command`` (e.g. ``python manage.py migrate --noinput``) runs once per deploy in a
one-off container of the *new* image, with the environment's runtime settings and secrets, after the image is
available and before any traffic moves. Each target runs it its own way (staging: ``docker run`` on the primary
host; ECS: a ``RunTask`` of the new revision; Elastic Beanstalk: a leader-only command of the bundle; locally:
``docker compose run``); they all build it from :class:`ReleaseCommand` and stop with :class:`ReleaseCommandFailed`
(exit 10, the old version still serving) when it fails.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import DeployFailed

#: how many of the command's last output lines a failure shows
TAIL_LINES = 20
#: the audit record's ``extra`` key saying what became of the release command
AUDIT_KEY = "release_command"
SKIPPED = "skipped (--skip-release-command)"


@dataclass(frozen=True)
class ReleaseCommand:
    """One environment's release command: its argv (never through a shell) and how long it may run."""

    argv: tuple[str, ...]
    timeout: int

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


def release_command_of(env: Any) -> ReleaseCommand | None:
    """The release command of a parsed :class:`dockyard.config.Environment`, or ``None`` when it has none."""
    text = getattr(env, "release_command", "") or ""
    if not text.strip():
        return None
    return ReleaseCommand(argv=tuple(shlex.split(text)), timeout=int(env.release_command_timeout))


def last_lines(output: str | Iterable[str], count: int = TAIL_LINES) -> list[str]:
    """The last ``count`` non-empty lines of a command's output."""
    lines = output.splitlines() if isinstance(output, str) else [str(line) for line in output]
    return [line for line in lines if line.strip()][-count:]


class ReleaseCommandFailed(DeployFailed):
    """The release command failed or timed out; nothing was switched and the old version still serves (exit 10)."""

    def __init__(self, command: ReleaseCommand, reason: str, output: str | Iterable[str] = "",
                 *, serving: str = "") -> None:
        self.command = command
        self.reason = reason
        self.tail = last_lines(output)
        still = f"; {serving} still serves" if serving else "; the old version still serves"
        head = f"release command {command.text!r} {reason}{still}"
        shown = "\n".join(f"  | {line}" for line in self.tail)
        super().__init__(f"{head}\n{shown}" if shown else head)
