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
    "dockyard.tasks.eb",
    "dockyard.tasks.staging",
    "dockyard.tasks.ecs",
    "dockyard.tasks.ci",
)


def build_namespace(root: Path, runtime_files: list[Path] = ()) -> Collection:
    from ..config import defaults

    environments = configured_environments(root, runtime_files)
    ns = Collection()
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a feature not built yet
                continue
            raise
        module.attach(ns, environments)
    settings = defaults()
    settings["root"] = str(root)
    ns.configure({"dockyard": settings})
    return ns


def configured_environments(root: Path, runtime_files: list[Path] = ()) -> dict[str, dict[str, Any]]:
    """Environment names and raw entries from the dockyard defaults, ``invoke.yaml`` and ``-f`` files."""
    import yaml  # Invoke imports it already

    from ..config import CORE_DEFAULTS

    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in CORE_DEFAULTS["environments"].items()}
    for path in [root / "invoke.yaml", root / "invoke.yml", *runtime_files]:
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue  # reported with its key and file when a task validates the config
        envs = (data.get("dockyard") or {}).get("environments") if isinstance(data, Mapping) else None
        if isinstance(envs, Mapping):
            for name, entry in envs.items():
                merged.setdefault(str(name), {}).update(entry if isinstance(entry, Mapping) else {})
    return merged


def environment_collection(ns: Collection, name: str) -> Collection:
    """The collection of environment ``name`` (created on first use), e.g. ``inv staging.<task>``."""
    if name not in ns.collections:
        ns.add_collection(Collection(name))
    return ns.collections[name]
