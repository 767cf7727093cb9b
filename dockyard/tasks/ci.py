"""Continuous integration: run the test suite in a testing image with its services, cache images, write CI configs."""
from __future__ import annotations

import os
from typing import Any, Mapping

from invoke import Collection, task

from .common import Project, edge, make_directory, write_output

BRANCH_VARIABLES = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CIRCLE_BRANCH")


def _ci(project: Project):
    return project.settings.ci


def _branch(project: Project) -> str:
    for name in BRANCH_VARIABLES:  # CI checkouts are often a detached HEAD
        if os.environ.get(name):
            return os.environ[name]
    result = project.git.git("rev-parse", "--abbrev-ref", "HEAD", check=False)
    branch = result.stdout.strip() if result.ok else ""
    return "" if branch == "HEAD" else branch


@task(help={"keep": "leave the service containers and network running afterwards (for debugging)",
            "no_cache": "build the testing image without any layer cache",
            "dry_run": "print the plan (images, containers, commands) and change nothing"})
@edge
def test(c, keep=False, no_cache=False, dry_run=False):
    """Run the tests in the <sha>-testing image, with the configured services on a private network."""
    from ..ci.testrun import TestRunner, new_test_run
    from ..plan import execute

    project = Project(c)
    ci = _ci(project)
    if not dry_run:
        project.docker.server_version()
    revision = project.git.revision()
    run = new_test_run(project.settings, ci, revision, _branch(project), no_cache=no_cache,
                       compose_build=_compose_build(project, ci), builder=project.builder,
                       secrets=project.build_secrets(check=not dry_run),
                       # inline: the cache images ci.cache_from names are this run's --cache-from (TestRunner)
                       cache=project.build_cache())
    runner = TestRunner(run, project.runner, project.docker, ready_timeout=ci.ready_timeout, say=project.say)
    plan = runner.plan()
    if dry_run:
        execute(plan, dry_run=True, mask=project.mask)
        return
    try:
        execute(plan, mask=project.mask, performers={"testrun": runner, "local": project.runner})
    finally:
        if keep:
            project.say(runner.kept())
        else:
            runner.cleanup()


def _compose_build(project: Project, ci: Any):
    """The build section of ``ci.environment``'s app service, when the testing build is not set in ci.*."""
    env = project.settings.environment(ci.environment)
    if env.compose is None or (ci.dockerfile is not None and ci.context is not None):
        return None
    from ..containers import read_compose_file
    from ..core.compose import stack_variables
    from ..images import build_spec

    # Compose's model without the env files (CI has none): only the build section is read
    model = read_compose_file(env.compose, stack_variables(project.settings, env), runner=project.runner)
    return build_spec(project.settings, env, model)


def _cache_entries(project: Project, directory: str):
    from pathlib import Path

    from ..ci.cache import cached_images

    ci = _ci(project)
    where = Path(directory) if directory else ci.cache_dir
    images = [s.image for s in ci.services] + list(ci.cache_images)
    return where, cached_images(images, where)


def _local_ids(project: Project, images: list[str]) -> dict[str, str]:
    ids = {}
    for image in images:
        found = project.docker.inspect_image(image)
        if found is not None:
            ids[image] = found.id
    return ids


@task(help={"dir": "cache directory (default: dockyard.ci.cache_dir)", "dry_run": "only show what would be saved"})
@edge
def save(c, dir="", dry_run=False):  # noqa: A002 - the option users type is --dir
    """Save the service images (docker save) to the cache directory, skipping archives that are up to date."""
    from ..ci.cache import ImageCache, plan_save
    from ..plan import execute

    project = Project(c)
    project.docker.server_version()
    where, entries = _cache_entries(project, dir)
    if not dry_run:
        make_directory(where)  # first: a place that cannot hold the cache is refused before any work
    local = _local_ids(project, [e.image for e in entries])
    plan, notes = plan_save(entries, local, where)
    for note in notes:
        project.say(note)
    if plan.steps:
        execute(plan, dry_run=dry_run, mask=project.mask, performers={"cache": ImageCache(project.runner)})


