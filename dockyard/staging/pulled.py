"""The images dockyard pulled onto a host, per prefix: the only images a staging deploy may ever remove.

A host may share its engine with its user (their ``:dev``, ``:prod`` and commit images of the same repository) or
with another environment; pruning by repository alone removed those. A pull is recorded only when the image was
not on the host before it, in ``<state dir>/pulled-images`` (one reference a line), and forgotten once removed.
"""
from __future__ import annotations

from typing import Any, Iterable

from ..core.history import append_line


class PulledImages:
    def __init__(self, host: Any, path: str) -> None:
        self.host = host
        self.path = path

    def names(self) -> set[str]:
        text = self.host.read_file(self.path) or ""
        return {line.strip() for line in text.splitlines() if line.strip()}

    def record(self, image: str) -> None:
        if image not in self.names():
            self.host.run(append_line(self.path, image), check=False)

    def forget(self, images: Iterable[str]) -> None:
        gone = set(images)
        if not gone:
            return
        kept = sorted(self.names() - gone)
        self.host.write_file(self.path, "".join(f"{name}\n" for name in kept), mode=0o600)
