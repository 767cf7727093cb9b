"""Releases: tag a version in git, build its image, publish both (release, publish, releases)."""
from __future__ import annotations

from functools import cached_property
from typing import Any, Mapping

from invoke import Collection, task

from .common import Project, edge, table


# --- shared -------------------------------------------------------------------------------------------------------


class _Release:
    """One project's release context: settings, the version asked for, and the clients (created on use)."""

    def __init__(self, c: Any, version_text: str | None = None) -> None:
        from ..core.versions import read_version

        self.project = Project(c)
        self.settings = self.project.settings
        self.rules = self.settings.release
        self.git = self.project.git
        self.version = None
        if version_text is not None:
            self.version, note = read_version(version_text, self.rules.tag_prefix)
            if note:
                self.project.say(note)

    def say(self, text: str) -> None:
        self.project.say(text)

    @property
    def tag(self) -> str:
        return self.version.tag(self.rules.tag_prefix)

    @property
    def image_ref(self) -> str:
        from ..core.compose import image_reference

        return image_reference(self.settings.repository, self.version.image_tag)

    @property
    def line_branch(self) -> str:
        return self.version.line.branch(self.rules.branch_prefix)

    def require_repository(self) -> None:
        from ..errors import DockyardError

        if not self.git.is_repository() or not self.git.commit_of("HEAD"):
            raise DockyardError(f"{self.settings.root} is not a git repository with a commit: `git init` and commit first")

    # --- records ------------------------------------------------------------------------------------------------
    @cached_property
    def records_dir(self) -> Any:
        return self.git.common_dir() / "dockyard" / "releases"

    def record_path(self, version: Any) -> Any:
        return self.records_dir / f"{version}.json"

    def read_record(self, version: Any):  # -> ReleaseRecord | None
        from ..release import ReleaseRecord

        path = self.record_path(version)
        try:
            return ReleaseRecord.from_json(path.read_text())
        except (OSError, ValueError, TypeError):
            return None

    def write_record(self, record: Any) -> None:
        path = self.record_path(record.version)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(record.to_json())
        tmp.replace(path)

    # --- registry -----------------------------------------------------------------------------------------------
    def credentials(self, *, interactive: bool = True):  # -> RegistryCredentials
        """Registry credentials; the password is masked in everything dockyard prints from here on."""
        from ..core.credentials import gather_credentials

        release_env = self.settings.environments.get(self.settings.release_env)
        return gather_credentials(self.settings, mask=self.project.mask, interactive=interactive,
                                  env_file=release_env.env_file if release_env is not None else None)


def _build_order(r: _Release) -> tuple[str, ...]:
    """A multi-platform release's platforms in build order (the engine's last); () for a single platform. A dry run
    without an engine orders them as if it were the first listed platform's."""
    from ..core.platforms import build_order, is_multi

    platforms = r.settings.image_platforms
    if not is_multi(platforms):
        return ()
    return build_order(platforms, r.project.engine_platform or platforms[0])


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --- release ------------------------------------------------------------------------------------------------------


def _release_state(r: _Release):  # -> ReleaseState
    from ..core.versions import versions_from_tags
    from ..release import Commit, ReleaseState, previous_release

    remote = r.settings.git_remote
    r.git.fetch(remote)
    remote_refs = r.git.remote_refs(remote)
    prefix = r.rules.tag_prefix
    head = r.git.commit_of("HEAD")
    local_tags = {t.name for t in r.git.tags(prefix)}
    remote_tags = {ref[len("refs/tags/"):] for ref in remote_refs if ref.startswith("refs/tags/")}
    releases = versions_from_tags(local_tags | remote_tags, prefix)
    branch = r.line_branch
    branch_ref = ""
    for candidate in (f"refs/heads/{branch}", f"refs/remotes/{remote}/{branch}"):
        if r.git.commit_of(candidate):
            branch_ref = candidate
            break
    branch_sha = r.git.commit_of(branch_ref) if branch_ref else ""
    reachable = versions_from_tags([t.name for t in r.git.tags(prefix, merged="HEAD")], prefix)
    previous = previous_release(reachable, r.version)
    log = r.git.commits(f"{reachable[previous]}..HEAD" if previous else "HEAD")
    return ReleaseState(
        version=r.version,
        head=head,
        current_branch=r.git.current_branch(),
        dirty_files=tuple(r.git.changed_files()),
        local_tags=frozenset(local_tags),
        remote_tags=frozenset(remote_tags),
        releases=tuple(releases),
        line_branch=branch,
        line_branch_ref=branch_ref,
        line_branch_sha=branch_sha,
        head_on_line_branch=bool(branch_sha) and r.git.is_ancestor(head, branch_sha),
        previous=previous,
        commits=tuple(Commit(*entry) for entry in log),
    )


