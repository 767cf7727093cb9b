"""A project's own tasks, merged into the namespace dockyard builds (``dockyard.namespace(root, *extra)``).

What a project passes: an Invoke ``Collection``; a module of tasks (it becomes the collection named after the
module, its docstring the collection's help); a package such as the project's ``tasks/`` (each public module in it
becomes a collection: ``tasks/app.py`` -> ``inv app.*``); or the import name of one of these. Only the modules the
project names are imported, so ``inv --list`` costs what they import.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from invoke import Collection


def project_collections(extra: Iterable[Any]) -> list[Collection]:
    """The collections ``extra`` stands for, in the order given (a package's modules sorted by name)."""
    from ..errors import ConfigError

    found: list[Collection] = []
    for item in extra:
        if isinstance(item, str):
            item = importlib.import_module(item)
        if isinstance(item, Collection):
            found.append(item)
        elif isinstance(item, ModuleType) and hasattr(item, "__path__"):
            for info in sorted(pkgutil.iter_modules(item.__path__), key=lambda i: i.name):
                if not info.name.startswith("_"):
                    module = importlib.import_module(f"{item.__name__}.{info.name}")
                    found.append(Collection.from_module(module))
        elif isinstance(item, ModuleType):
            found.append(Collection.from_module(item))
        else:
            raise ConfigError(f"dockyard.namespace: {item!r} is not a Collection, a module or a package of tasks")
    return found


def merge_collection(into: Collection, extra: Collection, path: str = "") -> None:
    """Add ``extra``'s tasks and sub-collections to ``into``; a name ``into`` already has is refused.

    A sub-collection named like one of ``into``'s (a project's ``dev`` tasks beside dockyard's ``dev.*``) is
    merged into it, so a project can add ``inv dev.seed`` without replacing ``dev.start``.
    """
    from ..errors import ConfigError

    def refuse(name: str) -> None:
        full = f"{path}.{name}" if path else name
        raise ConfigError(f"project task {full!r}: dockyard already has a task or collection of that name; "
                          "rename the task (or its module)")

    for name, task in extra.tasks.items():
        if name in into.tasks or name in into.collections:
            refuse(name)
        into.add_task(task, name=name, default=name == extra.default and into.default is None)
    for name, sub in extra.collections.items():
        if name in into.tasks:
            refuse(name)
        if name in into.collections:
            merge_collection(into.collections[name], sub, f"{path}.{name}" if path else name)
        else:
            into.add_collection(sub, name=name)
    if extra._configuration:
        into.configure(extra._configuration)


def add_project_tasks(ns: Collection, extra: Iterable[Any]) -> Collection:
    """Merge the project's collections into ``ns``: a named one beside dockyard's, an unnamed one at the root."""
    for collection in project_collections(extra):
        if collection.name:
            holder = Collection()
            holder.add_collection(collection, name=collection.name)
            merge_collection(ns, holder)
        else:
            merge_collection(ns, collection)
    return ns
