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

from ..compose_model import escape_dollars, normalize
from ..containers import (
    ContainerDefinitions,
    UnsupportedComposeKey,
    container_definitions,
    inside_project,
    parse_volume,
    project_path,
    shipped_files,
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

    Images are pinned, ``build`` sections go, bind-mount sources inside the project become ``./<path in the
    project>`` (a directory ships with every file under it) and every ``env_file`` becomes ``.env``, the file the
    platform writes from the environment properties. What Compose's resolved model spells out (the default network,
    the project-prefixed volume names, long-syntax ports) is written back the short way, so the file reads like the
    project's own.
    """
    model = normalize(compose_model)
    project = str(model.get("name") or "")
    services: dict[str, Any] = {}
    shipped: dict[str, Path] = {}
    for name, raw in sorted((model.get("services") or {}).items()):
        service = dict(raw or {})
        if name in images:
            service["image"] = images[name]
            service.pop("build", None)
        elif service.get("build"):
            raise UnsupportedComposeKey(name, "build", "builds its image on the instance; pin a released image")
        if service.get("env_file"):
            service["env_file"] = [".env"]
        if service.get("networks") == {"default": None}:
            service.pop("networks")
        if service.get("ports"):
            # A host IP is the laptop's (127.0.0.1:8080:80): on the instance the platform's proxy must reach the port.
            service["ports"] = [_short_port({k: v for k, v in p.items() if k != "host_ip"} if isinstance(p, Mapping)
                                            else p) for p in service["ports"]]
        mounts = []
        for spec in service.get("volumes") or []:
            volume = parse_volume(spec, name)
            suffix = ":ro" if volume.read_only else ""
            if volume.kind == "bind" and inside_project(volume.source, compose_dir, project_root):
                inside = project_path(volume.source, compose_dir, project_root, name)
                shipped.update(shipped_files(inside, project_root))
                mounts.append(f"./{inside}:{volume.target}{suffix}")
            elif volume.kind in ("bind", "volume") and set(spec) <= _SHORT_VOLUME_KEYS:
                mounts.append(f"{volume.source}:{volume.target}{suffix}")
            elif volume.kind == "anonymous" and set(spec) <= _SHORT_VOLUME_KEYS:
                mounts.append(volume.target)
            else:
                mounts.append(spec)
        if mounts:
            service["volumes"] = mounts
        services[name] = service
    out = {k: v for k, v in model.items() if k not in ("services", "version", "name")}
    networks = {k: v for k, v in (out.pop("networks", None) or {}).items()
                if not (k == "default" and set(v or {}) <= {"name", "ipam"} and not (v or {}).get("ipam")
                        and (v or {}).get("name", f"{project}_default") == f"{project}_default")}
    if networks:
        out["networks"] = networks
    if out.get("volumes"):
        out["volumes"] = {k: ({f: x for f, x in (v or {}).items() if not (f == "name" and x == f"{project}_{k}")}
                              or None) for k, v in out["volumes"].items()}
    out["services"] = services
    return escape_dollars(out), shipped


_SHORT_VOLUME_KEYS = {"type", "source", "target", "read_only", "bind", "volume"}


def _short_port(port: Any) -> Any:
    """A long-syntax port the short way (``"127.0.0.1:8080:80/udp"``) when nothing else is set."""
    if not isinstance(port, Mapping) or set(port) - {"mode", "host_ip", "target", "published", "protocol"} or \
            port.get("mode", "ingress") != "ingress":
        return port
    text = str(port["target"])
    if port.get("published"):
        text = f"{port['published']}:{text}"
        if port.get("host_ip"):
            text = f"{port['host_ip']}:{text}"
    return text + (f"/{port['protocol']}" if port.get("protocol", "tcp") != "tcp" else "")


def compose_yaml(model: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(model), sort_keys=True, default_flow_style=False)


def dockercfg(registry: str, username: str, password: str, *, fmt: str) -> str:
    """A registry auth file: ``auths`` (``{"auths": {"host": {"auth"}}}``, what ``docker login`` writes and the
    AL2/AL2023 platforms read) or ``legacy`` (``{"host": {"auth", "email"}}``, the retired Amazon Linux AMI's)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    if fmt == "legacy":
        return dumps({registry: {"auth": token, "email": ""}})
    return dumps({"auths": {registry: {"auth": token}}})


__all__ = [
    "DockercfgLocation", "container_definitions", "compose_yaml", "dockercfg", "dockerrun_v1", "dockerrun_v2",
    "dockerrun_v3", "dumps", "pinned_compose",
]
