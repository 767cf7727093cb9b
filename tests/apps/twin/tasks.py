from pathlib import Path

import dockyard

ns = dockyard.namespace(Path(__file__).parent)