@task(help={"dir": "cache directory (default: dockyard.ci.cache_dir)", "dry_run": "only show what would be loaded"})
@edge
def load(c, dir="", dry_run=False):  # noqa: A002
    """Load cached service images (docker load), skipping any the engine already has."""
    from ..ci.cache import plan_load
    from ..plan import execute

    project = Project(c)
    project.docker.server_version()
    where, entries = _cache_entries(project, dir)
    local = _local_ids(project, [e.image for e in entries])
    plan, notes = plan_load(entries, local, where)
    for note in notes:
        project.say(note)
    if plan.steps:
        execute(plan, dry_run=dry_run, mask=project.mask, performers={"local": project.runner})


def _collection(c: Any, project: Project) -> Collection:
    """The project's root collection, loaded as Invoke loads it: its tasks module, else dockyard's own."""
    from invoke import FilesystemLoader

    root = project.settings.root
    collection_name = c.config.get("tasks", {}).get("collection_name") or "tasks"
    try:
        module, _ = FilesystemLoader(start=str(root)).load(collection_name)
        return Collection.from_module(module)
    except Exception:  # noqa: BLE001 - an unusual layout: dockyard's own tasks are what CI calls
        import dockyard

        return dockyard.namespace(root)


@task(help={"provider": "circleci or github (default: dockyard.ci.provider)",
            "output": "file to write (default: .circleci/config.yml or .github/workflows/dockyard.yml)",
            "stdout": "print the configuration instead of writing it"})
@edge
def config(c, provider="", output="", stdout=False):
    """Write a CircleCI 2.1 config or a GitHub Actions workflow whose every inv line this project accepts."""
    from pathlib import Path

    from ..ci.pipeline import build_pipeline
    from ..ci.providers import default_output, render_config
    from ..errors import ConfigError

    project = Project(c)
    ci = _ci(project)
    provider = provider or ci.provider
    if provider not in ("circleci", "github"):
        raise ConfigError(f"--provider: expected circleci or github, got {provider!r}")
    pipeline = build_pipeline(project.settings, ci, _collection(c, project), provider)
    text = render_config(project.settings, ci, pipeline)
    if stdout:
        print(text, end="")
        return
    target = Path(output) if output else project.settings.root / default_output(provider)
    if not target.is_absolute():
        target = project.settings.root / target
    write_output(target, text)
    project.say(f"wrote {target} ({provider})")


@task(help={"provider": "github or circleci (default: dockyard.ci.provider)"})
@edge
def policies(c, provider=""):
    """Print the trust policy of the role CI assumes with its OIDC token, next to its permission policy."""
    import json

    from ..ci.pipeline import build_pipeline
    from ..ci.policies import account_of, circleci_trust_policy, github_repository, github_trust_policy, job_refs
    from ..errors import ConfigError

    project = Project(c)
    settings = project.settings
    ci = _ci(project)
    provider = provider or ci.provider
    if provider not in ("circleci", "github"):
        raise ConfigError(f"--provider: expected circleci or github, got {provider!r}")
    if ci.aws_auth != "oidc":
        raise ConfigError(f"dockyard.ci.aws_auth is {ci.aws_auth!r}: no role is assumed, so there is no trust "
                          "policy; set it to oidc")
    account = account_of(ci.aws_role_arn)
    pipeline = build_pipeline(settings, ci, _collection(c, project), provider)
    refs = job_refs(pipeline, ci.staging_branch, ci.release_tag_pattern)
    if not refs:
        raise ConfigError("no job of the pipeline needs AWS (no eb/ecs environment deployed, no ECR registry): "
                          "there is no role to trust")
    if provider == "github":
        repository = github_repository(ci.github_repository, project.git.remote_url(settings.git_remote))
        trust = github_trust_policy(account, repository, refs)
    else:
        trust = circleci_trust_policy(account, ci.circleci_org_id, ci.circleci_project_id)
    document: dict[str, Any] = {"role": ci.aws_role_arn, "provider": provider, "trust_policy": trust}
    environments = {e for job in (pipeline.staging, pipeline.release) if job for e in job.environments}
    if any(settings.environments[e].target == "eb" for e in environments):
        from ..eb.policies import policies as eb_policies

        document["permission_policy"] = eb_policies(settings, settings.eb, account=account)["ci_user"]
    project.say(json.dumps(document, indent=2))


def attach(ns: Collection, environments: Mapping[str, Mapping[str, Any]]) -> None:
    ci = Collection("ci", test, config, policies)
    ci.add_collection(Collection("cache", save, load))
    ns.add_collection(ci)
