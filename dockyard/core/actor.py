"""Who is deploying, and when: the one actor function every lock and audit record uses."""
from __future__ import annotations

import getpass
import os
import socket
from datetime import datetime, timezone

# CI systems name the person (or bot) that started the pipeline; DOCKYARD_ACTOR overrides them all.
ACTOR_VARIABLES = ("DOCKYARD_ACTOR", "GITHUB_ACTOR", "CIRCLE_USERNAME", "GITLAB_USER_LOGIN")


def actor() -> str:
    """``user@host``: the first of ``DOCKYARD_ACTOR``, ``GITHUB_ACTOR``, ``CIRCLE_USERNAME``, ``GITLAB_USER_LOGIN``,
    else the OS user; the host is this machine's name."""
    user = next((os.environ[v] for v in ACTOR_VARIABLES if os.environ.get(v)), "")
    if not user:
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no passwd entry in some containers
            user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(when: datetime) -> str:
    """ISO 8601 to the second, UTC: how locks and audit records write times."""
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")
