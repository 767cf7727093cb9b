"""How a command you give dockyard runs in a container: the one rule every task follows.

``bypass`` (the default): the command runs *instead of* the image's ``ENTRYPOINT`` and ``CMD``, as ``docker exec``
runs it. ``dev.run "python3 manage.py check"`` means exactly that command, whether the image's entrypoint is
``["python3"]``, a wrapper script or nothing; ``dev.run``/``ci.test`` say ``--entrypoint`` so a new container obeys
the same rule as ``dev.test``, ``dev.shell`` and ``staging.exec`` in a running one.

``apply`` (``dockyard.command_entrypoint: apply``, for images whose entrypoint prepares every process, e.g. a
``docker-entrypoint.sh`` ending in ``exec "$@"``): the command is handed to the image's entrypoint everywhere,
also in the exec-based tasks, where dockyard puts the entrypoint in front of it.
"""
from __future__ import annotations

import shlex
from typing import Sequence

BYPASS = "bypass"
APPLY = "apply"
MODES = (BYPASS, APPLY)


def run_entrypoint(mode: str, argv: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """For a new container (``compose run``): the ``--entrypoint`` value (None = the image's) and the arguments.

    Compose splits ``--entrypoint`` like a shell, so the program is quoted.
    """
    if mode == APPLY or not argv:
        return None, tuple(argv)
    return shlex.quote(argv[0]), tuple(argv[1:])


def exec_argv(mode: str, entrypoint: Sequence[str], argv: Sequence[str]) -> tuple[str, ...]:
    """For a running container (``exec``): the argv, behind the image's ``entrypoint`` under ``apply``."""
    return (*entrypoint, *argv) if mode == APPLY else tuple(argv)


def shell_run(mode: str, image: str, line: str) -> tuple[str, ...]:
    """The tail of ``docker run`` that runs the shell ``line`` in ``image`` under the rule."""
    if mode == APPLY:
        return (image, "sh", "-c", line)
    return ("--entrypoint", "sh", image, "-c", line)
