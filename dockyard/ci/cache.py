"""Service images cached as ``docker save`` archives in a directory a CI provider persists between builds.

``save`` writes ``<dir>/<image-as-file-name>.tar`` plus ``.id`` (the image ID it holds), and skips an image whose
archive already holds that ID; ``load`` skips an image the engine already has. Both plan first (pure), then act.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..plan import ApiCall, Plan, RunCommand, Step
from . import commands


def archive_name(image: str) -> str:
    """A file name for an image reference: ``dockyard-base/redis:bookworm`` -> ``dockyard-base_redis_bookworm``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", image).strip("_")


@dataclass(frozen=True)
class CachedImage:
    image: str
    archive: Path

    @property
    def id_file(self) -> Path:
        return self.archive.with_suffix(".id")

    def archived_id(self) -> str:
        return self.id_file.read_text().strip() if self.id_file.is_file() and self.archive.is_file() else ""


def cached_images(images: Iterable[str], directory: Path) -> list[CachedImage]:
    return [CachedImage(image, directory / f"{archive_name(image)}.tar") for image in dict.fromkeys(images)]


class ImageCache:
    """The performer of a save step: the archive is written beside its final name and moved there whole, then the
    image ID it holds is recorded (so an interrupted save never looks up to date)."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    def save(self, image: str, archive: Path, image_id: str) -> None:
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_suffix(".tar.partial")
        self.runner.run(commands.save_image(image, partial))
        partial.replace(archive)
        archive.with_suffix(".id").write_text(image_id + "\n")


def plan_save(entries: list[CachedImage], local_ids: dict[str, str], directory: Path) -> tuple[Plan, list[str]]:
    """Steps that archive each local image whose archive is missing or stale; and notes on the rest."""
    steps, notes = [], []
    for entry in entries:
        image_id = local_ids.get(entry.image, "")
        if not image_id:
            notes.append(f"{entry.image}: not on this engine; nothing to save")
        elif entry.archived_id() == image_id:
            notes.append(f"{entry.image}: {entry.archive.name} is up to date")
        else:
            steps.append(Step(f"Save {entry.image} to {entry.archive}",
                              instruction=ApiCall.of("cache", "save", image=entry.image, archive=entry.archive,
                                                     image_id=image_id),
                              command=commands.save_image(entry.image, entry.archive)))
    return Plan(f"ci.cache.save -> {directory}", tuple(steps)), notes


def plan_load(entries: list[CachedImage], local_ids: dict[str, str], directory: Path) -> tuple[Plan, list[str]]:
    """Steps that load each archived image the engine lacks (an image already present is skipped)."""
    steps, notes = [], []
    for entry in entries:
        if local_ids.get(entry.image):
            notes.append(f"{entry.image}: already on this engine; skipped")
        elif not entry.archive.is_file():
            notes.append(f"{entry.image}: not cached in {directory}; it will be pulled")
        else:
            steps.append(Step(f"Load {entry.image} from {entry.archive}",
                              instruction=RunCommand(commands.load_image(entry.archive))))
    return Plan(f"ci.cache.load <- {directory}", tuple(steps)), notes