class _ReleaseActions:
    def __init__(self, r: _Release) -> None:
        from ..stacks import StackService

        self.r = r
        self.stack = StackService(r.project, r.settings.environment(r.rules.build_env))
        self.image = None
        self.platform_images: dict[str, str] = {}

    def build_image(self, decision: Any, platform: str = "") -> None:
        from ..core.platforms import normalized
        from ..errors import DockyardError
        from ..images import LABEL_REVISION

        if not platform:
            image = self.stack.build(version=str(decision.version), extra_tags=decision.image_tags)
        else:
            ref = dict(decision.platform_images)[platform]
            local = platform == decision.local_platform
            image = self.stack.build(version=str(decision.version), platform=platform, env_tags=local,
                                     extra_tags=(*decision.image_tags, ref) if local else (ref,))
            if normalized(image.platform) != normalized(platform):
                raise DockyardError(
                    f"{ref} was asked for {platform} but is a {image.platform or 'unknown'} image: the Dockerfile "
                    f"pins its platform (FROM --platform=...); use FROM --platform=$BUILDPLATFORM only for build "
                    f"stages, then release again")
            self.platform_images[platform] = image.id
        if image.labels.get(LABEL_REVISION) != decision.commit:
            raise DockyardError(
                f"the image's revision label is {image.labels.get(LABEL_REVISION)!r}, not {decision.commit}: "
                f"the tree changed during the build; nothing was tagged, release again"
            )
        if not platform or platform == decision.local_platform:
            self.image = image

    def create_branch(self, name: str, commit: str) -> None:
        self.r.git.create_branch(name, commit)

    def create_tag(self, name: str, commit: str, message: str) -> None:
        self.r.git.create_tag(name, commit, message)

    def record(self, decision: Any) -> None:
        from ..release import ReleaseRecord

        image = self.image
        self.r.write_record(ReleaseRecord(
            version=str(decision.version), tag=decision.tag, commit=decision.commit,
            image_id=image.id if image else "", image_tags=decision.image_tags, built_at=_now(),
            platform_images=dict(self.platform_images),
        ))


@task(help={
    "version": "the version to release: MAJOR.MINOR.PATCH, optionally -rc.N (e.g. 1.2.0, 1.2.1, 2.0.0-rc.1)",
    "dry_run": "print the plan (branch, tag, changelog, image tags) and change nothing",
    "message": "text to put in the tag's message above the changelog",
    "allow_empty": "release even when there is no commit since the previous release",
})
@edge
def release(c, version, dry_run=False, message="", allow_empty=False):
    """Tag a version (changelog), open its release branch, build its image.

    Refuses a dirty tree, an existing tag, a version not above the last of its line, X.Y.0 off the main branch, a
    patch off release-vX.Y, or no new commits. The image <repository>:X.Y.Z is built from exactly the tagged commit.
    """
    from ..clients.git import branch_command, tag_command
    from ..plan import execute
    from ..release import check_release, release_plan

    r = _Release(c, version)
    r.require_repository()
    state = _release_state(r)
    decision = check_release(
        state, main_branch=r.settings.main_branch, tag_prefix=r.rules.tag_prefix,
        allow_empty=allow_empty or r.rules.allow_empty, repository=r.settings.repository, note=message,
        platforms=_build_order(r),
    )
    if not dry_run:
        r.project.docker.server_version()
    commands = {
        "branch": branch_command(r.settings.root, decision.create_branch, decision.commit),
        "tag": tag_command(r.settings.root, decision.tag, decision.commit, decision.message),
    }
    record = r.record_path(decision.version)
    shown = str(record.relative_to(r.settings.root)) if record.is_relative_to(r.settings.root) else str(record)
    plan = release_plan(decision, commands=commands, build_env=r.rules.build_env, record_path=shown)
    execute(plan, dry_run=dry_run, mask=r.project.mask,
            performers=None if dry_run else {"release": _ReleaseActions(r)})
    if not dry_run:
        r.say(f"released {decision.version}: tag {decision.tag} at {decision.commit[:7]}, image "
              f"{', '.join(decision.image_tags)}; publish it with `inv publish {decision.version}`")


