"""dockyard: Invoke tasks that carry a Dockerized web app from a laptop to production."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__version__ = "0.1.0"


def namespace(root: str | Path | None = None, *extra: Any) -> Any:
    """The root Invoke collection for a project: dockyard's tasks, and the project's own beside them.

    ``root`` is the project directory (where ``tasks.py`` and ``invoke.yaml`` live); defaults to the current
    directory. Environments get a collection each (``inv dev.start``), so their names are read here from the
    project's ``invoke.yaml`` (and ``-f`` files named on the command line); everything else is validated when a
    task runs.

    ``extra`` are the project's own tasks: Invoke collections, task modules, or a package of task modules such as
    the project's ``tasks/`` (``tasks/app.py`` becomes ``inv app.*``), each given as an object or an import name.
    From ``tasks.py``, after ``__path__ = [str(Path(__file__).with_name("tasks"))]`` has made it a package,
    ``dockyard.namespace(Path(__file__).parent, __name__)`` adds every module of ``tasks/``.
    """
    from .errors import ConfigError
    from .tasks import build_namespace
    from .tasks.project_tasks import add_project_tasks

    project_root = Path(root).resolve() if root else Path.cwd()
    if project_root.is_file():
        project_root = project_root.parent
    ns = build_namespace(project_root, _runtime_files(sys.argv))
    try:
        return add_project_tasks(ns, extra)
    except ConfigError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None


def _runtime_files(argv: list[str]) -> list[Path]:
    files = []
    for i, arg in enumerate(argv):
        if arg in ("-f", "--config") and i + 1 < len(argv):
            files.append(Path(argv[i + 1]))
        elif arg.startswith("--config="):
            files.append(Path(arg.split("=", 1)[1]))
    return files
