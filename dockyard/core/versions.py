"""Release versions, once for every command: parse, order, the tag prefix, the latest release, deploy labels.

A release ``X.Y.Z[-PRERELEASE]`` is the git tag ``<release.tag_prefix>X.Y.Z[-PRERELEASE]`` and the image tag
``X.Y.Z[-PRERELEASE]``. Elastic Beanstalk names an application version ``<version>-<sha7>``; :func:`label_version`
reads it back (a pre-release has dashes of its own, so the sha is what follows the *last* one).

Every deploy target resolves ``--version`` through :func:`resolve_release`; ``release``/``publish`` read what a
user typed with :func:`read_version`.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import DockyardError, Refused


class BadVersion(DockyardError):
    """A version argument that is not MAJOR.MINOR.PATCH[-PRERELEASE]."""

    exit_code = 2


_NUMBER = r"(0|[1-9]\d*)"
_IDENT = r"(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_VERSION = re.compile(rf"^{_NUMBER}\.{_NUMBER}\.{_NUMBER}(?:-({_IDENT}(?:\.{_IDENT})*))?$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_EXAMPLE = "e.g. 1.2.3 or 1.2.3-rc.1"


@functools.total_ordering
@dataclass(frozen=True)
class ReleaseVersion:
    """``MAJOR.MINOR.PATCH`` with an optional ``-rc.N`` style pre-release, ordered as semantic versions."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "ReleaseVersion":
        """Strictly parse ``1.2.3`` / ``1.2.3-rc.1`` (no ``v``: see :func:`read_version`)."""
        match = _VERSION.match(text)
        if not match:
            raise BadVersion(version_verdict(text))
        pre = match.group(4)
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)), tuple(pre.split(".")) if pre else ())

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(self.prerelease)}" if self.prerelease else core

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    @property
    def line(self) -> "ReleaseLine":
        return ReleaseLine(self.major, self.minor)

    @property
    def opens_line(self) -> bool:
        """``X.Y.0`` (and its pre-releases): made from the main branch; the final one creates the line's branch."""
        return self.patch == 0

    @property
    def image_tag(self) -> str:
        return str(self)

    def tag(self, prefix: str = "v") -> str:
        return f"{prefix}{self}"

    def label(self, sha: str) -> str:
        """The deploy label of this release built from ``sha``: ``<version>-<sha7>``."""
        return f"{self}-{sha[:7]}"

    def _key(self) -> tuple:
        # A pre-release sorts before its release; numeric identifiers sort numerically and before words.
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ReleaseVersion):
            return NotImplemented
        return self._key() < other._key()


