"""Images of the app: build, destroy, update, list and prune, tagged by environment and commit."""
from __future__ import annotations

from typing import Any, Mapping

from invoke import Collection, task

from .common import Project, edge, table


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
@edge
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


def attach(ns: Collection, environments: Mapping[str, Mapping[str, Any]]) -> None:
    ns.add_collection(Collection("image", build, destroy, update, list, prune))
