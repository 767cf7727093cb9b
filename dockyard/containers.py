"""Compose services as ECS-style ``containerDefinitions`` (Dockerrun.aws.json v2, ECS task definitions).

The production compose file is the single source of truth, read through Compose's own resolved model
(:mod:`dockyard.compose_model`). :func:`container_definitions` maps every key the ECS ``ContainerDefinition`` can
express (:data:`SUPPORTED_KEYS`), ignores those with no meaning at deploy time (:data:`IGNORED_KEYS`), and refuses
the rest with :class:`UnsupportedComposeKey`: one line naming the service, the key and what to do. ECS's own limits
are then enforced (:mod:`dockyard.ecs_limits`). Every change of meaning the conversion still makes (a dropped host
IP, ``expose``, ``restart``, a value moved into ECS's range) is listed in :attr:`ContainerDefinitions.changes`, for
``--dry-run``, ``eb.bundle`` and ``ecs.render`` to show.

Files and directories bind-mounted from the project (an nginx config) are shipped with the bundle and mounted from
``<root_prefix>/<path in the project>`` (``/var/app/current`` on Elastic Beanstalk); other host paths are mounted
from the container instance. Named volumes become what the volumes setting decides (:mod:`dockyard.named_volumes`);
one without a decision is refused, never turned into a scratch volume silently.

``env_file`` is accepted but never shipped: its values are secrets and reach the containers as the platform's
environment properties (``inv eb.setenv``); :attr:`ContainerDefinitions.env_files` lists them per service.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from . import ecs_limits
from .compose_model import ChangeOfMeaning, UnsupportedComposeKey, interpolate, normalize, resolved_model
from .named_volumes import parse_decision

__all__ = ["ChangeOfMeaning", "ContainerDefinitions", "UnsupportedComposeKey", "container_definitions", "interpolate",
           "read_compose_file"]

#: Compose service keys the conversion maps to container-definition fields.
SUPPORTED_KEYS = frozenset({
    "image", "build", "command", "entrypoint", "environment", "env_file", "ports", "expose", "volumes", "links",
    "depends_on", "mem_limit", "mem_reservation", "working_dir", "user", "hostname", "privileged", "read_only",
    "extra_hosts", "labels", "healthcheck", "stop_grace_period", "logging", "ulimits", "tty", "stdin_open",
    "restart", "deploy", "cpus", "cpu_shares", "init", "cap_add", "cap_drop", "sysctls", "volumes_from", "tmpfs",
    "shm_size", "devices", "dns", "dns_search", "security_opt", "mem_swappiness", "memswap_limit", "platform",
    "pull_policy", "scale", "networks", "network_mode",
})
#: The tmpfs mount options ECS takes.
TMPFS_OPTIONS = frozenset({
    "defaults", "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async", "dirsync", "remount",
    "mand", "nomand", "atime", "noatime", "diratime", "nodiratime", "bind", "rbind", "unbindable", "runbindable",
    "private", "rprivate", "shared", "rshared", "slave", "rslave", "relatime", "norelatime", "strictatime",
    "nostrictatime", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol",
})
#: Keys with no meaning once deployed: Compose's development features.
IGNORED_KEYS = frozenset({"profiles", "develop"})
#: Keys ECS has no per-container form for, and what to do instead.
REFUSED_KEYS: dict[str, str] = {
    "container_name": "has no ECS meaning (ECS names the containers itself; the service name is the container "
                      "name); remove it",
    "secrets": "mounts files from the machine running Compose; store them in SSM Parameter Store or Secrets "
               "Manager and list the keys in dockyard.ecs.secret_keys (or eb.secret_keys)",
    "configs": "mounts files from the machine running Compose; bake them into the image or bind-mount a project "
               "file (it ships with the bundle)",
    "runtime": "chooses a container runtime, which ECS does not let a task choose; remove it",
    "stop_signal": "has no ECS form (ECS always stops with SIGTERM unless the image says otherwise); set STOPSIGNAL "
                   "in the image's Dockerfile",
    "pid": "is set per task in ECS (pidMode), not per container; remove it",
    "ipc": "is set per task in ECS (ipcMode), not per container; remove it",
    "external_links": "links to containers outside the task, which ECS cannot do; put them in the task or use a "
                      "service address",
    "domainname": "has no ECS form; put the full name in hostname",
}


@dataclass(frozen=True)
class ContainerDefinitions:
    """The converted services: container definitions, task volumes, and the files the bundle must carry."""

    containers: tuple[dict[str, Any], ...]
    volumes: tuple[dict[str, Any], ...]
    shipped: Mapping[str, Path] = field(default_factory=dict)  # path inside the bundle -> file in the project
    env_files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # service -> env files (not shipped)
    changes: tuple[ChangeOfMeaning, ...] = ()  # what now behaves differently than under Compose


# --- reading a compose file ---------------------------------------------------------------------------------------


def read_compose_file(path: Path, variables: Mapping[str, str], *, runner: Any = None,
                      use_compose: bool = True) -> dict[str, Any]:
    """The normalized model of ``path`` with ``variables`` only (not the caller's environment): Compose's own
    (``docker compose config``) when Compose v2 is installed and ``use_compose``, else the documented fallback."""
    resolve = None
    if use_compose:
        from .clients.compose import compose_resolver
        from .runner import Runner

        resolve = compose_resolver(runner or Runner())
    return resolved_model(path, variables, resolve=resolve)


# --- values -------------------------------------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmg]?)b?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")


def mebibytes(value: Any, service: str, key: str) -> int:
    """``512m``/``1g``/``134217728`` -> MiB (at least 1; :mod:`dockyard.ecs_limits` raises memory to ECS's
    minimum and says so)."""
    return max(1, _bytes(value, service, key) // 1024**2)


def seconds(value: Any, service: str, key: str) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    parts = _DURATION.findall(str(value))
    if not parts or "".join(n + u for n, u in parts) != str(value).replace(" ", ""):
        raise UnsupportedComposeKey(service, key, f"has a duration ECS cannot read: {value!r}")
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
    return max(0, int(sum(float(n) * scale[u] for n, u in parts)))


def key_values(value: Any, service: str, key: str) -> dict[str, str]:
    """A compose mapping or ``["K=V"]`` list as a dict of strings."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list):
        items = [tuple(str(v).split("=", 1)) if "=" in str(v) else (str(v), None) for v in value]
    else:
        raise UnsupportedComposeKey(service, key, f"must be a mapping or a list, got {value!r}")
    out: dict[str, str] = {}
    for name, val in items:
        if val is None:
            raise UnsupportedComposeKey(service, f"{key}.{name}", "takes its value from the caller's shell, "
                                        "which a deployed container does not have; give it a value")
        out[str(name)] = "true" if val is True else "false" if val is False else str(val)
    return out


def as_argv(value: Any, service: str, key: str) -> list[str]:
    import shlex

    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list):
        return [str(v) for v in value]
    raise UnsupportedComposeKey(service, key, f"must be a string or a list, got {value!r}")