@dataclass(frozen=True)
class ReleaseLine:
    """``X.Y``: the releases ``X.Y.*``, whose patches live on the branch ``release-vX.Y``."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def branch(self, prefix: str = "release-v") -> str:
        return f"{prefix}{self}"

    def contains(self, version: ReleaseVersion) -> bool:
        return (version.major, version.minor) == (self.major, self.minor)


def version_verdict(text: str) -> str:
    """Why ``text`` is not a release version, in one line with the fix."""
    shown = text if len(text) < 40 else text[:37] + "..."
    if not text.strip():
        return f"no version given: pass MAJOR.MINOR.PATCH, {_EXAMPLE}"
    if text.strip().lower() in ("latest", "stable", "head", "main", "master", "dev", "prod", "staging"):
        return f"{shown!r} is a moving name, not a release version: pass MAJOR.MINOR.PATCH, {_EXAMPLE}"
    core, plus, _ = text.partition("+")
    if plus:
        return f"{shown!r} has build metadata (+...), which a release version cannot carry: drop it, {_EXAMPLE}"
    numbers = core.split("-", 1)[0].split(".")
    if all(n.isdigit() for n in numbers):
        if len(numbers) < 3:
            padded = ".".join(numbers + ["0"] * (3 - len(numbers)))
            plural = "s" if len(numbers) > 1 else ""
            return (f"{shown!r} has {len(numbers)} number{plural}; a release needs MAJOR.MINOR.PATCH: "
                    f"did you mean {padded}?")
        if len(numbers) > 3:
            return f"{shown!r} has {len(numbers)} numbers; a release has exactly three, MAJOR.MINOR.PATCH ({_EXAMPLE})"
        if any(len(n) > 1 and n.startswith("0") for n in numbers):
            fixed = ".".join(str(int(n)) for n in numbers)
            return f"{shown!r} has a leading zero, which is ambiguous: did you mean {fixed}?"
        return f"{shown!r} has an invalid pre-release part: use letters, digits and dots after '-', {_EXAMPLE}"
    return f"{shown!r} is not a release version: expected MAJOR.MINOR.PATCH, {_EXAMPLE}"


def read_version(text: str, tag_prefix: str = "v") -> tuple[ReleaseVersion, str | None]:
    """Parse what a user typed; a leading ``v`` (or the tag prefix) is accepted and reported as a note."""
    raw = text.strip()
    for prefix in dict.fromkeys((tag_prefix, "v", "V")):
        if prefix and raw.startswith(prefix) and raw[len(prefix):][:1].isdigit():
            version = ReleaseVersion.parse(raw[len(prefix):])
            return version, (f"read {raw!r} as version {version} (git tag {version.tag(tag_prefix)}, "
                             f"image tag {version.image_tag})")
    return ReleaseVersion.parse(raw), None


def version_of_tag(tag: str, tag_prefix: str = "v") -> ReleaseVersion | None:
    """The release a git tag names (``<prefix>X.Y.Z[-pre]``), or None for any other tag."""
    if not tag.startswith(tag_prefix):
        return None
    try:
        return ReleaseVersion.parse(tag[len(tag_prefix):])
    except BadVersion:
        return None


def versions_from_tags(tags: Iterable[str], tag_prefix: str = "v") -> dict[ReleaseVersion, str]:
    """Release versions among git tag names (others, e.g. ``v1.2`` or ``nightly``, are ignored)."""
    found: dict[ReleaseVersion, str] = {}
    for tag in tags:
        version = version_of_tag(tag, tag_prefix)
        if version is not None:
            found[version] = tag
    return found


def latest_version(tags: Iterable[str], tag_prefix: str = "v") -> ReleaseVersion | None:
    """The highest release among ``tags`` (pre-releases included: ``2.0.0-rc.1`` is above ``1.9.0``)."""
    versions = versions_from_tags(tags, tag_prefix)
    return max(versions) if versions else None


#: ends the label of a deploy whose release command was skipped (``--skip-release-command``): its bundle differs, and
#: a label never names two bundles
NO_RELEASE_COMMAND = "-no-release-command"


def label_version(label: str) -> ReleaseVersion | None:
    """The release of a deploy label ``<version>-<sha7>`` (``2.0.0-rc.1-abc1234`` -> 2.0.0-rc.1); None otherwise."""
    version, dash, sha = label.removesuffix(NO_RELEASE_COMMAND).rpartition("-")
    if not dash or not _SHA.match(sha):
        return None
    try:
        return ReleaseVersion.parse(version)
    except BadVersion:
        return None


# --- the release a deploy ships ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """A published release as a deploy needs it: the version, its git tag and commit, a one-line description."""

    version: ReleaseVersion
    tag: str
    sha: str
    description: str
    label_suffix: str = ""  # NO_RELEASE_COMMAND for a deploy that skips the release command

    @property
    def image_tag(self) -> str:
        return self.version.image_tag

    @property
    def label(self) -> str:
        return self.version.label(self.sha) + self.label_suffix


def resolve_release(git: Any, version: str = "", *, tag_prefix: str = "v") -> Release:
    """The release ``version`` (``1.2.3``, ``1.2.3-rc.1``, ``v1.2.3`` or ``<tag_prefix>1.2.3``), default the latest
    ``<tag_prefix>X.Y.Z`` tag; refused when its git tag does not exist."""
    if version:
        wanted, _ = read_version(version, tag_prefix)
        tag = wanted.tag(tag_prefix)
    else:
        tags = git.git("tag", "--list", f"{tag_prefix}*").stdout.split()
        latest = latest_version(tags, tag_prefix)
        if latest is None:
            raise Refused(f"no release yet (no {tag_prefix}X.Y.Z git tag): run `inv release` first, or name a VERSION")
        wanted, tag = latest, latest.tag(tag_prefix)
    found = git.git("rev-list", "-n", "1", f"refs/tags/{tag}", check=False)
    if not found.ok:
        raise Refused(f"release {wanted} is not published: there is no git tag {tag} "
                      f"(see `git tag --list '{tag_prefix}*'`)")
    sha = found.stdout.strip()
    subject = git.git("tag", "--list", "--format=%(contents:subject)", tag).stdout.strip()
    if not subject:
        subject = git.git("log", "-1", "--format=%s", sha).stdout.strip()
    return Release(version=wanted, tag=tag, sha=sha, description=subject or f"release {wanted}")


def configured_release(settings: Any, git: Any, version: str = "") -> Release:
    """:func:`resolve_release` with the project's ``release.tag_prefix``: what every deploy target calls."""
    return resolve_release(git, version, tag_prefix=settings.release.tag_prefix)


def deploy_tag(text: str, tag_prefix: str = "v") -> str:
    """The image tag a deploy of ``text`` runs, for targets that also take plain Docker tags (staging).

    A release, written ``X.Y.Z[-pre]`` or as its git tag ``<tag_prefix>X.Y.Z[-pre]``, runs its image tag
    ``X.Y.Z[-pre]``, as on every other target; anything else (``staging-abc1234``, ``v2``) is a tag used as given.
    """
    raw = text.strip()
    version = version_of_tag(raw, tag_prefix) if tag_prefix else None
    if version is None:
        version = version_of_tag(raw, "")
    return version.image_tag if version is not None else raw