# --- publish ------------------------------------------------------------------------------------------------------


class _PublishActions:
    def __init__(self, r: _Release, credentials: Any, decision: Any) -> None:
        self.r = r
        self.credentials = credentials
        self.decision = decision
        self.digest = ""
        self.pushed: dict[str, str] = {}  # platform -> the registry digest of its pushed platform image

    @property
    def docker(self):
        return self.r.project.docker

    def join(self, ref: str) -> None:
        """Check each pushed platform image in the registry (it must be the local one), then join them by digest
        into the index ``ref``."""
        from ..clients.buildx import imagetools_create
        from ..errors import DockyardError
        from ..registry import remote_image

        repository = ref.rpartition(":")[0]
        sources = []
        for image in self.decision.platform_images:
            remote = remote_image(self.credentials, repository, image.ref.rpartition(":")[2])
            if remote is None or remote.image_id != image.image_id:
                got = remote.image_id[7:19] if remote else "missing"
                raise DockyardError(f"the registry's {image.ref} is {got}, not the local {image.image_id[7:19]} just "
                                    f"pushed: another push raced this one; publish again")
            self.pushed[image.platform] = remote.digest
            sources.append(f"{repository}@{remote.digest}")
        imagetools_create(self.r.project.runner, self.r.project.builder, ref, sources,
                          timeout=self.docker.stall_timeout)

    def login(self) -> None:
        from ..registry import login

        login(self.docker, self.credentials)

    def push_image(self, ref: str) -> None:
        self.docker.push(ref)

    def verify(self, ref: str) -> None:
        from ..errors import DockyardError
        from ..registry import remote_digest, remote_image_id

        if self.decision.platform_images:
            return self.verify_index(ref)
        repository, _, tag = ref.rpartition(":")
        remote_id = remote_image_id(self.credentials, repository, tag)
        digest = remote_digest(self.credentials, repository, tag)
        if remote_id != self.decision.image_id or not digest:
            raise DockyardError(
                f"the registry's {ref} is {(remote_id or 'missing')[:19]}, not the local image "
                f"{self.decision.image_id[:19]}: push again with `inv publish {self.decision.version}`"
            )
        image = self.docker.inspect_image(ref)
        local = [d.split("@", 1)[1] for d in (image.digests if image else ()) if d.startswith(repository + "@")]
        if local and digest not in local:
            raise DockyardError(f"the registry's digest of {ref} ({digest}) differs from the local one ({local[0]})")
        self.digest = f"{repository}@{digest}"
        self.r.say(f"verified: {ref} = {self.digest}")

    def verify_index(self, ref: str) -> None:
        from ..core.platforms import index_problems
        from ..errors import DockyardError
        from ..registry import remote_index

        repository, _, tag = ref.rpartition(":")
        index = remote_index(self.credentials, repository, tag)
        again = f"publish again with `inv publish {self.decision.version}`"
        if index is None or not index.is_index:
            what = "missing" if index is None else "a single image, not an index"
            raise DockyardError(f"the registry's {ref} is {what}: {again}")
        tag_commit = self.r.git.commit_of(f"refs/tags/{self.r.tag}")
        problems = index_problems(index.entries, self.decision.platform_images, pushed=self.pushed,
                                  tag_commit=tag_commit)
        if problems:
            raise DockyardError(f"the registry's index {ref} ({index.digest[7:19]}) is not what was built: "
                                f"{'; '.join(problems)}: {again}")
        self.digest = f"{repository}@{index.digest}"
        self.r.say(f"verified: {ref} = {self.digest} ({', '.join(index.platforms)})")

    def tag_and_push(self, source: str, ref: str) -> None:
        if self.decision.platform_images:
            from ..clients.buildx import imagetools_create
            from ..errors import DockyardError
            from ..registry import remote_digest

            imagetools_create(self.r.project.runner, self.r.project.builder, ref, [self.digest],
                              timeout=self.docker.stall_timeout)
            repository, _, tag = ref.rpartition(":")
            copied = remote_digest(self.credentials, repository, tag)
            if f"{repository}@{copied}" != self.digest:
                raise DockyardError(f"the registry's {ref} is {copied or 'missing'}, not the index {self.digest}: "
                                    f"publish again with `inv publish {self.decision.version}`")
            return
        self.docker.tag(source, ref)
        self.docker.push(ref)

    def push_git(self, refspecs: Any) -> None:
        self.r.git.push(self.r.settings.git_remote, refspecs)

    def record(self) -> None:
        from dataclasses import replace

        from ..release import ReleaseRecord

        d = self.decision
        old = self.r.read_record(d.version) or ReleaseRecord(
            version=str(d.version), tag=self.r.tag, commit=self.r.git.commit_of(f"refs/tags/{self.r.tag}"),
            image_id=d.image_id, image_tags=(d.image_ref,))
        platforms = {i.platform: i.image_id for i in d.platform_images}
        if old.digest == self.digest and old.published_at and dict(old.platform_images) == platforms:
            return
        self.r.write_record(replace(old, digest=self.digest, published_at=_now(),
                                    platform_images=platforms or old.platform_images))


