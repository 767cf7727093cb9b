"""Image references and the variables a compose file is read with, once for the local stack and every deploy.

A compose file may interpolate ``DOCKYARD_IMAGE``, ``DOCKYARD_ENV``, ``DOCKYARD_PORT`` and the configured build
args. Locally they are the environment's moving tag and its configured port (:func:`stack_variables`). A deploy
(the EB bundle, ``ecs.render``, the ECS task definition, a staging host) reads the same file with
:func:`deploy_variables`: ``DOCKYARD_IMAGE`` pinned to the release's image reference and ``DOCKYARD_PORT`` the
port the platform routes to (80), never the laptop's. :func:`deploy_compose` is the one way a deploy reads it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError

#: What a deployed stack publishes: the load balancer / instance port, whatever the local stack uses.
DEPLOY_PORT = 80


def image_reference(repository: str, tag: str = "", *, digest: str = "") -> str:
    """``<repository>:<tag>``, or ``<repository>@<digest>`` when the digest (``sha256:...``) is known."""
    if digest:
        return f"{repository}@{digest}"
    if not tag:
        raise ValueError("an image reference needs a tag or a digest")
    return f"{repository}:{tag}"


def _base_variables(settings: Any, env: Any) -> dict[str, str]:
    variables = dict(settings.build_args)
    variables["DOCKYARD_ENV"] = env.name
    return variables


def stack_variables(settings: Any, env: Any) -> dict[str, str]:
    """The local stack's variables: the environment's moving tag and its configured host port."""
    variables = _base_variables(settings, env)
    variables["DOCKYARD_IMAGE"] = image_reference(settings.repository, env.name)
    if env.port:
        variables["DOCKYARD_PORT"] = str(env.port)
    return variables


def deploy_variables(settings: Any, env: Any, image: str, port: int = DEPLOY_PORT) -> dict[str, str]:
    """A deploy's variables: ``DOCKYARD_IMAGE`` is ``image`` (the pinned release), ``DOCKYARD_PORT`` the target's
    published port (80 unless the target's settings say otherwise)."""
    variables = _base_variables(settings, env)
    variables["DOCKYARD_IMAGE"] = image
    variables["DOCKYARD_PORT"] = str(port)
    return variables


@dataclass(frozen=True)
class DeployCompose:
    """An environment's compose file as a deploy reads it: the interpolated model and the pinned images."""

    model: Mapping[str, Any]
    images: Mapping[str, str]  # service -> pinned image reference (the app service gets the release)
    compose_dir: Path
    variables: Mapping[str, str] = field(default_factory=dict)
    app_service: str = ""

    def release_services(self) -> tuple[str, ...]:
        """The app service and every other service that runs the release image: built from the same build
        section as the app, or whose ``image`` is the pinned release (``image: ${DOCKYARD_IMAGE}``)."""
        return release_services(self.model, self.app_service, self.images.get(self.app_service, ""))


def release_services(model: Mapping[str, Any], app_service: str, image: str) -> tuple[str, ...]:
    """``app_service`` first, then (sorted) the services sharing its release image (see
    :meth:`DeployCompose.release_services`): workers and schedulers, never a service with an image of its own."""
    services = model.get("services") or {}
    app_build = _build_key((services.get(app_service) or {}).get("build"))
    others = []
    for name in sorted(services):
        service = services[name] or {}
        if name == app_service:
            continue
        same_build = app_build is not None and _build_key(service.get("build")) == app_build
        if same_build or (image and service.get("image") == image):
            others.append(name)
    return (app_service, *others)


def _build_key(build: Any) -> tuple[str, str] | None:
    if not build:
        return None
    if isinstance(build, str):
        return (build, "Dockerfile")
    return (str(build.get("context") or "."), str(build.get("dockerfile") or "Dockerfile"))


def deploy_compose(settings: Any, env: Any, image: str, *, needed_by: str,
                   port: int = DEPLOY_PORT) -> DeployCompose:
    """Read ``env.compose`` for a deploy of ``image``; ``needed_by`` says who needs it, for the missing-file error.

    ``port`` is what the target publishes on (its settings): the value of ``DOCKYARD_PORT``, never the laptop's.
    """
    from ..containers import read_compose_file

    if env.compose is None:
        raise ConfigError(f"dockyard.environments.{env.name}.compose: not set; {needed_by}")
    variables = deploy_variables(settings, env, image, port)
    model = read_compose_file(env.compose, variables)
    if env.app_service not in model["services"]:
        raise ConfigError(f"dockyard.environments.{env.name}.app_service: {env.app_service!r} is not a service of "
                          f"{env.compose}")
    return DeployCompose(model=model, images={env.app_service: image}, compose_dir=env.compose.parent,
                         variables=variables, app_service=env.app_service)


def release_image(settings: Any, release: Any) -> str:
    """The pinned image reference of a release (:class:`~dockyard.core.versions.Release`): ``<repository>:X.Y.Z``."""
    return image_reference(settings.repository, release.image_tag)
