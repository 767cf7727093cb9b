"""Settings of the ``dockyard.ecs`` section (owned by the ecs feature).

``DEFAULTS`` declares every key with its default; ``parse`` validates the section once, at load.
"""
from __future__ import annotations

from typing import Any

SECTION = "ecs"

DEFAULTS: dict[str, Any] = {}


def parse(settings: Any) -> dict[str, Any]:
    """Validate ``dockyard.ecs`` (types only: what a task needs is checked when it runs)."""
    return dict(settings.section.section(SECTION).data)
