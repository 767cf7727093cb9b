"""dockyard's own project: the sample Django app, driven by the dockyard tasks and its own (`inv --list`)."""
from pathlib import Path

import dockyard

# Invoke loads this file as the module `tasks`; this makes it the package of tasks/ too, so tasks/app.py is
# `tasks.app` and holds the sample's own tasks (`inv app.*`) beside dockyard's.
__path__ = [str(Path(__file__).with_name("tasks"))]
ns = dockyard.namespace(Path(__file__).parent, __name__)
