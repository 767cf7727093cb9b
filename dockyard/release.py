"""Releases as values: changelogs, and the decisions and plans of release and publish.

Versions themselves (parse, order, tag prefix) live in :mod:`dockyard.core.versions`. Nothing here runs git or
docker. The task gathers a :class:`ReleaseState` / :class:`PublishState`, the functions below check it (raising
:class:`~dockyard.errors.Refused` with one line saying why and what to do) and turn it into a
:class:`~dockyard.plan.Plan` whose steps are calls of the actions the task registers as their performer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol, Sequence

from .core.compose import image_reference
from .core.platforms import PlatformImage, check_platform_images, is_multi, parse_fingerprint, platform_tag
from .core.versions import ReleaseVersion
from .errors import Refused
from .plan import ApiCall, Plan, Step
from .runner import Command


# --- changelog ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str


def changelog(commits: Sequence[Commit]) -> str:
    """One line per commit, newest first: ``* subject (short-sha, author)``."""
    return "\n".join(f"* {c.subject} ({c.sha[:7]}, {c.author})" for c in commits)


def tag_message(
    version: ReleaseVersion, commits: Sequence[Commit], previous: ReleaseVersion | None, note: str = ""
) -> str:
    """The annotated tag's message: a title, the optional ``--message`` text, then the changelog."""
    since = f"since {previous}" if previous else "(first release)"
    body = changelog(commits) or "* no changes"
    intro = f"{note.strip()}\n\n" if note.strip() else ""
    return f"Release {version}\n\n{intro}Changes {since}:\n{body}\n"


# --- release: state, checks, plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseState:
    """What the repository looks like when ``release VERSION`` is asked for (after fetching the remote)."""

    version: ReleaseVersion
    head: str
    current_branch: str  # "" when HEAD is detached
    dirty_files: tuple[str, ...]
    local_tags: frozenset[str]
    remote_tags: frozenset[str]
    releases: tuple[ReleaseVersion, ...]  # every release tag, local or remote
    line_branch: str  # release-vX.Y
    line_branch_ref: str  # "" when the branch exists neither locally nor on the remote, else the ref found
    line_branch_sha: str
    head_on_line_branch: bool
    previous: ReleaseVersion | None  # the newest release reachable from HEAD
    commits: tuple[Commit, ...]  # since ``previous`` (all of HEAD's history when there is none)


@dataclass(frozen=True)
class ReleaseDecision:
    version: ReleaseVersion
    tag: str
    commit: str
    create_branch: str  # "" when the line's branch already exists or is not made by this release
    message: str
    image_tags: tuple[str, ...]
    #: a multi-platform release: (platform, <repository>:X.Y.Z-<os>-<arch>) in build order, the local platform last
    platform_images: tuple[tuple[str, str], ...] = ()

    @property
    def local_platform(self) -> str:
        return self.platform_images[-1][0] if self.platform_images else ""


