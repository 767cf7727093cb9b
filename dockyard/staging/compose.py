"""What a staging host runs, read from the environment's compose file through the one deploy model.

The file is read as every deploy reads it (:func:`dockyard.core.compose.deploy_compose`, ``DOCKYARD_IMAGE`` pinned
to the version's image) and converted by :func:`dockyard.containers.container_definitions`, as for EB v2 and ECS;
this module only says what the converted services become on a Docker host:

- the app service (``environments.<env>.app_service``) runs as ``<prefix>-app-<version>`` behind the proxy;
- the other services sharing the release image (workers, schedulers) run as ``<prefix>-<service>-<version>`` and
  are swapped with the app;
- the services with an image of their own (databases, caches) are accessories, started once and kept across
  deploys; ``dockyard.ssh.accessories`` wins over a compose service of the same name, and
  ``dockyard.ssh.skip_services`` names services staging does not run at all;
- every named volume is a Docker volume ``<prefix>-<volume>`` on the host, kept across deploys and rollbacks.

Without a compose file the app runs alone, with the image's ENTRYPOINT and CMD (what staging always did).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..compose_model import UnsupportedComposeKey
from ..errors import ConfigError
from .model import Accessory, ComposeServices, RunSpec, StagingTarget

#: Names a worker service cannot take: its containers would be mistaken for the app's or the proxy's.
RESERVED_SERVICE_NAMES = ("app", "proxy")


def compose_services(settings: Any, env: Any, target: StagingTarget, image: str) -> ComposeServices:
    """The services of ``env``'s compose file as staging runs them with the release ``image``."""
    if env.compose is None:
        return ComposeServices(app=RunSpec(env.app_service))
    from ..containers import container_definitions
    from ..core.compose import deploy_compose

    compose = deploy_compose(settings, env, image, needed_by="staging runs the services of that compose file")
    model = dict(compose.model)
    skipped = set(target.skip_services)
    if env.app_service in skipped:
        raise ConfigError(f"dockyard.ssh.skip_services: {env.app_service!r} is the app service "
                          f"(environments.{env.name}.app_service); it cannot be skipped")
    model["services"] = {k: v for k, v in model["services"].items() if k not in skipped}
    released = compose.release_services()
    services = model["services"]
    for name in released[1:]:
        if name in RESERVED_SERVICE_NAMES:
            raise ConfigError(f"{env.compose}: service {name!r} shares the release image, so it would run as "
                              f"<prefix>-{name}-<version>, the name of staging's own containers; rename it")
    volumes = sorted({source for name in services for source in _named_volumes(name, services[name])})
    _refuse_project_binds(services, compose.compose_dir, settings.root)
    converted = container_definitions(
        model, images={name: image for name in released}, project_root=settings.root,
        compose_dir=compose.compose_dir, named_volumes={v: "shared" for v in volumes},
        volumes_setting="dockyard.ssh.volumes")
    task_volumes = {v["name"]: v for v in converted.volumes}
    by_name = {c["name"]: c for c in converted.containers}
    notes = []
    specs = {}
    for name in released:
        specs[name] = _run_spec(by_name[name], task_volumes, name in converted.env_files)
        if services[name].get("ports"):
            notes.append(f"compose service {name!r}: ports not published (the staging proxy fronts the app; "
                         "workers publish nothing)")
    accessories = []
    configured = {a.name for a in target.accessories}
    for name in sorted(set(by_name) - set(released)):
        if name in configured:
            notes.append(f"compose service {name!r}: dockyard.ssh.accessories.{name} is used instead")
            continue
        accessories.append(_accessory(by_name[name], task_volumes, name in converted.env_files))
        if services[name].get("ports"):
            notes.append(f"compose service {name!r}: ports not published (reach it by its name on the app network, "
                         f"or publish one in dockyard.ssh.accessories.{name})")
    return ComposeServices(app=specs[env.app_service], workers=tuple(specs[n] for n in released[1:]),
                           accessories=tuple(accessories), volumes=tuple(volumes), notes=tuple(notes))


def _named_volumes(service_name: str, service: Mapping[str, Any]) -> list[str]:
    from ..containers import parse_volume

    return [v.source for v in (parse_volume(spec, service_name) for spec in service.get("volumes") or [])
            if v.kind == "volume"]


def _refuse_project_binds(services: Mapping[str, Any], compose_dir: Path, project_root: Path) -> None:
    """A bind mount of a project path mounts a file of the laptop, which a staging host does not have."""
    from ..containers import inside_project, parse_volume

    for name, service in services.items():
        for spec in service.get("volumes") or []:
            volume = parse_volume(spec, name)
            if volume.kind == "bind" and inside_project(volume.source, compose_dir, project_root):
                shown = os.path.relpath((compose_dir / volume.source).resolve(), project_root.resolve())
                raise UnsupportedComposeKey(name, "volumes", f"mounts {shown} from the project, which "
                                            "staging does not copy to its hosts; bake it into the image or use a "
                                            "named volume")


def _mounts(container: Mapping[str, Any], task_volumes: Mapping[str, Any]) -> tuple[str, ...]:
    """``docker --volume`` values: ``name:/target`` for a named volume, ``/host:/target`` for a host path."""
    out = []
    for mount in container.get("mountPoints") or []:
        volume = task_volumes[mount["sourceVolume"]]
        suffix = ":ro" if mount.get("readOnly") else ""
        if "dockerVolumeConfiguration" in volume:
            out.append(f"{volume['name']}:{mount['containerPath']}{suffix}")
        elif "host" in volume:
            out.append(f"{volume['host']['sourcePath']}:{mount['containerPath']}{suffix}")
        else:  # an anonymous volume: new with each container, as under Compose
            out.append(f"{mount['containerPath']}{suffix}")
    return tuple(out)


def _environment(container: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((e["name"], e["value"]) for e in container.get("environment") or [])


def _run_spec(container: Mapping[str, Any], task_volumes: Mapping[str, Any], env_file: bool) -> RunSpec:
    entrypoint = container.get("entryPoint")
    return RunSpec(
        service=container["name"], command=tuple(container.get("command") or ()),
        entrypoint=None if entrypoint is None else tuple(entrypoint), environment=_environment(container),
        env_file=env_file, working_dir=str(container.get("workingDirectory") or ""),
        user=str(container.get("user") or ""), volumes=_mounts(container, task_volumes))


def _accessory(container: Mapping[str, Any], task_volumes: Mapping[str, Any], env_file: bool) -> Accessory:
    entrypoint = container.get("entryPoint")
    return Accessory(name=container["name"], image=container["image"], volumes=_mounts(container, task_volumes),
                     env=dict(_environment(container)), command=tuple(container.get("command") or ()),
                     entrypoint=None if entrypoint is None else tuple(entrypoint), env_file=env_file,
                     source="compose")
