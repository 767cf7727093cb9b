"""What every task shares: the error edge, and a :class:`Project` that loads settings and builds clients."""
from __future__ import annotations

import functools
import sys
from functools import cached_property
from typing import Any, Callable, TypeVar

from invoke.exceptions import Exit

from ..config import Environment, Settings, load_settings
from ..envfile import EnvFile, load_env_file
from ..errors import DockyardError
from ..runner import Masker, Runner

F = TypeVar("F", bound=Callable[..., Any])


def edge(func: F) -> F:
    """Turn a :class:`DockyardError` into one line on stderr and its exit code, with no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DockyardError as exc:
            raise Exit(f"dockyard: {exc.message}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("dockyard: interrupted", code=130) from None

    return wrapper  # type: ignore[return-value]


def exit_like(result: Any, message: str = "") -> None:
    """Leave with the exit code of a command whose output already reached the user (tests, one-off runs)."""
    if not result.ok:
        raise Exit(message or None, code=result.returncode)


class Project:
    """Settings plus the clients a task needs, created on first use (no I/O in the constructor)."""

    def __init__(self, c: Any, *, echo: bool = True) -> None:
        self.c = c
        self.settings: Settings = load_settings(c)
        self.mask = Masker()
        self.runner = Runner(echo=echo, mask=self.mask)

    def say(self, text: str = "") -> None:
        print(self.mask(text), flush=True)

    def warn(self, text: str) -> None:
        print(self.mask(text), file=sys.stderr, flush=True)

    def environment(self, name: str) -> Environment:
        return self.settings.environment(name)

    def env_file(self, env: Environment, *, required: bool = True) -> EnvFile | None:
        """Load and check the environment's ``.env``; its values become masked secrets."""
        if not required and not env.env_file.exists():
            return None
        loaded = load_env_file(env.env_file, env.env_example, root=self.settings.root)
        self.mask.add(*(v for v in loaded.values.values() if v not in self.public_words))
        return loaded

    @cached_property
    def public_words(self) -> frozenset[str]:
        """Values the settings already show (environment names, the app): masking them would garble output."""
        s = self.settings
        return frozenset({*s.environments, s.app, s.repository, s.registry.url})

    @cached_property
    def docker(self):  # -> DockerClient
        from ..clients.docker import DockerClient

        return DockerClient(self.runner)

    @cached_property
    def git(self):  # -> GitClient
        from ..clients.git import GitClient

        return GitClient(self.runner, self.settings.root)


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows as aligned columns (the first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