def check_release(
    state: ReleaseState, *, main_branch: str, tag_prefix: str, allow_empty: bool, repository: str, note: str = "",
    platforms: Sequence[str] = (),
) -> ReleaseDecision:
    """Every refusal of ``release``, in the order a person would fix them; returns what to do.

    ``platforms`` (two or more, in :func:`~dockyard.core.platforms.build_order`) makes it a multi-platform release.
    """
    v = state.version
    tag = v.tag(tag_prefix)
    if state.dirty_files:
        shown = ", ".join(state.dirty_files[:8]) + (f" and {len(state.dirty_files) - 8} more" if len(state.dirty_files) > 8 else "")
        raise Refused(f"the working tree has uncommitted changes ({shown}): commit or stash them, then release")
    if tag in state.local_tags:
        raise Refused(f"tag {tag} already exists: {v} is released; choose a higher version (see `inv releases`)")
    if tag in state.remote_tags:
        raise Refused(f"tag {tag} already exists on the remote: {v} is released; fetch it and choose a higher version")
    create_branch = ""
    if v.opens_line:
        if state.current_branch != main_branch:
            where = f"branch {state.current_branch!r}" if state.current_branch else "a detached HEAD"
            raise Refused(
                f"{v} opens the {v.line} line and must be made from {main_branch!r}, not {where}: "
                f"`git switch {main_branch}` (or set dockyard.git.main_branch)"
            )
        if state.line_branch_ref and not v.is_prerelease and state.line_branch_sha != state.head:
            raise Refused(
                f"branch {state.line_branch} already exists at another commit: release {v.line}.N patches from it, "
                f"or choose a new minor version"
            )
        if not v.is_prerelease and not state.line_branch_ref:
            create_branch = state.line_branch
    else:
        if not state.line_branch_ref:
            raise Refused(
                f"{v} is a patch release but branch {state.line_branch} does not exist: release {v.line}.0 first, "
                f"or create the branch from tag {tag_prefix}{v.line}.0"
            )
        line_last = last_release(state.releases, v)
        behind = line_last is not None and v > line_last and (state.previous is None or state.previous < line_last)
        if not state.head_on_line_branch or behind:
            # HEAD merely *reachable* from the branch (main still at X.Y.0 while the line is at X.Y.1) is not on it:
            # a patch made there would miss the line's last release.
            where = f" ({state.current_branch})" if state.current_branch else ""
            at = f", whose line is at {line_last}" if line_last is not None else ""
            raise Refused(
                f"the current commit {state.head[:7]}{where} is not on {state.line_branch}{at}: "
                f"`git switch {state.line_branch}` and commit the fix there"
            )
    last = last_release(state.releases, v)
    if last is not None and not v > last:
        scope = f"the {v.line} line" if not v.opens_line else "all releases"
        raise Refused(f"{v} is not greater than {last}, the last release of {scope}: choose a version above {last}")
    if state.previous is not None and not state.commits and not allow_empty:
        raise Refused(
            f"no new commits since {tag_prefix}{state.previous}: there is nothing to release "
            f"(pass --allow-empty to release it anyway)"
        )
    return ReleaseDecision(
        version=v,
        tag=tag,
        commit=state.head,
        create_branch=create_branch,
        message=tag_message(v, state.commits, state.previous, note),
        image_tags=(image_reference(repository, v.image_tag),),
        platform_images=tuple((p, image_reference(repository, platform_tag(v.image_tag, p)))
                              for p in (platforms if is_multi(platforms) else ())),
    )


def last_release(releases: Iterable[ReleaseVersion], version: ReleaseVersion) -> ReleaseVersion | None:
    """The release ``version`` must exceed: the newest of its line for a patch, the newest of all for ``X.Y.0``."""
    if version.opens_line:
        pool = list(releases)
    else:
        pool = [r for r in releases if version.line.contains(r)]
    return max(pool) if pool else None


def previous_release(reachable: Iterable[ReleaseVersion], version: ReleaseVersion) -> ReleaseVersion | None:
    """The changelog's starting point: the newest release below ``version`` reachable from HEAD."""
    below = [r for r in reachable if r < version]
    return max(below) if below else None


class ReleaseActions(Protocol):
    def build_image(self, decision: ReleaseDecision, platform: str = "") -> Any: ...
    def create_branch(self, name: str, commit: str) -> Any: ...
    def create_tag(self, name: str, commit: str, message: str) -> Any: ...
    def record(self, decision: ReleaseDecision) -> Any: ...


