"""Settings of the ``dockyard.ssh`` section (owned by the staging feature).

``DEFAULTS`` declares every key with its default; ``parse`` validates the section once, at load.
"""
from __future__ import annotations

from typing import Any

SECTION = "ssh"

DEFAULTS: dict[str, Any] = {}


def parse(settings: Any) -> dict[str, Any]:
    """Validate ``dockyard.ssh`` (types only: what a task needs is checked when it runs)."""
    return dict(settings.section.section(SECTION).data)
