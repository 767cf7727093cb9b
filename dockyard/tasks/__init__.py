"""The Invoke collections, one module per namespace; ``build_namespace`` assembles them.

Each module in :data:`MODULES` has ``attach(ns, environments)``, which adds its tasks to the root collection
``ns`` (a namespace of its own, root tasks like ``release``, or tasks inside an environment's collection such as
``staging.ssh-deploy``). Modules import only Invoke at load; heavy libraries (boto3, Fabric, jinja2) are imported
inside the tasks that use them, so ``inv --list`` stays fast.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping

from invoke import Collection

MODULES = (
    "dockyard.tasks.stack",
    "dockyard.tasks.image",
    "dockyard.tasks.doctor",
    "dockyard.tasks.release",
    "dockyard.tasks.deploy",
    "dockyard.tasks.eb",
    "dockyard.tasks.staging",
    "dockyard.tasks.ecs",
    "dockyard.tasks.ci",
)


def build_namespace(root: Path, runtime_files: list[Path] = ()) -> Collection:
    import os
    import sys

    from ..config import check_environment_variables, defaults
    from ..errors import ConfigError

    settings = defaults()
    try:
        files = read_settings_files(root, runtime_files)
        for path, data in files:
            check_mergeable(settings, data, "dockyard", _shown(path, root))
        check_environment_variables(settings, [data for _, data in files], os.environ)
    except ConfigError as exc:
        # Invoke would merge these files (and read the INVOKE_* variables) next and fail with a traceback; say it
        # in one line instead.
        print(f"dockyard: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    environments = configured_environments(files)
    ns = Collection()
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a feature not built yet
                continue
            raise
        module.attach(ns, environments)
    settings["root"] = str(root)
    ns.configure({"dockyard": settings})
    return ns


def read_settings_files(root: Path, runtime_files: list[Path] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """The ``dockyard`` sections of ``invoke.yaml`` and of ``-f`` files, in the order Invoke merges them."""
    import yaml  # Invoke imports it already

    from ..errors import ConfigError

    for path in runtime_files:
        if not path.is_file():
            raise ConfigError(f"-f {path}: no such settings file (Invoke would run without it); check the path")
    found = []
    for path in [root / "invoke.yaml", root / "invoke.yml", *runtime_files]:
        if not path.is_file():
            continue
        try:
            data = yaml.load(path.read_text(), Loader=_unique_key_loader()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{_shown(path, root)}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{_shown(path, root)}: expected a mapping at the top level")
        section = data.get("dockyard") or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"dockyard: expected a mapping (set in {_shown(path, root)})")
        found.append((path, dict(section)))
    return found


def _unique_key_loader():
    """A safe YAML loader that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""
    import yaml

    # The C parser where PyYAML has it: this runs on every `inv`, `inv --list` included.
    class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        def construct_mapping(self, node, deep=False):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice (first on line {seen[key].line + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def check_mergeable(defaults: Mapping[str, Any], data: Mapping[str, Any], key: str, source: str) -> None:
    """Refuse a value Invoke cannot merge over its default: a mapping where a plain value is expected, or back."""
    from ..errors import ConfigError
    from ..section import describe

    for name, value in data.items():
        if name not in defaults:
            continue
        default = defaults[name]
        full = f"{key}.{name}"
        if isinstance(default, dict) and not isinstance(value, dict):
            raise ConfigError(f"{full}: expected a mapping, got {describe(value)} (set in {source})")
        if isinstance(value, dict) and not isinstance(default, dict):
            raise ConfigError(f"{full}: expected a single value, got a mapping (set in {source})")
        if isinstance(value, dict):
            check_mergeable(default, value, full, source)


def configured_environments(files: list[tuple[Path, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Environment names and raw entries from the dockyard defaults and the settings files."""
    from ..config import CORE_DEFAULTS

    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in CORE_DEFAULTS["environments"].items()}
    for _, section in files:
        envs = section.get("environments")
        if isinstance(envs, Mapping):
            for name, entry in envs.items():
                merged.setdefault(str(name), {}).update(entry if isinstance(entry, Mapping) else {})
    return merged


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def environment_collection(ns: Collection, name: str) -> Collection:
    """The collection of environment ``name`` (created on first use), e.g. ``inv staging.<task>``."""
    if name not in ns.collections:
        ns.add_collection(Collection(name))
    return ns.collections[name]
