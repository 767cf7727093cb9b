"""Images of the app: build, destroy, update, list and prune, tagged by environment and commit."""
from __future__ import annotations

from typing import Any, Mapping

from invoke import Collection, task

from .common import Project, edge, table
from .flags import Whole


def _stack(c: Any, env: str):
    from ..stacks import StackService

    project = Project(c)
    return StackService(project, project.environment(env))


@task(help={"env": "environment whose image to build (e.g. dev, prod)",
            "no_cache": "build without the layer cache", "pull": "pull newer base images first"})
@edge
def build(c, env, no_cache=False, pull=False):
    """Build ENV's image, tagged <repository>:<env> and by commit, with OCI labels."""
    stack = _stack(c, env)
    image = stack.build(no_cache=no_cache, pull=pull)
    stack.say(f"built {image.id[7:19]}: {', '.join(sorted(image.tags))}")


@task(help={"env": "environment whose image to remove"})
@edge
def destroy(c, env):
    """Remove ENV's image (refuses while a container of it runs)."""
    stack = _stack(c, env)
    stack.docker.server_version()
    removed = stack.destroy()
    stack.say(f"removed {', '.join(removed)}" if removed else f"no image for {env}; nothing to remove")


@task(help={"env": "environment whose image to rebuild", "no_cache": "build without the layer cache"})
@edge
def update(c, env, no_cache=False):
    """Rebuild ENV's image and drop the one it replaces (build when there is none)."""
    stack = _stack(c, env)
    stack.docker.server_version()
    before = stack.image()
    image = stack.build(no_cache=no_cache)
    if before is not None and before.id != image.id:
        stale = stack.docker.inspect_image(before.id)
        if stale is not None and not stale.tags:
            stack.docker.remove_images([before.id])
            stack.say(f"removed the previous image {before.id[7:19]}")
    stack.say(f"{env} image is {image.id[7:19]}" + (" (unchanged)" if before and before.id == image.id else ""))


@task
@edge
def list(c):  # noqa: A001 - the task's name is what users type
    """List the app's local images: tags, revision, created, size."""
    from ..images import LABEL_REVISION, tags_in

    project = Project(c)
    project.docker.server_version()
    images = project.docker.images(project.settings.repository)
    if not images:
        project.say(f"no local images of {project.settings.repository}")
        return
    rows = [("IMAGE", "TAGS", "REVISION", "CREATED", "SIZE")]
    for image in sorted(images, key=lambda i: i.created, reverse=True):
        tags = ",".join(tags_in(image.tags, project.settings.repository)) or "<none>"
        rows.append((image.id[7:19], tags, image.labels.get(LABEL_REVISION, "")[:7], image.created[:19],
                     f"{image.size / 1e6:.0f} MB"))
    project.say(table(rows))


@task(help={"keep": "commit-tagged images to keep (default: image.keep)", "dry_run": "only show what would go"})
@edge(keep=Whole(minimum=1))
def prune(c, keep=0, dry_run=False):
    """Remove old commit-tagged images of the app, keeping environment tags and the newest few."""
    from ..images import LABEL_APP

    project = Project(c)
    project.docker.server_version()
    keep = keep or project.settings.image_keep
    repo = project.settings.repository
    env_tags = {f"{repo}:{name}" for name in project.settings.environments}
    images = sorted(project.docker.images(repo), key=lambda i: i.created, reverse=True)
    doomed: list[str] = []
    kept = 0
    for image in images:
        if env_tags & set(image.tags):
            continue
        if kept < keep:
            kept += 1
            continue
        doomed += [t for t in image.tags if t.startswith(repo + ":")]
    for line in doomed:
        project.say(("would remove " if dry_run else "removing ") + line)
    if doomed and not dry_run:
        project.docker.remove_images(doomed)
    dangling = project.docker.run(["docker", "image", "ls", "-q", "--filter", "dangling=true",
                                   "--filter", f"label={LABEL_APP}={project.settings.app}"]).stdout.split()
    if dangling and not dry_run:
        project.docker.remove_images(dangling)
    project.say(f"{len(doomed)} tags and {len(dangling)} dangling images " + ("to remove" if dry_run else "removed"))


class _CommitImage:
    """The commit image of one environment: its tag, the registry's view of it, and the actions of a push."""

    CI_COMMIT_VARIABLES = ("CIRCLE_SHA1", "GITHUB_SHA")

    def __init__(self, c: Any, env_name: str) -> None:
        from ..images import commit_tag

        self.stack = _stack(c, env_name)
        self.project = self.stack.project
        self.settings = self.project.settings
        self.env = self.stack.env
        self.revision = self.project.git.revision()
        self.digest = ""
        self.image_id = ""
        if self.env.target == "ssh":  # the tag `staging.ssh-deploy` deploys by default
            tag = self.settings.ssh.target(self.env.name).default_version(self.revision.sha)
        else:
            tag = commit_tag(self.settings, self.env, self.revision)
        self.ref = f"{self.settings.repository}:{tag}"
        self.tag = tag

    def check_tree(self) -> None:
        import os

        from ..errors import Refused

        if self.revision.dirty:
            files = ", ".join(self.project.git.changed_files()[:5])
            raise Refused(f"the tree has uncommitted changes ({files}): commit them; a commit image is built from "
                          "exactly its commit")
        for variable in self.CI_COMMIT_VARIABLES:
            named = os.environ.get(variable, "")
            if named and named != self.revision.sha:
                raise Refused(f"{variable} is {named[:7]} but the checkout is at {self.revision.sha[:7]}: check out "
                              "the commit CI is building")

    def credentials(self):  # -> RegistryCredentials
        from ..core.credentials import gather_credentials

        return gather_credentials(self.settings, mask=self.project.mask, env_file=self.env.env_file, interactive=True)

    def build_spec(self):  # -> BuildSpec | None: None = the environment's compose file says
        """An environment without a compose file (staging over SSH) runs the app's production image: ``ci.dockerfile``
        / ``ci.context`` when set, else what the release environment's compose file builds."""
        from ..containers import read_compose_file
        from ..core.compose import stack_variables
        from ..errors import ConfigError
        from ..images import build_spec, compose_less_spec

        if self.env.compose is not None:
            return None
        ci = self.settings.ci
        if ci.dockerfile is not None or ci.context is not None:
            return compose_less_spec(ci.dockerfile, ci.context or self.settings.root)
        release_env = self.settings.environment(self.settings.release_env)
        if release_env.compose is None:
            raise ConfigError(f"dockyard.environments.{self.env.name}.compose: not set, and neither are "
                              f"dockyard.ci.dockerfile nor environments.{release_env.name}.compose: set one so "
                              f"image.push knows how to build {self.env.name}'s image")
        model = read_compose_file(release_env.compose, stack_variables(self.settings, release_env),
                                  runner=self.project.runner)
        return build_spec(self.settings, release_env, model)

    @property
    def record_path(self) -> Any:
        return self.project.git.common_dir() / "dockyard" / "images" / self.env.name / f"{self.tag}.json"


