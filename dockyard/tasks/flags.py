"""What a task's flags may hold, declared once per task and checked at the task edge, before anything runs.

Invoke casts a flag to the type of its default while it parses the command line, and a value it cannot cast
(``--timeout abc``) ends in a ``ValueError`` traceback there. So :func:`~dockyard.tasks.common.edge` shows Invoke
every numeric flag as text with an empty default, and converts what was typed here: a flag not given keeps the
task's own default (``0`` may mean "from the settings"), a flag given must pass its :class:`Kind`. Each refusal
is one line naming the flag, exit 2.

A numeric default gets a kind without being declared (:func:`implied`): a whole number, or a number for a float
default, at least 0. A task declares the rest: ``@edge(count=Whole(minimum=1), platform=OneOf("v1", "v2"))``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DockyardError


class BadFlag(DockyardError):
    """A flag's value is of the wrong kind, out of range, or names a place that cannot be written."""

    exit_code = 2


def flag_name(parameter: str) -> str:
    """The flag as users type it: ``for_`` is ``--for``, ``lock_wait`` is ``--lock-wait``."""
    return "--" + parameter.strip("_").replace("_", "-")


@dataclass(frozen=True)
class Kind:
    """A check and conversion of the text typed for one flag."""

    def convert(self, flag: str, text: str) -> Any:
        raise NotImplementedError

    @staticmethod
    def refuse(flag: str, expected: str, text: str) -> BadFlag:
        return BadFlag(f"{flag}: expected {expected}, got {text!r}")


@dataclass(frozen=True)
class Whole(Kind):
    """A whole number (seconds, counts, ports) within ``minimum``..``maximum``."""

    minimum: int = 0
    maximum: int | None = None

    def expected(self) -> str:
        if self.maximum is not None:
            return f"a whole number from {self.minimum} to {self.maximum}"
        return f"a whole number of at least {self.minimum}"

    def convert(self, flag: str, text: str) -> int:
        try:
            value = int(str(text).strip(), 10)
        except ValueError:
            raise self.refuse(flag, self.expected(), text) from None
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            raise self.refuse(flag, self.expected(), text)
        return value


@dataclass(frozen=True)
class Number(Kind):
    """A finite number (seconds that may have a fraction) of at least ``minimum``."""

    minimum: float = 0

    def convert(self, flag: str, text: str) -> float:
        expected = f"a number of at least {self.minimum:g}"
        try:
            value = float(str(text).strip())
        except ValueError:
            raise self.refuse(flag, expected, text) from None
        if not math.isfinite(value) or value < self.minimum:
            raise self.refuse(flag, expected, text)
        return value


@dataclass(frozen=True)
class OneOf(Kind):
    """One of a few words (``""``, the default, is always allowed: it means "from the settings")."""

    choices: tuple[str, ...]

    def __init__(self, *choices: str) -> None:
        object.__setattr__(self, "choices", choices)

    def convert(self, flag: str, text: str) -> str:
        if text not in ("", *self.choices):
            raise self.refuse(flag, "one of " + ", ".join(self.choices), text)
        return text


@dataclass(frozen=True)
class OutputFile(Kind):
    """A file to write: its directory must exist, and the path must not be a directory."""

    def convert(self, flag: str, text: str) -> str:
        if not text:
            return text
        path = Path(text)
        if path.is_dir():
            raise BadFlag(f"{flag}: {text} is a directory; name the file to write")
        parent = path.parent
        if not parent.is_dir():
            raise BadFlag(f"{flag}: directory {parent} does not exist; create it first or choose another path")
        return text


def implied(default: Any) -> Kind | None:
    """The kind of a flag nobody declared, from its default: numbers are at least 0, other flags are Invoke's."""
    if isinstance(default, bool):
        return None
    if isinstance(default, int):
        return Whole()
    if isinstance(default, float):
        return Number()
    return None