@dataclass(frozen=True)
class PortSpec:
    container: int
    host: int | None
    protocol: str = "tcp"
    host_ip: str = ""


def parse_port(spec: Any, service: str) -> PortSpec:
    """One port of the normalized model (``{"target": 80, "published": "8080", "host_ip": ...}``); a short-syntax
    string is normalized first."""
    from .compose_model import _ports

    specs = [spec] if isinstance(spec, Mapping) else _ports(spec)
    if len(specs) != 1 or not isinstance(specs[0], Mapping):
        raise UnsupportedComposeKey(service, "ports", f"cannot read port {spec!r}; use host:container[/protocol]")
    port = specs[0]
    if port.get("target") in (None, ""):
        raise UnsupportedComposeKey(service, "ports", "long syntax needs a target")
    published = str(port.get("published") or "")
    if "-" in published:
        raise UnsupportedComposeKey(service, "ports", f"publishes container port {port['target']} on any host port "
                                    f"of {published}, which ECS cannot choose; publish one host port")
    try:
        return PortSpec(int(port["target"]), int(published) if published else None,
                        str(port.get("protocol") or "tcp"), str(port.get("host_ip") or ""))
    except ValueError:
        raise UnsupportedComposeKey(service, "ports", f"cannot read port {spec!r}") from None


