"""Multi-platform release images (``image.platforms: [linux/amd64, linux/arm64]``) as values.

The engine's builtin BuildKit (Buildx's ``docker`` driver) loads one platform's image at a time and cannot emit an
index, so a release builds each platform separately into the local engine, tagged ``<repository>:X.Y.Z-linux-arm64``;
``publish`` pushes those platform images, joins them by digest into the index ``<repository>:X.Y.Z``
(``docker buildx imagetools create``), and checks the index against what was built. Deploys pin the index digest;
each host's engine pulls its own platform from it.

The local ``<repository>:X.Y.Z`` (what ``dev``, ``image.build`` and a release's own checks run) is the image of the
engine's platform when it is listed, else of the first one listed. Nothing here runs docker.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from ..errors import Refused

#: platforms in an index that are not images (BuildKit's attestation manifests say unknown/unknown)
NOT_IMAGES = ("unknown/unknown",)


def normalized(platform: str) -> str:
    """``linux/arm64/v8`` is how registries often spell ``linux/arm64``; ``linux/amd64`` stays itself."""
    return platform[: -len("/v8")] if platform.startswith("linux/arm64/") and platform.endswith("/v8") else platform


def platform_tag(version_tag: str, platform: str) -> str:
    """The tag of one platform's image of a release: ``1.2.3`` + ``linux/arm64`` -> ``1.2.3-linux-arm64``."""
    return f"{version_tag}-{normalized(platform).replace('/', '-')}"


def local_platform(platforms: Sequence[str], engine: str) -> str:
    """The platform the local tags get: the engine's when listed, else the first listed ("" = no setting)."""
    if not platforms:
        return ""
    engine = normalized(engine)
    return next((p for p in platforms if normalized(p) == engine), platforms[0])


def build_order(platforms: Sequence[str], engine: str) -> tuple[str, ...]:
    """The order a release builds its platforms in: the local platform last, so the environment's own tags (which
    every build moves) end on the image this engine runs."""
    local = local_platform(platforms, engine)
    return (*[p for p in platforms if p != local], local) if local else ()


def is_multi(platforms: Sequence[str]) -> bool:
    return len(platforms) > 1


@dataclass(frozen=True)
class PlatformImage:
    """One platform's image of a release, as built here: ``ref`` is ``<repository>:X.Y.Z-<os>-<arch>``."""

    platform: str
    ref: str
    image_id: str  # "" when not on this machine
    revision: str  # its org.opencontainers.image.revision label


@dataclass(frozen=True)
class IndexEntry:
    """One platform's manifest in a registry's index, with what its config says."""

    platform: str
    digest: str  # the platform manifest's digest
    image_id: str  # its config digest (= the local image's ID when it is the same image)
    revision: str


def fingerprint(images: Mapping[str, str]) -> str:
    """What a multi-platform tag holds, as one comparable string: ``linux/amd64=sha256:...;linux/arm64=...``
    (platform -> image ID). Two tags with the same fingerprint hold the same images, whatever their index digest."""
    return ";".join(f"{normalized(p)}={i}" for p, i in sorted(images.items(), key=lambda kv: normalized(kv[0])))


def parse_fingerprint(text: str) -> dict[str, str]:
    """:func:`fingerprint` read back ({} for a single image's ID)."""
    pairs = [part.partition("=") for part in text.split(";")] if "=" in text else []
    return {platform: image_id for platform, _, image_id in pairs}


def check_platform_images(images: Iterable[PlatformImage], *, tag: str, tag_commit: str, release_hint: str) -> None:
    """Refuse, in one line, a release whose platform images are not all here and built from the tag's commit."""
    for image in images:
        if not image.image_id:
            raise Refused(f"image {image.ref} ({image.platform}) is not on this machine: publish from the machine "
                          f"where `{release_hint}` ran (every platform's image must be the one built from tag {tag})")
        if image.revision != tag_commit:
            got = image.revision[:7] or "no revision label"
            raise Refused(f"image {image.ref} ({image.platform}) was built from {got}, not from tag {tag} "
                          f"({tag_commit[:7]}): remove it (`docker image rm {image.ref}`) and release again")


def index_problems(entries: Sequence[IndexEntry], built: Sequence[PlatformImage], *, pushed: Mapping[str, str],
                   tag_commit: str) -> list[str]:
    """What is wrong with a registry's index compared with the platform images built here (empty: it is right).

    ``pushed`` is platform -> the digest its platform tag had once pushed. Each platform must be there exactly once,
    point at that digest, hold the local image (config digest = image ID) and carry the tag's revision label; no
    other platform may be there.
    """
    problems = []
    by_platform: dict[str, list[IndexEntry]] = {}
    for entry in entries:
        by_platform.setdefault(normalized(entry.platform), []).append(entry)
    wanted = {normalized(b.platform): b for b in built}
    for platform, image in wanted.items():
        found = by_platform.get(platform, [])
        if not found:
            problems.append(f"{platform} is missing")
            continue
        if len(found) > 1:
            problems.append(f"{platform} is there {len(found)} times")
            continue
        entry = found[0]
        if pushed.get(image.platform) and entry.digest != pushed[image.platform]:
            problems.append(f"{platform} points at {entry.digest[7:19]}, not the pushed {pushed[image.platform][7:19]}")
        elif entry.image_id != image.image_id:
            problems.append(f"{platform} holds image {entry.image_id[7:19] or '?'}, not {image.image_id[7:19]}")
        elif entry.revision != tag_commit:
            problems.append(f"{platform} was built from {entry.revision[:7] or 'no revision label'}, not {tag_commit[:7]}")
    for platform in by_platform:
        if platform not in wanted:
            problems.append(f"{platform} is there but was not built")
    return problems