def _published_image(r: _Release, tag_commit: str, credentials: Any):  # -> Image | None
    """The registry's image of the release when it was built from the tag's commit (published from another clone,
    e.g. the laptop that ran `inv release`, before CI's tag job runs `publish`)."""
    from ..clients.docker import Image
    from ..core.platforms import is_multi
    from ..errors import DockyardError
    from ..images import LABEL_REVISION
    from ..registry import RemoteImage, remote_image, remote_index

    if not tag_commit or credentials is None:
        return None
    try:
        if is_multi(r.settings.image_platforms):
            index = remote_index(credentials, r.settings.repository, r.version.image_tag)
            if index is None or not index.is_index or any(e.revision != tag_commit for e in index.entries):
                return None
            remote = RemoteImage(index.digest, index.fingerprint(), {LABEL_REVISION: tag_commit})
        else:
            remote = remote_image(credentials, r.settings.repository, r.version.image_tag)
    except DockyardError:
        return None
    if remote is None or remote.labels.get(LABEL_REVISION) != tag_commit:
        return None
    r.say(f"{r.image_ref} is not on this machine; the registry has it, built from {r.tag} ({tag_commit[:7]})")
    return Image(id=remote.image_id, tags=(), created="", size=0, labels=dict(remote.labels))


def _local_release_checks(r: _Release, credentials: Any = None) -> tuple[str, str, Any]:
    """Refusals that need no network: the tag exists, its image is here (or, with ``credentials``, already in the
    registry) and was built from it."""
    from ..images import LABEL_REVISION
    from ..release import check_publish_locally

    tag_commit = r.git.commit_of(f"refs/tags/{r.tag}")
    r.project.docker.server_version()
    image = r.project.docker.inspect_image(r.image_ref)
    if image is None and credentials is not None:
        image = _published_image(r, tag_commit, credentials)
    check_publish_locally(
        tag=r.tag, tag_commit=tag_commit, image_ref=r.image_ref, image_id=image.id if image else "",
        image_revision=image.labels.get(LABEL_REVISION, "") if image else "", release_hint=f"inv release {r.version}",
    )
    return tag_commit, r.git.object_of(f"refs/tags/{r.tag}"), image


def _publish_state(r: _Release, credentials: Any, extra_refs: tuple[str, ...], tag_commit: str, tag_object: str,
                   image: Any):  # -> PublishState
    from ..core.platforms import fingerprint, is_multi
    from ..images import LABEL_REVISION
    from ..registry import remote_image_id, remote_index
    from ..release import PublishState

    multi = is_multi(r.settings.image_platforms)

    def registry_id(ref: str) -> str | None:
        if credentials is None:
            return "?"
        repository, _, tag = ref.rpartition(":")
        if not multi:
            return remote_image_id(credentials, repository, tag)
        index = remote_index(credentials, repository, tag)
        return None if index is None else index.fingerprint()

    platform_images = _platform_images(r, credentials, tag_commit) if multi else ()
    remote_refs = r.git.remote_refs(r.settings.git_remote)
    branch = r.line_branch if r.git.commit_of(f"refs/heads/{r.line_branch}") else ""
    return PublishState(
        version=r.version, tag=r.tag, tag_commit=tag_commit, tag_object=tag_object, image_ref=r.image_ref,
        image_id=fingerprint({i.platform: i.image_id for i in platform_images}) if multi else image.id,
        image_revision=image.labels.get(LABEL_REVISION, ""),
        remote_image_id=registry_id(r.image_ref),
        remote_tag_object=remote_refs.get(f"refs/tags/{r.tag}", ""),
        branch=branch, branch_sha=r.git.commit_of(f"refs/heads/{branch}") if branch else "",
        remote_branch_sha=remote_refs.get(f"refs/heads/{branch}", "") if branch else "",
        extra_refs=extra_refs, remote_extra_ids={ref: registry_id(ref) for ref in extra_refs},
        platform_images=platform_images,
    )