@dataclass(frozen=True)
class VolumeSpec:
    kind: str  # bind | volume | anonymous | tmpfs
    source: str  # host path (bind, as written or as Compose resolved it) or volume name
    target: str
    read_only: bool
    size: int | None = None  # tmpfs, bytes


def parse_volume(spec: Any, service: str) -> VolumeSpec:
    from .compose_model import _volume

    volume = _volume(spec)
    kind = str(volume.get("type") or "volume")
    if kind not in ("bind", "volume", "tmpfs"):
        raise UnsupportedComposeKey(service, "volumes", f"volume type {kind!r} has no container-definition form; "
                                    "use a bind mount or a named volume")
    source = str(volume.get("source") or "")
    target = str(volume.get("target") or "")
    if kind == "tmpfs":
        size = (volume.get("tmpfs") or {}).get("size")
        return VolumeSpec("tmpfs", "", target, False, _bytes(size, service, "volumes") if size else None)
    return VolumeSpec(kind if source or kind == "bind" else "anonymous", source, target, bool(volume.get("read_only")))


def project_path(source: str, compose_dir: Path, project_root: Path, service: str) -> str:
    """A bind-mount source as a path inside the project (POSIX), or refused when it points outside."""
    path = (compose_dir / Path(source).expanduser()).resolve()
    try:
        relative = path.relative_to(project_root.resolve())
    except ValueError:
        raise UnsupportedComposeKey(service, "volumes", f"mounts {source}, which is outside the project and cannot "
                                    "ship in the bundle") from None
    if not path.exists():
        raise UnsupportedComposeKey(service, "volumes", f"mounts {source}, which does not exist; create it or "
                                    "remove the mount")
    return PurePosixPath(*relative.parts).as_posix()


def inside_project(source: str, compose_dir: Path, project_root: Path) -> bool:
    path = (compose_dir / Path(source).expanduser()).resolve()
    return path == project_root.resolve() or project_root.resolve() in path.parents


def shipped_files(inside: str, project_root: Path) -> dict[str, Path]:
    """The files a bundle carries for a project path: the file itself, or every file under a directory."""
    path = project_root / inside
    if path.is_dir():
        return {PurePosixPath(*f.relative_to(project_root).parts).as_posix(): f
                for f in sorted(path.rglob("*")) if f.is_file()}
    return {inside: path}


