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
    """The file's variables; refused unless it is UTF-8 text whose every value is one printable line.

    Values reach ``docker run --env-file`` (one line per variable), EB option settings and ECS task definitions:
    a value that spans lines, or holds control bytes, would be cut or garbled there, so it is refused here.
    """
    import io

    from dotenv import dotenv_values  # imported here: `inv --list` must stay fast

    if not path.is_file():
        raise EnvFileError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise EnvFileError(f"{path} line {line}: not UTF-8 text; save the file as UTF-8") from None
    values = {k: ("" if v is None else v) for k, v in dotenv_values(stream=io.StringIO(text), interpolate=False).items()}
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            raise EnvFileError(f"{path}: {key}'s value spans several lines, which docker --env-file cannot carry; "
                               "put it on one line (e.g. base64 or \\n escapes)")
        if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value):
            raise EnvFileError(f"{path}: {key}'s value holds control characters; remove them")
    return values


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
