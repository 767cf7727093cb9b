"""dockyard's own project: the sample Django app, driven by the dockyard tasks (`inv --list`)."""
from pathlib import Path

import dockyard

ns = dockyard.namespace(Path(__file__).parent)