def release_plan(
    decision: ReleaseDecision,
    *,
    commands: Mapping[str, Command] = {},
    build_env: str = "prod",
    record_path: str = "",
) -> Plan:
    """Build first: a failed build leaves no branch or tag behind. Then the branch, the tag, the record.

    The steps are calls of the ``release`` performer (:class:`ReleaseActions`); ``commands`` are the git commands
    those calls run, shown with them.
    """
    d = decision
    steps = []
    for platform, ref in d.platform_images:
        tags = (*d.image_tags, ref) if platform == d.local_platform else (ref,)
        mine = " (the local tags' platform)" if platform == d.local_platform else ""
        steps.append(Step(f"build the {build_env} image of {d.commit[:7]} for {platform}{mine} and tag it "
                          f"{', '.join(tags)}",
                          instruction=ApiCall.of("release", "build_image", decision=d, platform=platform)))
    if not d.platform_images:
        steps.append(Step(f"build the {build_env} image of {d.commit[:7]} and tag it {', '.join(d.image_tags)}",
                          instruction=ApiCall.of("release", "build_image", decision=d)))
    if d.create_branch:
        steps.append(Step(f"create branch {d.create_branch} at {d.commit[:7]}",
                          instruction=ApiCall.of("release", "create_branch", name=d.create_branch, commit=d.commit),
                          command=commands.get("branch")))
    steps.append(Step(f"create annotated tag {d.tag} at {d.commit[:7]} with the changelog",
                      instruction=ApiCall.of("release", "create_tag", name=d.tag, commit=d.commit, message=d.message),
                      command=commands.get("tag"), details=tuple(d.message.rstrip().splitlines())))
    ids = "the image IDs" if d.platform_images else "the image ID"
    steps.append(Step(f"record {ids} in {record_path or 'the release record'}",
                      instruction=ApiCall.of("release", "record", decision=d)))
    return Plan(f"Release {d.version} ({d.tag})", tuple(steps))


# --- publish: state, checks, plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishState:
    version: ReleaseVersion
    tag: str
    tag_commit: str  # "" when the tag does not exist locally
    tag_object: str
    image_ref: str  # <repository>:X.Y.Z
    image_id: str  # "" when the image is not here
    image_revision: str
    remote_image_id: str | None  # the registry's config digest for X.Y.Z (None: absent; "?" unknown)
    remote_tag_object: str  # the remote's object for refs/tags/<tag> ("" absent)
    branch: str  # release-vX.Y when it exists locally, else ""
    branch_sha: str
    remote_branch_sha: str
    extra_refs: tuple[str, ...] = ()  # latest / environment tags asked for
    remote_extra_ids: Mapping[str, str | None] = field(default_factory=dict)
    #: a multi-platform release's images; ``image_id`` and the remote ids are then
    #: :func:`~dockyard.core.platforms.fingerprint` strings (platform -> image ID)
    platform_images: tuple[PlatformImage, ...] = ()


@dataclass(frozen=True)
class PublishDecision:
    version: ReleaseVersion
    image_ref: str
    image_id: str
    push_image: bool
    extra_refs: tuple[str, ...]  # to tag and push (those not already there)
    git_refspecs: tuple[str, ...]  # refs/tags/vX.Y.Z, refs/heads/release-vX.Y (only those that changed)
    platform_images: tuple[PlatformImage, ...] = ()  # pushed, then joined into the index image_ref

    @property
    def nothing_to_do(self) -> bool:
        return not (self.push_image or self.extra_refs or self.git_refspecs)


def check_publish_locally(
    *, tag: str, tag_commit: str, image_ref: str, image_id: str, image_revision: str, release_hint: str
) -> None:
    """Refusals that need no network: the tag exists, its image is here and was built from the tag's commit."""
    if not tag_commit:
        raise Refused(f"there is no tag {tag}: make the release first with `{release_hint}`")
    if not image_id:
        raise Refused(
            f"image {image_ref} is not on this machine: publish from the machine where `{release_hint}` ran "
            f"(the image must be the one built from tag {tag})"
        )
    if image_revision != tag_commit:
        got = image_revision[:7] or "no revision label"
        raise Refused(
            f"image {image_ref} was built from {got}, not from tag {tag} ({tag_commit[:7]}): "
            f"remove it (`docker image rm {image_ref}`) and rebuild it from the tag"
        )