def volume_name(text: str) -> str:
    """A task-volume name from a path: letters, digits, '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "volume"


def _bytes(value: Any, service: str, key: str) -> int:
    match = _SIZE.match(str(value))
    if not match:
        raise UnsupportedComposeKey(service, key, f"has a size ECS cannot read: {value!r}")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit])


# --- the conversion -------------------------------------------------------------------------------------------------


def container_definitions(
    compose_model: Mapping[str, Any],
    *,
    images: Mapping[str, str] = {},
    project_root: Path,
    compose_dir: Path,
    root_prefix: str = "/var/app/current",
    default_memory: int = 256,
    named_volumes: Mapping[str, Any] = {},
    volumes_setting: str = "dockyard.eb.volumes",
) -> ContainerDefinitions:
    """Convert a compose model (:func:`read_compose_file`; short syntaxes are normalized first) to container
    definitions that ECS registers.

    ``images`` pins services to images (``{"web": "registry/app:1.2.3"}``); a service with a ``build`` section
    must be pinned. Every container is ``essential`` unless another waits for it to exit; one without a memory
    setting gets ``default_memory`` MiB. ``named_volumes`` decides each named volume (see
    :mod:`dockyard.named_volumes`); ``volumes_setting`` is the setting's name in messages.
    """
    model = normalize(compose_model)
    services = model.get("services") or {}
    decisions = {k: parse_decision(v, f"{volumes_setting}.{k}") for k, v in named_volumes.items()}
    containers: list[dict[str, Any]] = []
    volumes: dict[str, dict[str, Any]] = {}
    shipped: dict[str, Path] = {}
    env_files: dict[str, tuple[str, ...]] = {}
    changes: list[ChangeOfMeaning] = []
    for name in sorted(services):
        service = services[name] or {}
        _refuse_unknown(name, service)
        container = _container(name, service, images, default_memory, changes)
        mounts = []
        for n, spec in enumerate(service.get("volumes") or []):
            volume = parse_volume(spec, name)
            if volume.kind == "tmpfs":
                _add_tmpfs(container, volume.target, volume.size, name, changes)
                continue
            if volume.kind == "bind":
                if inside_project(volume.source, compose_dir, project_root):
                    inside = project_path(volume.source, compose_dir, project_root, name)
                    vol_name = volume_name(inside)
                    volumes[vol_name] = {"name": vol_name,
                                         "host": {"sourcePath": f"{root_prefix.rstrip('/')}/{inside}"}}
                    shipped.update(shipped_files(inside, project_root))
                else:
                    # the instance's path: normalized, not resolved against this machine's symlinks
                    host = os.path.normpath(compose_dir / Path(volume.source).expanduser())
                    vol_name = volume_name(host)
                    volumes[vol_name] = {"name": vol_name, "host": {"sourcePath": host}}
                    changes.append(ChangeOfMeaning(name, "volumes", f"{volume.source} is outside the project, so it "
                                                   "is not shipped: it is mounted from the container instance, "
                                                   "where it must exist"))
            elif volume.kind == "volume":
                decision = decisions.get(volume.source)
                if decision is None:
                    raise UnsupportedComposeKey(name, f"volumes.{volume.source}", f"is a named volume and nothing "
                                                f"decides what it becomes on ECS; set {volumes_setting}."
                                                f"{volume.source} to scratch (emptied on every deploy), shared (a "
                                                "Docker volume kept on the instance), a host path or {efs: fs-...}")
                vol_name = volume_name(volume.source)
                volumes[vol_name] = decision.task_volume(vol_name)
            else:
                vol_name = f"{name}-anonymous-{n}"
                volumes.setdefault(vol_name, {"name": vol_name})
            mounts.append({"sourceVolume": vol_name, "containerPath": volume.target, "readOnly": volume.read_only})
        if mounts:
            container["mountPoints"] = mounts
        if service.get("env_file"):
            env_files[name] = tuple(str(f["path"] if isinstance(f, Mapping) else f) for f in service["env_file"])
        containers.append(container)
    _link_dependencies(containers, changes)
    limited, adjusted = ecs_limits.enforce(containers)
    return ContainerDefinitions(tuple(limited), tuple(volumes[k] for k in sorted(volumes)), shipped, env_files,
                                tuple(changes + adjusted))


def _link_dependencies(containers: list[dict[str, Any]], changes: list[ChangeOfMeaning]) -> None:
    """Compose's network lets every service resolve every other by name; ECS's bridge mode only resolves links.

    A running dependency is linked (Compose guarantees depends_on has no cycle, as links need); the peers a container
    still cannot resolve are said. A job others wait for to exit is never linked: Docker cannot link to a stopped
    container.
    """
    if len(containers) < 2:
        return
    for container in containers:
        linked = {str(link).split(":")[0] for link in container.get("links") or []}
        for dep in container.get("dependsOn") or []:
            if dep["condition"] in ("START", "HEALTHY") and dep["containerName"] not in linked:
                container.setdefault("links", []).append(dep["containerName"])
                linked.add(dep["containerName"])
        peers = sorted(c["name"] for c in containers if c["name"] != container["name"] and c["name"] not in linked)
        if peers:
            changes.append(ChangeOfMeaning(container["name"], "links", f"cannot resolve {', '.join(peers)} by name "
                                           "on ECS (bridge mode resolves only links; Compose's network resolved "
                                           "every service): add depends_on or links if it connects to them"))


def _refuse_unknown(name: str, service: Mapping[str, Any]) -> None:
    for key in sorted(service):
        if key in SUPPORTED_KEYS or key in IGNORED_KEYS:
            continue
        raise UnsupportedComposeKey(name, key, REFUSED_KEYS.get(key, ""))
    networks = service.get("networks") or {}
    if isinstance(networks, Mapping) and (set(networks) - {"default"} or any(networks.values())):
        raise UnsupportedComposeKey(name, "networks", "joins networks beyond the default one, and ECS puts every "
                                    "container of a task on one network; remove networks (the services then share "
                                    "the default one)")
    mode = service.get("network_mode")
    if mode not in (None, "bridge", "default"):
        raise UnsupportedComposeKey(name, "network_mode", f"{mode!r} is set per task in ECS (networkMode), not per "
                                    "container; remove it")
    if int(service.get("scale", 1) or 1) != 1:
        raise UnsupportedComposeKey(name, "scale", "runs several copies, which is the ECS service's desired count; "
                                    "remove it and set the service's desired count")


def _container(name: str, service: Mapping[str, Any], images: Mapping[str, str], default_memory: int,
               changes: list[ChangeOfMeaning]) -> dict:
    image = images.get(name) or service.get("image")
    if not image:
        raise UnsupportedComposeKey(name, "build", "builds an image, which a deployment cannot do; give it an "
                                    "image or pin one")
    if service.get("build") and name not in images:
        raise UnsupportedComposeKey(name, "build", "builds its image on the host; dockyard pins released images "
                                    "only to services listed in images")
    out: dict[str, Any] = {"name": name, "image": str(image), "essential": True}
    deploy = _deploy(name, service.get("deploy") or {})
    limits = deploy.get("resources", {}).get("limits") or {}
    reservations = deploy.get("resources", {}).get("reservations") or {}
    if "mem_limit" in service or "memory" in limits:
        out["memory"] = mebibytes(service.get("mem_limit", limits.get("memory")), name, "mem_limit")
    if "mem_reservation" in service or "memory" in reservations:
        out["memoryReservation"] = mebibytes(service.get("mem_reservation", reservations.get("memory")), name,
                                             "mem_reservation")
    if "memory" not in out and "memoryReservation" not in out:
        out["memory"] = default_memory
    _cpu(name, service, limits, reservations, out, changes)
    if "platform" in service:
        changes.append(ChangeOfMeaning(name, "platform", f"{service['platform']} is not part of a container "
                                       "definition: ECS pulls the image for the instance's architecture"))
    if "pull_policy" in service:
        changes.append(ChangeOfMeaning(name, "pull_policy", f"{service['pull_policy']} dropped: the ECS agent's "
                                       "ECS_IMAGE_PULL_BEHAVIOR decides when images are pulled"))
    _port_mappings(name, service, out, changes)
    if "links" in service:
        out["links"] = [str(link) for link in service["links"]]
    if "volumes_from" in service:
        out["volumesFrom"] = []
        for source in service["volumes_from"]:
            container, _, mode = str(source).partition(":")
            if container == "container":
                raise UnsupportedComposeKey(name, "volumes_from", f"{source!r} names a container outside the task; "
                                            "name a service of this file")
            out["volumesFrom"].append({"sourceContainer": container, "readOnly": mode == "ro"})
    if "depends_on" in service:
        conditions = {"service_started": "START", "service_healthy": "HEALTHY",
                      "service_completed_successfully": "SUCCESS"}
        out["dependsOn"] = []
        for dep, spec in service["depends_on"].items():
            cond = (spec or {}).get("condition", "service_started")
            if cond not in conditions:
                raise UnsupportedComposeKey(name, f"depends_on.{dep}.condition", f"value {cond!r} is unknown")
            out["dependsOn"].append({"containerName": str(dep), "condition": conditions[cond]})
    if "environment" in service:
        env = key_values(service["environment"], name, "environment")
        out["environment"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    if "command" in service:
        out["command"] = as_argv(service["command"], name, "command")
    if "entrypoint" in service:
        out["entryPoint"] = as_argv(service["entrypoint"], name, "entrypoint")
    simple = {"working_dir": "workingDirectory", "user": "user", "hostname": "hostname"}
    for key, target in simple.items():
        if key in service:
            out[target] = str(service[key])
    flags = {"privileged": "privileged", "read_only": "readonlyRootFilesystem", "tty": "pseudoTerminal",
             "stdin_open": "interactive"}
    for key, target in flags.items():
        if key in service:
            out[target] = bool(service[key])
    if "extra_hosts" in service:
        out["extraHosts"] = []
        for entry in service["extra_hosts"]:
            host, sep, ip = str(entry).partition("=")
            if not sep or not host or not ip:
                raise UnsupportedComposeKey(name, "extra_hosts", f"cannot read {entry!r}; use host=ip")
            out["extraHosts"].append({"hostname": host, "ipAddress": ip.strip("[]")})
        out["extraHosts"].sort(key=lambda h: (h["hostname"], h["ipAddress"]))
    if "labels" in service:
        out["dockerLabels"] = key_values(service["labels"], name, "labels")
    if "stop_grace_period" in service:
        out["stopTimeout"] = seconds(service["stop_grace_period"], name, "stop_grace_period")
    if "healthcheck" in service:
        out["healthCheck"] = _health_check(service["healthcheck"] or {}, name, changes)
    if "logging" in service:
        logging = service["logging"] or {}
        out["logConfiguration"] = {"logDriver": str(logging.get("driver") or "json-file"),
                                   **({"options": {str(k): str(v) for k, v in logging["options"].items()}}
                                      if logging.get("options") else {})}
    if "ulimits" in service:
        out["ulimits"] = []
        for limit, value in sorted((service["ulimits"] or {}).items()):
            soft, hard = (value.get("soft"), value.get("hard")) if isinstance(value, Mapping) else (value, value)
            out["ulimits"].append({"name": str(limit), "softLimit": int(soft), "hardLimit": int(hard)})
    if "sysctls" in service:
        out["systemControls"] = [{"namespace": k, "value": str(v)} for k, v in sorted(service["sysctls"].items())]
    if "dns" in service:
        out["dnsServers"] = [str(d) for d in service["dns"]]
    if "dns_search" in service:
        out["dnsSearchDomains"] = [str(d) for d in service["dns_search"]]
    if "security_opt" in service:
        out["dockerSecurityOptions"] = [_security_option(str(o), name) for o in service["security_opt"]]
    _restart(name, service.get("restart"), deploy.get("restart_policy"), out, changes)
    _linux_parameters(name, service, out, changes)
    return out


def _deploy(name: str, deploy: Mapping[str, Any]) -> Mapping[str, Any]:
    """``deploy``: ``resources`` and ``restart_policy`` have container-definition forms; the rest is the ECS
    service's business."""
    for key, value in deploy.items():
        if key in ("resources", "restart_policy") or not value:
            continue
        raise UnsupportedComposeKey(name, f"deploy.{key}", "is decided by the ECS service (desired count, placement, "
                                    "deployment configuration), not the task definition; remove it")
    resources = deploy.get("resources") or {}
    for kind, values in resources.items():
        for key, value in (values or {}).items():
            if key not in ("memory", "cpus") and value:
                raise UnsupportedComposeKey(name, f"deploy.resources.{kind}.{key}", "has no container-definition "
                                            "form; remove it")
    return deploy


