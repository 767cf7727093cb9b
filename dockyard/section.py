"""Reading one section of the settings: typed getters, where a value came from, and which keys exist.

A :class:`Section` is a mapping at a dotted key (``dockyard.environments.dev``) whose getters fail with a
:class:`~dockyard.errors.ConfigError` naming the key and the layer that set it (:func:`invoke_origin`). A schema
(:func:`keys_of`, :class:`Names`, :class:`Items`) lists the keys a section may hold; :func:`check_keys` refuses any
other key with the nearest known one.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .errors import ConfigError

# --- where a value came from -------------------------------------------------------------------------------

Origin = Callable[[str], str]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def invoke_origin(config: Any) -> Origin:
    """Return a function naming where dotted key ``dockyard.x.y`` was set in an Invoke ``Config``."""

    layers = [
        ("_overrides", lambda: "command-line overrides"),
        ("_runtime", lambda: _file_name(getattr(config, "_runtime_path", None), "-f file")),
        ("_env", None),
        ("_project", lambda: _file_name(getattr(config, "_project_path", None), "invoke.yaml")),
        ("_user", lambda: _file_name(getattr(config, "_user_path", None), "user config")),
        ("_system", lambda: _file_name(getattr(config, "_system_path", None), "system config")),
    ]

    def origin(key: str) -> str:
        parts = key.split(".")
        for attr, describe in layers:
            data = getattr(config, attr, None)
            if isinstance(data, Mapping) and _has_path(data, parts):
                if describe is None:
                    return "environment variable INVOKE_" + "_".join(p.upper() for p in parts)
                return describe()
        return "dockyard defaults"

    return origin


def _file_name(path: Any, fallback: str) -> str:
    if not path:
        return fallback
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _has_path(data: Mapping, parts: list[str]) -> bool:
    node: Any = data
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def no_origin(key: str) -> str:
    return "settings"


# --- typed reading of one section ---------------------------------------------------------------------------


class Section:
    """A mapping of settings at dotted ``key``, read with typed getters that fail with the key and its origin."""

    def __init__(self, data: Mapping[str, Any], key: str, origin: Origin = no_origin) -> None:
        self.data = data
        self.key = key
        self.origin = origin

    def full(self, name: str) -> str:
        return f"{self.key}.{name}"

    def fail(self, name: str, problem: str) -> ConfigError:
        full = self.full(name)
        return ConfigError(f"{full}: {problem} (set in {self.origin(full)})")

    def raw(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def str(self, name: str, default: str = "", *, required: bool = False, choices: tuple[str, ...] = ()) -> str:
        value = self.data.get(name, default)
        if value is None:
            value = ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.fail(name, f"expected a string, got {describe(value)}")
        if required and not value:
            raise self.fail(name, "is required and empty")
        if choices and value not in choices:
            raise self.fail(name, f"expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
        return value

    def url(self, name: str) -> str:
        """An http(s) endpoint URL, or ``""`` (none)."""
        from urllib.parse import urlsplit

        value = self.str(name)
        if not value:
            return value
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(
                ch.isspace() for ch in value):
            raise self.fail(name, f"expected an http:// or https:// URL with a host, got {value!r}")
        return value

    def bucket(self, name: str, default: str = "") -> str:
        """An S3 bucket name (3-63 lower-case letters, digits, '.' and '-'), or ``""`` (none)."""
        value = self.str(name, default)
        if value and not _BUCKET.match(value):
            raise self.fail(name, f"not an S3 bucket name (3-63 lower-case letters, digits, '.' or '-'), got {value!r}")
        return value

    def int(self, name: str, default: int = 0, *, minimum: int | None = None) -> int:
        value = self.data.get(name, default)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)  # INVOKE_* variables arrive as text
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"expected an integer, got {describe(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"expected an integer >= {minimum}, got {value}")
        return value

    def float(self, name: str, default: float = 0.0, *, minimum: float | None = None) -> float:
        value = self.data.get(name, default)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"expected a number, got {describe(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"expected a number >= {minimum}, got {value}")
        return float(value)

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name, default)
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, got {describe(value)}")
        return value

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.data.get(name, list(default))
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) for v in value):
            raise self.fail(name, f"expected a list of strings, got {describe(value)}")
        return tuple(str(v) for v in value)

    def mapping(self, name: str) -> dict[str, str]:
        value = self.data.get(name) or {}
        if not isinstance(value, Mapping):
            raise self.fail(name, f"expected a mapping, got {describe(value)}")
        out: dict[str, str] = {}
        for k, v in value.items():
            if isinstance(v, (Mapping, list)):
                raise self.fail(f"{name}.{k}", f"expected a string, got {describe(v)}")
            out[str(k)] = "" if v is None else str(v)
        return out

    def section(self, name: str) -> Section:
        value = self.data.get(name) or {}
        if not isinstance(value, Mapping):
            raise self.fail(name, f"expected a mapping, got {describe(value)}")
        return Section(value, self.full(name), self.origin)

    def path(self, name: str, root: Path, *, must_exist: bool = True, default: str = "") -> Path | None:
        text = self.str(name, default)
        if not text:
            return None
        path = (root / text) if not Path(text).is_absolute() else Path(text)
        if must_exist and not path.exists():
            raise self.fail(name, f"{text} does not exist")
        return path


def describe(value: Any) -> str:
    """A value for an error message: its kind and a short repr."""
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", str: "text", int: "an integer"}.get(
        type(value), type(value).__name__
    )
    text = repr(value)
    return f"{kind} {text if len(text) < 40 else text[:37] + '...'}"


# --- which keys exist ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """A mapping whose keys are the project's own names (build args, environments, services, variables).

    Its keys are never checked; each value is checked against ``entry`` when that is a schema.
    """

    entry: Any = None


@dataclass(frozen=True)
class Items:
    """A list whose mapping entries are checked against ``entry`` (``ssh.hosts``)."""

    entry: Any


#: A schema maps each known key to ``None`` (a value), a nested schema (a section), :class:`Names` or :class:`Items`.
Schema = Mapping[str, Any]


def keys_of(defaults: Mapping[str, Any], **special: Any) -> dict[str, Any]:
    """The schema of a ``DEFAULTS`` mapping: its keys, nested mappings as sections unless ``special`` says otherwise.

    ``special`` also adds keys that have no default (an environment's ``eb``/``ssh``/``ecs`` overrides).
    """
    schema: dict[str, Any] = {}
    for name, value in defaults.items():
        schema[name] = keys_of(value) if isinstance(value, Mapping) else None
    schema.update(special)
    return schema


@dataclass(frozen=True)
class UnknownKey:
    key: str  # dockyard.ssh.hosts[1].adress
    origin_key: str  # the key whose layer set it (a list entry has no key of its own): dockyard.ssh.hosts
    known: tuple[str, ...]


def unknown_keys(data: Any, schema: Any, key: str, listed: str | None = None) -> Iterator[UnknownKey]:
    """Every key of ``data`` (at dotted ``key``) that ``schema`` does not know, depth first.

    ``listed`` is the key of the list when ``data`` is inside a list entry: the layer that set it is that list's.
    """
    if isinstance(schema, Names):
        if schema.entry is not None and isinstance(data, Mapping):
            for name, value in data.items():
                yield from unknown_keys(value, schema.entry, f"{key}.{name}", listed)
    elif isinstance(schema, Items):
        if isinstance(data, (list, tuple)):
            for i, item in enumerate(data):
                yield from unknown_keys(item, schema.entry, f"{key}[{i + 1}]", listed or key)
    elif isinstance(schema, Mapping) and isinstance(data, Mapping):
        for name, value in data.items():
            full = f"{key}.{name}"
            if str(name) not in schema:
                yield UnknownKey(full, listed or full, tuple(sorted(schema)))
            else:
                yield from unknown_keys(value, schema[str(name)], full, listed)


def check_keys(data: Any, schema: Schema, key: str, origin: Origin = no_origin) -> None:
    """Refuse the first unknown key with one line: the key, where it was set, and the nearest known key."""
    found = list(unknown_keys(data, schema, key))
    if not found:
        return
    first = min(found, key=lambda unknown: unknown.key)  # merged layers keep no file order: be stable
    name = first.key.rsplit(".", 1)[-1]
    parent = first.key[: -len(name) - 1]
    close = difflib.get_close_matches(name, first.known, n=1)
    if close:
        hint = f"did you mean {close[0]}?"
    elif len(first.known) <= 8:
        hint = f"the keys of {parent} are {', '.join(first.known)}"
    else:
        hint = f"README.md#settings lists the keys of {parent}"
    more = f" ({len(found) - 1} more unknown)" if len(found) > 1 else ""
    raise ConfigError(f"{first.key}: unknown setting (set in {origin(first.origin_key)}); {hint}{more}")
