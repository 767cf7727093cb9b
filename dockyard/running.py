"""A command in an environment's running app container, wherever that container runs.

An environment with a compose file runs it in its local stack (``docker compose exec``, the path of
``<env>.shell``); a ``target: ssh`` environment without one runs it on its first host (the path of
``<env>.exec``). A project's own tasks (the sample's ``app.*``) call :func:`run_in_app`, so one task works in every
environment. Secrets a command needs travel in ``stdin``, never in its arguments.
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import Refused


@dataclass(frozen=True)
class AppCommand:
    argv: tuple[str, ...]
    stdin: str | None = field(default=None, repr=False)
    interactive: bool = False  # a shell or a console: the terminal is handed over (a TTY when there is one)

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))


def app_location(env: Any) -> str:
    """``local`` (the compose stack) or ``ssh`` (the first host); refuses an environment with neither."""
    if env.compose is not None:
        return "local"
    if env.target == "ssh":
        return "ssh"
    how = f"its target ({env.target}) has no exec path in dockyard" if env.target else "it has no deploy target"
    raise Refused(f"{env.name} has no app container dockyard can run commands in: it has no compose file and {how}; "
                  f"give it a compose file (dockyard.environments.{env.name}.compose) or use another environment")


def run_in_app(project: Any, env_name: str, command: AppCommand) -> int:
    """Run ``command`` in the running app container of ``env_name``; its exit code (output goes to the user)."""
    env = project.environment(env_name)
    if command.stdin:
        project.mask.add(command.stdin.strip())
    if app_location(env) == "ssh":
        from .staging.service import StagingService

        return StagingService(project, env_name).exec(shlex.join(command.argv), all_hosts=False, service="",
                                                      tty=command.interactive and sys.stdin.isatty(),
                                                      stdin=command.stdin)
    from .stacks import StackService

    stack = StackService(project, env)
    compose = stack.compose()
    stack.app_container()  # refuses, naming `inv <env>.start`, when the app is not running
    # Without a terminal (piped input, CI) compose must not allocate a TTY.
    tty = command.interactive and command.stdin is None and sys.stdin.isatty()
    argv = stack.exec_command(compose, env.app_service, command.argv, tty=tty)
    if command.stdin is not None:
        argv = replace(argv, stdin=command.stdin)
    result = compose.run(argv, capture=False, interactive=command.interactive, check=False)
    return result.returncode