def _platform_images(r: _Release, credentials: Any, tag_commit: str) -> tuple[Any, ...]:
    """Each platform's image of a multi-platform release: the local ``X.Y.Z-<os>-<arch>``, or, where it is not here,
    what the registry's index holds for that platform (published from another clone)."""
    from ..core.compose import image_reference
    from ..core.platforms import PlatformImage, normalized, platform_tag
    from ..errors import DockyardError
    from ..images import LABEL_REVISION
    from ..registry import remote_index

    remote: dict[str, Any] | None = None  # the registry's index by platform, read once and only when needed
    out = []
    for platform in r.settings.image_platforms:
        ref = image_reference(r.settings.repository, platform_tag(r.version.image_tag, platform))
        local = r.project.docker.inspect_image(ref)
        if local is None and credentials is not None and remote is None:
            try:
                index = remote_index(credentials, r.settings.repository, r.version.image_tag)
            except DockyardError:
                index = None
            remote = {normalized(e.platform): e for e in (index.entries if index and index.is_index else ())}
        entry = (remote or {}).get(normalized(platform)) if local is None else None
        if local is not None:
            out.append(PlatformImage(platform, ref, local.id, local.labels.get(LABEL_REVISION, "")))
        elif entry is not None:
            out.append(PlatformImage(platform, ref, entry.image_id, entry.revision))
        else:
            out.append(PlatformImage(platform, ref, "", ""))
    return tuple(out)


@task(help={
    "version": "the released version to publish (e.g. 1.2.0)",
    "latest": "also tag and push the image as <repository>:latest",
    "env": "also tag and push the image as <repository>:ENV (e.g. prod)",
    "dry_run": "print what would be pushed and change nothing",
})
@edge
def publish(c, version, latest=False, env="", dry_run=False):
    """Push a release's image and its git tag and branch (idempotent).

    Logs in with the password on stdin, pushes <repository>:X.Y.Z, checks the registry's digest, then pushes only
    the tag vX.Y.Z and the branch release-vX.Y to the remote. Publishing twice verifies and pushes nothing.
    """
    from ..clients.docker import login_command
    from ..clients.git import push_command
    from ..core.compose import image_reference
    from ..errors import DockyardError
    from ..plan import execute
    from ..release import check_publish, publish_plan

    r = _Release(c, version)
    r.require_repository()
    credentials = None
    if r.git.commit_of(f"refs/tags/{r.tag}") and not latest and not env:
        r.project.docker.server_version()
        if r.project.docker.inspect_image(r.image_ref) is None:
            # Not built here: publish verifies what another clone published (moving tags need the local image).
            try:
                credentials = r.credentials(interactive=False)
            except DockyardError:
                credentials = None  # then the refusal below says where to publish from
    tag_commit, tag_object, image = _local_release_checks(r, credentials)
    if env:
        r.settings.environment(env)
    extra = tuple(dict.fromkeys(
        image_reference(r.settings.repository, tag) for tag in (["latest"] if latest else []) + ([env] if env else [])))
    try:
        credentials = credentials or r.credentials()
    except DockyardError:
        if not dry_run:
            raise
        credentials = None  # a dry run still shows the plan; the registry's state is then unknown
    state = _publish_state(r, credentials, extra, tag_commit, tag_object, image)
    decision = check_publish(state, release_hint=f"inv release {r.version}")
    commands = {"push": push_command(r.settings.root, r.settings.git_remote, decision.git_refspecs or ("...",))}
    if credentials is not None:
        commands["login"] = login_command(credentials.registry, credentials.username, credentials.password)
    actions = _PublishActions(r, credentials, decision)
    plan = publish_plan(decision, registry=r.settings.registry.url, remote=r.settings.git_remote, commands=commands)
    execute(plan, dry_run=dry_run, mask=r.project.mask, performers={"publish": actions})
    if dry_run:
        return
    if decision.nothing_to_do:
        r.say(f"{decision.version} was already published: {actions.digest}, tag {r.tag} on {r.settings.git_remote}; "
              f"nothing pushed")
    else:
        r.say(f"published {decision.version}: {actions.digest}")


# --- releases -----------------------------------------------------------------------------------------------------


