"""dockyard: Invoke tasks that carry a Dockerized web app from a laptop to production."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__version__ = "0.1.0"


def namespace(root: str | Path | None = None) -> Any:
    """The root Invoke collection for a project.

    ``root`` is the project directory (where ``tasks.py`` and ``invoke.yaml`` live); defaults to the current
    directory. Environments get a collection each (``inv dev.start``), so their names are read here from the
    project's ``invoke.yaml`` (and ``-f`` files named on the command line); everything else is validated when a
    task runs.
    """
    from .tasks import build_namespace

    project_root = Path(root).resolve() if root else Path.cwd()
    if project_root.is_file():
        project_root = project_root.parent
    return build_namespace(project_root, _runtime_files(sys.argv))


def _runtime_files(argv: list[str]) -> list[Path]:
    files = []
    for i, arg in enumerate(argv):
        if arg in ("-f", "--config") and i + 1 < len(argv):
            files.append(Path(argv[i + 1]))
        elif arg.startswith("--config="):
            files.append(Path(arg.split("=", 1)[1]))
    return files
