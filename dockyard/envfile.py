"""Environment files: ``environments/<env>/.env`` (secret, ignored) checked against ``.env.example`` (committed).

Files are parsed with python-dotenv, never sourced by a shell. Values are secrets: callers register them with a
:class:`~dockyard.secrets.Masker` so no echoed command shows them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .errors import EnvFileError


@dataclass(frozen=True)
class EnvFile:
    path: Path
    values: Mapping[str, str]

    def keys(self) -> list[str]:
        return list(self.values)


def parse_env_file(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values  # imported here: `inv --list` must stay fast

    if not path.is_file():
        raise EnvFileError(f"{path}: file not found")
    return {k: ("" if v is None else v) for k, v in dotenv_values(path, interpolate=False).items()}


def load_env_file(path: Path, example: Path | None = None, *, root: Path | None = None) -> EnvFile:
    """Read ``path``; when ``example`` exists every key it names must be present in ``path``."""
    shown = _shown(path, root)
    if not path.is_file():
        hint = f"copy {_shown(example, root)} to {shown} and fill it in" if example and example.is_file() else (
            f"create {shown}"
        )
        raise EnvFileError(f"{shown} is missing: {hint}")
    values = parse_env_file(path)
    if example is not None and example.is_file():
        missing = [key for key in parse_env_file(example) if key not in values]
        if missing:
            raise EnvFileError(
                f"{shown} lacks {', '.join(missing)} (listed in {_shown(example, root)}): add "
                f"{'it' if len(missing) == 1 else 'them'} to {shown}"
            )
    return EnvFile(path=path, values=values)


def _shown(path: Path | None, root: Path | None) -> str:
    if path is None:
        return ""
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)