def _cpu(name: str, service: Mapping[str, Any], limits: Mapping[str, Any], reservations: Mapping[str, Any],
         out: dict[str, Any], changes: list[ChangeOfMeaning]) -> None:
    # ECS `cpu` is a reservation and a relative weight (CpuShares), never a hard limit.
    if "cpu_shares" in service:
        out["cpu"] = int(service["cpu_shares"])
    elif "cpus" in reservations:
        out["cpu"] = round(float(reservations["cpus"]) * 1024)
    elif "cpus" in service or "cpus" in limits:
        cpus = float(service.get("cpus", limits.get("cpus")))
        out["cpu"] = round(cpus * 1024)
        changes.append(ChangeOfMeaning(name, "cpus", f"{cpus:g} becomes {out['cpu']} CPU units: a reservation and "
                                       "relative weight on ECS, not a hard limit"))


def _port_mappings(name: str, service: Mapping[str, Any], out: dict[str, Any],
                   changes: list[ChangeOfMeaning]) -> None:
    mappings: list[dict[str, Any]] = []
    seen: set[tuple[int, str]] = set()
    for spec in service.get("ports") or []:
        port = parse_port(spec, name)
        if port.protocol not in ("tcp", "udp"):
            raise UnsupportedComposeKey(name, "ports", f"protocol {port.protocol!r} has no ECS form; use tcp or udp")
        if port.host_ip and port.host_ip not in ("0.0.0.0", "::"):
            changes.append(ChangeOfMeaning(name, "ports", f"host IP {port.host_ip} of {port.host or ''}:"
                                           f"{port.container} dropped: ECS publishes the port on every interface "
                                           "of the instance (restrict it with the security group)"))
        seen.add((port.container, port.protocol))
        mappings.append({"containerPort": port.container, **({"hostPort": port.host} if port.host else {}),
                         **({"protocol": port.protocol} if port.protocol != "tcp" else {})})
    for entry in service.get("expose") or []:
        text, _, protocol = str(entry).partition("/")
        protocol = protocol or "tcp"
        first, _, last = text.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise UnsupportedComposeKey(name, "expose", f"cannot read {entry!r}; use a port or a range (3000-3005)")
        for number in range(int(first), int(last or first) + 1):
            if (number, protocol) in seen:
                continue
            seen.add((number, protocol))
            mappings.append({"containerPort": number, **({"protocol": protocol} if protocol != "tcp" else {})})
        changes.append(ChangeOfMeaning(name, "expose", f"{entry} becomes a port mapping: in bridge mode ECS publishes "
                                       "it on a dynamic host port, where Compose only opened it to other services"))
    if mappings:
        out["portMappings"] = mappings