class _PushActions:
    def __init__(self, image: _CommitImage, credentials: Any) -> None:
        self.image = image
        self.credentials = credentials

    def login(self) -> None:
        from ..registry import login

        login(self.image.project.docker, self.credentials)

    def build(self) -> None:
        self.image.stack.build(version=self.image.tag, extra_tags=(self.image.ref,), spec=self.image.build_spec())

    def push(self) -> None:
        self.image.project.docker.push(self.image.ref)

    def verify(self) -> None:
        from ..errors import DockyardError
        from ..images import LABEL_REVISION
        from ..registry import remote_image

        image = self.image
        repository = image.settings.repository
        remote = remote_image(self.credentials, repository, image.tag)
        if remote is None or remote.labels.get(LABEL_REVISION) != image.revision.sha or not remote.digest:
            raise DockyardError(f"the registry does not hold {image.ref} built from {image.revision.short} after the "
                                f"push: push again with `inv image.push {image.env.name}`")
        image.digest = f"{repository}@{remote.digest}"
        image.image_id = remote.image_id
        image.project.say(f"verified: {image.ref} = {image.digest}")

    def record(self) -> None:
        import json
        from datetime import datetime, timezone

        image = self.image
        path = image.record_path
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"env": image.env.name, "ref": image.ref, "commit": image.revision.sha, "digest": image.digest,
                  "image_id": image.image_id,
                  "pushed_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(path)


@task(help={"env": "environment whose commit image to build and push (e.g. staging)",
            "dry_run": "print the plan (login, build, push) and change nothing"})
@edge
def push(c, env, dry_run=False):
    """Build and push ENV's image of this commit, unless the registry has it; record its digest.

    The tag is the one `<env>.ssh-deploy` deploys by default (ssh.version_format, e.g. staging-<sha7>), or the
    commit tag for other environments. An image already in the registry for this commit is neither rebuilt nor
    pushed again. The digest is printed and kept in .git/dockyard/images/<env>/<tag>.json.
    """
    from ..clients.docker import build_command, login_command
    from ..errors import DockyardError
    from ..images import LABEL_REVISION, PushState, decide_push, env_ref, push_plan
    from ..plan import execute
    from ..registry import remote_image

    image = _CommitImage(c, env)
    image.check_tree()
    if not dry_run:
        image.project.docker.server_version()
    try:
        credentials = image.credentials()
        remote = remote_image(credentials, image.settings.repository, image.tag)
    except DockyardError:
        if not dry_run:
            raise
        credentials, remote = None, None  # a dry run still shows the plan; the registry's state is then unknown
    local = image.project.docker.inspect_image(image.ref) if not dry_run else None
    decision = decide_push(PushState(
        ref=image.ref, commit=image.revision.sha,
        remote_revision=None if remote is None else remote.labels.get(LABEL_REVISION, ""),
        remote_digest=remote.digest if remote else "",
        local_revision=None if local is None else local.labels.get(LABEL_REVISION, "")))
    login = login_command(credentials.registry, credentials.username, credentials.password) if credentials else None
    spec = image.build_spec()
    shown_build = build_command(
        context=spec.context, dockerfile=spec.dockerfile, tags=(image.ref,), builder=image.project.builder,
        secrets=image.project.build_secrets(check=False),
        cache=image.project.build_cache(previous=(env_ref(image.settings, image.env),))) if spec else None
    plan = push_plan(decision, registry=image.settings.registry.url, login=login, build=shown_build)
    execute(plan, dry_run=dry_run, mask=image.project.mask, performers={"push": _PushActions(image, credentials)})
    if not dry_run:
        _publish_outputs(image)
        image.project.say(f"{image.ref} is {image.digest}" + (" (already pushed)" if decision.nothing_to_do else ""))


def _publish_outputs(image: _CommitImage) -> None:
    """On GitHub Actions: the pushed image as step outputs (``image``, ``digest``) and a line of the job summary."""
    import os

    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a") as out:
            out.write(f"image={image.ref}\ndigest={image.digest}\n")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as out:
            out.write(f"- {image.env.name} image `{image.ref}` = `{image.digest}` (commit {image.revision.short})\n")


def attach(ns: Collection, environments: Mapping[str, Mapping[str, Any]]) -> None:
    ns.add_collection(Collection("image", build, destroy, update, list, prune, push))