def check_publish(state: PublishState, *, release_hint: str) -> PublishDecision:
    """Every refusal of ``publish``; returns only what is not in place yet (publishing twice pushes nothing)."""
    s = state
    check_publish_locally(tag=s.tag, tag_commit=s.tag_commit, image_ref=s.image_ref, image_id=s.image_id,
                          image_revision=s.image_revision, release_hint=release_hint)
    check_platform_images(s.platform_images, tag=s.tag, tag_commit=s.tag_commit, release_hint=release_hint)
    if s.remote_image_id not in (None, "?") and s.remote_image_id != s.image_id:
        what = (f"{s.image_ref} ({differences(s.remote_image_id, s.image_id)})" if s.platform_images else
                f"image for {s.image_ref} ({s.remote_image_id[7:19]}, here {s.image_id[7:19]})")
        raise Refused(f"the registry already has a different {what}: a published version never changes; "
                      f"release a new version")
    if s.remote_tag_object and s.remote_tag_object != s.tag_object:
        raise Refused(
            f"tag {s.tag} on the remote differs from the local one: a published tag never moves; "
            f"fetch it (`git fetch --tags`) and release a new version"
        )
    refspecs = []
    if not s.remote_tag_object:
        refspecs.append(f"refs/tags/{s.tag}")
    if s.branch and s.branch_sha != s.remote_branch_sha:
        refspecs.append(f"refs/heads/{s.branch}")
    remote_extra = s.remote_extra_ids
    extra = tuple(ref for ref in s.extra_refs if remote_extra.get(ref) != s.image_id)
    return PublishDecision(
        version=s.version,
        image_ref=s.image_ref,
        image_id=s.image_id,
        push_image=s.remote_image_id != s.image_id,
        extra_refs=extra,
        git_refspecs=tuple(refspecs),
        platform_images=s.platform_images,
    )


def differences(remote: str, local: str) -> str:
    """How two multi-platform fingerprints differ, per platform: ``linux/arm64 holds 1a2b.. there, 3c4d.. here``."""
    there, here = parse_fingerprint(remote), parse_fingerprint(local)
    if not there:  # a single-platform image where an index belongs
        return f"a single image {remote[7:19]} there, an index of {', '.join(here)} here"
    out = []
    for platform in sorted(set(there) | set(here)):
        a, b = there.get(platform, ""), here.get(platform, "")
        if a != b:
            out.append(f"{platform} holds {a[7:19] or 'nothing'} there, {b[7:19] or 'nothing'} here")
    return "; ".join(out)


class PublishActions(Protocol):
    def login(self) -> Any: ...
    def push_image(self, ref: str) -> Any: ...
    def join(self, ref: str) -> Any: ...
    def verify(self, ref: str) -> Any: ...
    def tag_and_push(self, source: str, ref: str) -> Any: ...
    def push_git(self, refspecs: Sequence[str]) -> Any: ...
    def record(self) -> Any: ...