@task(help={"offline": "do not ask the registry (local image and git only)",
            "json": "print one JSON object on stdout (the releases, result, exit code); the table goes to stderr"})
@edge
def releases(c, offline=False, json=False):
    """List releases: tag, date, commit, local image, registry, digest, platforms."""
    import json as json_module

    from ..dispatch import FAILURES, machine_output
    from ..errors import DockyardError

    report: dict[str, Any] = {"verb": "releases", "releases": [], "notes": [], "result": "ok", "exit_code": 0,
                              "message": ""}
    with machine_output(json) as emit:
        try:
            _list_releases(c, offline, report)
        except DockyardError as exc:
            report.update(result=FAILURES.get(exc.exit_code, "failed"), exit_code=exc.exit_code, message=exc.message)
            raise
        except KeyboardInterrupt:
            report.update(result="interrupted", exit_code=130, message="interrupted")
            raise
        except Exception as exc:  # a bug: the traceback follows, the object still says it failed
            report.update(result="failed", exit_code=1, message=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            emit(json_module.dumps(report))


def _list_releases(c: Any, offline: bool, report: dict[str, Any]) -> None:
    """Print the releases table; ``report`` gets each release (full digest) and the notes, for ``--json``."""
    from ..core.compose import image_reference
    from ..core.versions import versions_from_tags
    from ..errors import DockyardError
    from ..images import LABEL_REVISION
    from ..core.platforms import is_multi
    from ..registry import remote_digest, remote_index
    from ..release import ReleaseRow, ordered, releases_table

    r = _Release(c)
    multi = is_multi(r.settings.image_platforms)
    r.require_repository()
    tags = {t.name: t for t in r.git.tags(r.rules.tag_prefix)}
    versions = versions_from_tags(tags, r.rules.tag_prefix)
    if not versions:
        r.say(f"no releases yet (no {r.rules.tag_prefix}X.Y.Z tags): make one with `inv release 1.0.0`")
        return
    notes = []
    credentials = None
    if not offline:
        try:
            credentials = r.credentials(interactive=False)
        except DockyardError as exc:
            notes.append(f"registry not checked: {exc.message}")
    local_images: dict[str, Any] | None = None
    try:
        r.project.docker.server_version()
        # One listing of the repository's images instead of one `docker image inspect` per release.
        local_images = {tag: image for image in r.project.docker.images(r.settings.repository) for tag in image.tags}
    except DockyardError as exc:
        notes.append(f"local images not checked: {exc.message}")
    rows = []
    for v in ordered(versions):
        info = tags[versions[v]]
        ref = image_reference(r.settings.repository, v.image_tag)
        image = local_images.get(ref) if local_images is not None else None
        local = "?" if local_images is None else "no"
        if image is not None:
            local = image.id[7:19] if image.labels.get(LABEL_REVISION) == info.commit else "other commit"
        in_registry, digest = "?", ""
        platforms: tuple[str, ...] = (image.platform,) if image is not None and image.platform else ()
        if credentials is not None:
            try:
                if multi:  # the index's platforms, as deploys will see them
                    index = remote_index(credentials, r.settings.repository, v.image_tag)
                    found = index.digest if index else None
                    platforms = index.platforms if index else platforms
                else:
                    found = remote_digest(credentials, r.settings.repository, v.image_tag)
                in_registry, digest = ("yes", found) if found else ("no", "")
            except DockyardError as exc:
                notes.append(f"registry not checked: {exc.message}")
                credentials = None
        if not digest or not platforms:
            record = r.read_record(v)
            if not digest:
                digest = record.digest.split("@", 1)[1] if record and "@" in record.digest else ""
            if not platforms and record is not None:
                platforms = tuple(record.platform_images)
        rows.append(ReleaseRow(tag=info.name, date=info.date[:16].replace("T", " "), commit=info.commit[:7],
                               local=local, registry=in_registry, digest=digest[:19], platforms=platforms))
        report["releases"].append({"version": str(v), "tag": info.name, "date": info.date, "commit": info.commit,
                                   "image": ref, "local": local, "registry": in_registry, "digest": digest or None,
                                   "platforms": list(platforms)})
    r.say(table(releases_table(rows)))
    report["notes"] = list(dict.fromkeys(notes))
    for note in report["notes"]:
        r.project.warn(note)


def attach(ns: Collection, environments: Mapping[str, Mapping[str, Any]]) -> None:
    for t in (release, publish, releases):
        ns.add_task(t)
