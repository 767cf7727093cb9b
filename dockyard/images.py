"""What an environment's image is called, how it is labelled, and how it is built (pure functions)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .clients.git import Revision
from .config import Environment, Settings
from .core.compose import image_reference
from .errors import ConfigError

LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_VERSION = "org.opencontainers.image.version"
LABEL_CREATED = "org.opencontainers.image.created"
LABEL_SOURCE = "org.opencontainers.image.source"
LABEL_TITLE = "org.opencontainers.image.title"
LABEL_APP = "dev.dockyard.app"
LABEL_ENV = "dev.dockyard.environment"
LABEL_DIRTY = "dev.dockyard.dirty"


def env_ref(settings: Settings, env: Environment) -> str:
    """The moving tag of an environment's image: ``<repository>:<env>``."""
    return image_reference(settings.repository, env.name)


def commit_tag(settings: Settings, env: Environment, revision: Revision) -> str:
    """The immutable tag: ``<short-sha>`` for the released environment, ``<env>-<short-sha>`` for others.

    Two environments built from one commit differ (dev has autoreload, prod gunicorn), so only the released one
    may own the bare SHA tag.
    """
    if env.name == settings.release_env:
        return revision.label
    return f"{env.name}-{revision.label}"


def image_tags(settings: Settings, env: Environment, revision: Revision) -> tuple[str, ...]:
    return (env_ref(settings, env), image_reference(settings.repository, commit_tag(settings, env, revision)))


def oci_labels(
    settings: Settings, env: Environment, revision: Revision, *, version: str = "", source: str = ""
) -> dict[str, str]:
    labels = {
        LABEL_REVISION: revision.sha,
        LABEL_VERSION: version or revision.label,
        # The commit's time, not now: an unchanged commit then builds a byte-identical image config.
        LABEL_CREATED: revision.committed,
        LABEL_SOURCE: source,
        LABEL_TITLE: settings.app,
        LABEL_APP: settings.app,
        LABEL_ENV: env.name,
    }
    if revision.dirty:
        labels[LABEL_DIRTY] = "true"
    return {k: v for k, v in labels.items() if v}


@dataclass(frozen=True)
class BuildSpec:
    """Where and how the app service's image is built, as the compose file says."""

    context: Path
    dockerfile: Path | None
    args: Mapping[str, str] = field(default_factory=dict)
    target: str = ""


def build_spec(settings: Settings, env: Environment, compose_model: Mapping[str, Any]) -> BuildSpec:
    """Read the app service's ``build:`` from a resolved compose model (``docker compose config``)."""
    services = compose_model.get("services") or {}
    where = f"dockyard.environments.{env.name}"
    if env.app_service not in services:
        raise ConfigError(
            f"{where}.app_service: service {env.app_service!r} is not in {env.compose} "
            f"(services: {', '.join(sorted(services)) or 'none'})"
        )
    build = services[env.app_service].get("build")
    if not build:
        raise ConfigError(f"{env.compose}: service {env.app_service!r} has no build section; add one to build it")
    if isinstance(build, str):
        build = {"context": build}
    context = Path(build.get("context") or ".")
    if not context.is_absolute() and env.compose is not None:
        context = (env.compose.parent / context).resolve()
    dockerfile = build.get("dockerfile")
    dockerfile_path = None
    if dockerfile:
        dockerfile_path = Path(dockerfile) if Path(dockerfile).is_absolute() else context / dockerfile
    args = {str(k): "" if v is None else str(v) for k, v in (build.get("args") or {}).items()}
    return BuildSpec(context=context, dockerfile=dockerfile_path, args=args, target=build.get("target") or "")


def tags_in(references: Iterable[str], repository: str) -> list[str]:
    """The tags of ``repository`` among image references (``127.0.0.1:5000/shop:dev`` -> ``dev``); a registry port's
    colon is part of the repository, so the tag is what follows the last colon after it."""
    prefix = repository + ":"
    return sorted(ref[len(prefix):] for ref in references if ref.startswith(prefix) and "/" not in ref[len(prefix):])


def declared_args(dockerfile: str) -> set[str]:
    """Names of the ``ARG`` instructions in a Dockerfile's text."""
    names = set()
    for line in dockerfile.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0].upper() == "ARG":
            names.add(parts[1].split("=", 1)[0].strip())
    return names


def build_args_for(spec: BuildSpec, configured: Mapping[str, str], metadata: Mapping[str, str]) -> dict[str, str]:
    """The compose file's args, plus configured and metadata args the Dockerfile declares (no unused-arg noise)."""
    dockerfile = spec.dockerfile or spec.context / "Dockerfile"
    declared = declared_args(dockerfile.read_text()) if dockerfile.is_file() else set()
    args = {k: v for k, v in {**metadata, **configured}.items() if k in declared}
    args.update(spec.args)
    return args