def publish_plan(
    decision: PublishDecision,
    *,
    registry: str,
    remote: str,
    commands: Mapping[str, Command] = {},
) -> Plan:
    """Image first, then git: the tag reaches the remote only once its image is in the registry.

    The steps are calls of the ``publish`` performer (:class:`PublishActions`), shown with the commands they run.
    """
    d = decision
    steps: list[Step] = []
    if d.push_image or d.extra_refs:
        steps.append(Step(f"log in to {registry} (password on stdin)", instruction=ApiCall.of("publish", "login"),
                          command=commands.get("login")))
    if d.push_image and d.platform_images:
        for image in d.platform_images:
            steps.append(Step(f"push {image.ref} ({image.platform})",
                              instruction=ApiCall.of("publish", "push_image", ref=image.ref),
                              command=Command(("docker", "push", image.ref))))
        repository = d.image_ref.rpartition(":")[0]
        sources = [f"{repository}@<registry digest of {i.ref}>" for i in d.platform_images]
        steps.append(Step(f"check each pushed platform image in the registry, then join them by digest into the "
                          f"index {d.image_ref}", instruction=ApiCall.of("publish", "join", ref=d.image_ref),
                          details=(f"$ {imagetools_display(d.image_ref, sources)}",)))
    elif d.push_image:
        steps.append(Step(f"push {d.image_ref}", instruction=ApiCall.of("publish", "push_image", ref=d.image_ref),
                          command=Command(("docker", "push", d.image_ref))))
    if d.platform_images:
        platforms = ", ".join(i.platform for i in d.platform_images)
        steps.append(Step(f"check the registry's index {d.image_ref}: exactly {platforms}, each the local image "
                          f"built from the tag", instruction=ApiCall.of("publish", "verify", ref=d.image_ref)))
    else:
        steps.append(Step(f"check the registry's digest of {d.image_ref} against the local image",
                          instruction=ApiCall.of("publish", "verify", ref=d.image_ref)))
    for ref in d.extra_refs:
        what = (f"copy the index {d.image_ref} to {ref} (by its digest)" if d.platform_images
                else f"tag {d.image_ref} as {ref} and push it")
        steps.append(Step(what, instruction=ApiCall.of("publish", "tag_and_push", source=d.image_ref, ref=ref)))
    if d.git_refspecs:
        steps.append(Step(f"push {', '.join(r.split('/', 2)[2] for r in d.git_refspecs)} to {remote} (nothing else)",
                          instruction=ApiCall.of("publish", "push_git", refspecs=d.git_refspecs),
                          command=commands.get("push")))
    steps.append(Step("record the registry digest", instruction=ApiCall.of("publish", "record")))
    return Plan(f"Publish {d.version}", tuple(steps))


def imagetools_display(target: str, sources: Sequence[str]) -> str:
    return " ".join(("docker", "buildx", "imagetools", "create", "--tag", target, *sources))


# --- releases table -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseRow:
    tag: str
    date: str
    commit: str
    local: str  # short image ID, "no", or "other commit"
    registry: str  # yes / no / ?
    digest: str
    platforms: tuple[str, ...] = ()  # the registry's index (else the local image's platform); () unknown


def releases_table(rows: Sequence[ReleaseRow]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [("TAG", "DATE", "COMMIT", "LOCAL IMAGE", "REGISTRY", "DIGEST", "PLATFORMS")]
    out += [(r.tag, r.date, r.commit, r.local, r.registry, r.digest, ", ".join(r.platforms) or "?") for r in rows]
    return out


def ordered(versions: Iterable[ReleaseVersion]) -> list[ReleaseVersion]:
    """Newest first."""
    return sorted(versions, reverse=True)


# --- the release record -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseRecord:
    """What a release made on this machine, kept in ``<git dir>/dockyard/releases/<version>.json``.

    Why there: image IDs belong to this machine's engine, so the record is per clone, like the engine; it lives in
    the git directory, so it never dirties the working tree nor rides along in a commit, a push or an image build
    context; and JSON is readable without dockyard. The registry digest is added by ``publish`` and is always
    re-checked against the registry itself, so a lost or stale record costs nothing but the cache.
    """

    version: str
    tag: str
    commit: str
    image_id: str = ""
    image_tags: tuple[str, ...] = ()
    built_at: str = ""
    digest: str = ""  # <repository>@sha256:... once published (a multi-platform release: its index)
    published_at: str = ""
    platform_images: Mapping[str, str] = field(default_factory=dict)  # platform -> image ID (multi-platform)

    def to_json(self) -> str:
        import json

        data = {k: list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v
                for k, v in self.__dict__.items()}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "ReleaseRecord":
        import json

        data = json.loads(text)
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["image_tags"] = tuple(known.get("image_tags") or ())
        known["platform_images"] = {str(k): str(v) for k, v in dict(known.get("platform_images") or {}).items()}
        return cls(**known)