def _security_option(option: str, name: str) -> str:
    key, _, value = option.replace("=", ":", 1).partition(":")
    if key == "no-new-privileges":
        if value in ("", "true"):
            return "no-new-privileges"
    elif key in ("label", "apparmor", "credentialspec") and value:
        return f"{key}:{value}"
    raise UnsupportedComposeKey(name, "security_opt", f"{option!r} has no ECS form (ECS takes no-new-privileges, "
                                "label:, apparmor: and credentialspec:); remove it")


def _restart(name: str, restart: Any, policy: Any, out: dict[str, Any], changes: list[ChangeOfMeaning]) -> None:
    if policy:
        condition = str(policy.get("condition") or "any")
        restart = {"any": "always", "on-failure": "on-failure", "none": "no"}.get(condition, condition)
        if policy.get("max_attempts"):
            restart += f":{policy['max_attempts']}"
    if restart in (None, "no", ""):
        return
    policy_name, _, attempts = str(restart).partition(":")
    if policy_name not in ("always", "unless-stopped", "on-failure"):
        raise UnsupportedComposeKey(name, "restart", f"{restart!r} is not a restart policy; use no, always, "
                                    "unless-stopped or on-failure")
    out["restartPolicy"] = {"enabled": True, **({"ignoredExitCodes": [0]} if policy_name == "on-failure" else {})}
    changes.append(ChangeOfMeaning(name, "restart", f"{restart} becomes ECS's restartPolicy: ECS restarts the "
                                   "container in place only after it ran 300 s, otherwise the task stops and the "
                                   "service replaces it" + (f"; the limit of {attempts} attempts is dropped"
                                                             if attempts else "")))


