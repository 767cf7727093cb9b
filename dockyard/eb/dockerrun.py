"""Dockerrun.aws.json v1/v2/v3, the pinned compose file, and dockercfg files: pure renderers.

- v1 (Docker platform, one container): ``Image.Name`` pinned to the release tag, ``Ports``, ``Volumes``,
  ``Logging`` and, for a private registry, ``Authentication`` (``Bucket``/``Key`` of a legacy ``.dockercfg``).
- v2 (ECS-based multi-container platform): ``containerDefinitions`` from the compose file
  (:mod:`dockyard.containers`), ``volumes``, and ``authentication`` (``bucket``/``key``).
- compose (Docker on Amazon Linux 2/2023): ``docker-compose.yml`` with images pinned, bind mounts pointing into
  the bundle and ``env_file: .env`` (the platform writes the environment properties there), plus a v3
  ``Dockerrun.aws.json`` holding only ``Authentication`` when a dockercfg is used.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..containers import (
    ContainerDefinitions,
    UnsupportedComposeKey,
    container_definitions,
    parse_volume,
    project_path,
)


@dataclass(frozen=True)
class DockercfgLocation:
    bucket: str
    key: str


def dumps(document: Any) -> str:
    """Stable JSON (sorted keys, two-space indent, trailing newline): equal inputs give equal bytes."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def dockerrun_v1(
    image: str,
    *,
    container_port: int,
    auth: DockercfgLocation | None = None,
    volumes: Mapping[str, str] = {},
    logging: str = "/var/log/app",
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "AWSEBDockerrunVersion": "1",
        "Image": {"Name": image, "Update": "true"},
        "Ports": [{"ContainerPort": str(container_port), "HostPort": "80"}],
        "Volumes": [{"HostDirectory": host, "ContainerDirectory": container} for host, container in
                    sorted(volumes.items())],
        "Logging": logging,
    }
    if auth is not None:
        document["Authentication"] = {"Bucket": auth.bucket, "Key": auth.key}
    return document


def dockerrun_v2(definitions: ContainerDefinitions, *, auth: DockercfgLocation | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "AWSEBDockerrunVersion": 2,
        "volumes": list(definitions.volumes),
        "containerDefinitions": list(definitions.containers),
    }
    if auth is not None:
        document["authentication"] = {"bucket": auth.bucket, "key": auth.key}
    return document


def dockerrun_v3(auth: DockercfgLocation) -> dict[str, Any]:
    return {"AWSEBDockerrunVersion": "3", "Authentication": {"bucket": auth.bucket, "key": auth.key}}


def pinned_compose(
    compose_model: Mapping[str, Any],
    *,
    images: Mapping[str, str],
    project_root: Path,
    compose_dir: Path,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """The compose model for the bundle, and the project files it mounts (bundle path -> file).

    Images are pinned, ``build`` sections go, bind-mount sources become ``./<path in the project>`` and every
    ``env_file`` becomes ``.env``, the file the platform writes from the environment properties.
    """
    services: dict[str, Any] = {}
    shipped: dict[str, Path] = {}
    for name, raw in sorted((compose_model.get("services") or {}).items()):
        service = dict(raw or {})
        if name in images:
            service["image"] = images[name]
            service.pop("build", None)
        elif service.get("build"):
            raise UnsupportedComposeKey(name, "build", "builds its image on the instance; pin a released image")
        if service.get("env_file"):
            service["env_file"] = [".env"]
        mounts = []
        for spec in service.get("volumes") or []:
            volume = parse_volume(spec, name)
            if volume.kind == "bind":
                inside = project_path(volume.source, compose_dir, project_root, name)
                shipped[inside] = project_root / inside
                mounts.append(f"./{inside}:{volume.target}" + (":ro" if volume.read_only else ""))
            else:
                mounts.append(spec)
        if mounts:
            service["volumes"] = mounts
        services[name] = service
    model = {k: v for k, v in compose_model.items() if k not in ("services", "version", "name")}
    model["services"] = services
    return model, shipped


def compose_yaml(model: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(model), sort_keys=True, default_flow_style=False)


def dockercfg(registry: str, username: str, password: str, *, fmt: str) -> str:
    """A registry auth file: ``legacy`` (``{"host": {"auth", "email"}}``, Docker platform v1) or ``auths``."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    if fmt == "legacy":
        return dumps({registry: {"auth": token, "email": ""}})
    return dumps({"auths": {registry: {"auth": token}}})


__all__ = [
    "DockercfgLocation", "container_definitions", "compose_yaml", "dockercfg", "dockerrun_v1", "dockerrun_v2",
    "dockerrun_v3", "dumps", "pinned_compose",
]