def _add_tmpfs(container: dict[str, Any], target: str, size: int | None, name: str,
               changes: list[ChangeOfMeaning], options: list[str] = ()) -> None:
    linux = container.setdefault("linuxParameters", {})
    if size:
        mib = max(1, size // 1024**2)
    else:
        # ECS needs a size; the container's memory is the real bound anyway (tmpfs pages count against it).
        mib = container.get("memory") or container.get("memoryReservation")
        changes.append(ChangeOfMeaning(name, "tmpfs", f"{target} has no size; ECS needs one, so it is {mib} MiB, the "
                                       "container's memory (set size= to choose)"))
    entry: dict[str, Any] = {"containerPath": target, "size": mib}
    if options:
        entry["mountOptions"] = list(options)
    linux.setdefault("tmpfs", []).append(entry)


def _linux_parameters(name: str, service: Mapping[str, Any], out: dict[str, Any],
                      changes: list[ChangeOfMeaning]) -> None:
    linux: dict[str, Any] = out.get("linuxParameters", {})
    if "init" in service:
        linux["initProcessEnabled"] = bool(service["init"])
    capabilities = {}
    for key, target in (("cap_add", "add"), ("cap_drop", "drop")):
        if service.get(key):
            capabilities[target] = [str(c).upper().removeprefix("CAP_") for c in service[key]]
    if capabilities:
        linux["capabilities"] = capabilities
    if service.get("devices"):
        linux["devices"] = []
        for device in service["devices"]:
            if isinstance(device, Mapping):
                source, target, perms = device.get("source"), device.get("target"), device.get("permissions")
            else:
                parts = str(device).split(":")
                source, target, perms = parts[0], parts[1] if len(parts) > 1 else parts[0], \
                    parts[2] if len(parts) > 2 else "rwm"
            permissions = {"r": "read", "w": "write", "m": "mknod"}
            linux["devices"].append({"hostPath": str(source), "containerPath": str(target or source),
                                     "permissions": [permissions[p] for p in str(perms or "rwm") if p in permissions]})
    if "shm_size" in service:
        linux["sharedMemorySize"] = mebibytes(service["shm_size"], name, "shm_size")
    if "mem_swappiness" in service:
        linux["swappiness"] = int(service["mem_swappiness"])
    if "memswap_limit" in service:
        total = str(service["memswap_limit"])
        if total == "-1":
            raise UnsupportedComposeKey(name, "memswap_limit", "-1 (unlimited swap) has no ECS form; give a size")
        if "memory" not in out:
            raise UnsupportedComposeKey(name, "memswap_limit", "needs mem_limit (ECS takes the swap size, not the "
                                        "total); set mem_limit")
        linux["maxSwap"] = max(0, mebibytes(total, name, "memswap_limit") - out["memory"])
    for entry in service.get("tmpfs") or []:
        target, _, opts = str(entry).partition(":")
        options = [o for o in opts.split(",") if o and not o.startswith("size=")]
        dropped = [o for o in options if o.split("=")[0] not in TMPFS_OPTIONS or "=" in o]
        if dropped:
            changes.append(ChangeOfMeaning(name, "tmpfs", f"{target}: options {','.join(dropped)} dropped (ECS takes "
                                           "flags such as ro, noexec, nosuid, nodev, without values)"))
        options = [o for o in options if o not in dropped]
        size = next((o[5:] for o in opts.split(",") if o.startswith("size=")), None)
        out["linuxParameters"] = linux
        _add_tmpfs(out, target, _bytes(size, name, "tmpfs") if size else None, name, changes, options)
        linux = out["linuxParameters"]
    if linux:
        out["linuxParameters"] = linux


def _health_check(check: Mapping[str, Any], service: str, changes: list[ChangeOfMeaning]) -> dict[str, Any]:
    if check.get("disable"):
        raise UnsupportedComposeKey(service, "healthcheck.disable", "has no container-definition form; remove the "
                                    "healthcheck (ECS then checks nothing)")
    test = check.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if not test or not isinstance(test, list) or test[0] not in ("CMD", "CMD-SHELL"):
        raise UnsupportedComposeKey(service, "healthcheck.test", "must be CMD or CMD-SHELL")
    out: dict[str, Any] = {"command": [str(t) for t in test]}
    for key, target in (("interval", "interval"), ("timeout", "timeout"), ("start_period", "startPeriod")):
        if key in check:
            out[target] = seconds(check[key], service, f"healthcheck.{key}")
    if "retries" in check:
        out["retries"] = int(check["retries"])
    if "start_interval" in check:
        changes.append(ChangeOfMeaning(service, "healthcheck.start_interval", "dropped: ECS checks at the interval "
                                       "during the start period too"))
    return out
