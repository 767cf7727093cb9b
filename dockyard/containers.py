"""Compose services as ECS-style ``containerDefinitions`` (Dockerrun.aws.json v2, ECS task definitions).

The production compose file is the single source of truth: :func:`container_definitions` converts every key that
has an equivalent and refuses the rest with :class:`UnsupportedComposeKey` (naming the service and the key), so
nothing is silently dropped. Files bind-mounted from the project (an nginx config) are shipped with the bundle and
mounted from ``<root_prefix>/<path in the project>`` (``/var/app/current`` on Elastic Beanstalk).

``env_file`` is accepted but never shipped: its values are secrets and reach the containers as the platform's
environment properties (``inv eb.setenv``); :attr:`ContainerDefinitions.env_files` lists them per service.

Pure: no I/O but :func:`read_compose_file`, which reads and interpolates a compose file like Compose does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from .errors import ConfigError, DockyardError


class UnsupportedComposeKey(DockyardError):
    """A compose key (or value) with no container-definition equivalent."""

    exit_code = 2

    def __init__(self, service: str, key: str, why: str = "") -> None:
        reason = why or "has no equivalent in ECS container definitions (Dockerrun.aws.json v2)"
        super().__init__(f"compose service {service!r}: key {key!r} {reason}; remove it or deploy another way")
        self.service = service
        self.key = key


#: Compose service keys the conversion understands.
SUPPORTED_KEYS = frozenset({
    "image", "build", "command", "entrypoint", "environment", "env_file", "ports", "expose", "volumes", "links",
    "depends_on", "mem_limit", "mem_reservation", "working_dir", "user", "hostname", "privileged", "read_only",
    "extra_hosts", "labels", "healthcheck", "stop_grace_period", "logging", "ulimits", "tty", "stdin_open",
})


@dataclass(frozen=True)
class ContainerDefinitions:
    """The converted services: container definitions, task volumes, and the files the bundle must carry."""

    containers: tuple[dict[str, Any], ...]
    volumes: tuple[dict[str, Any], ...]
    shipped: Mapping[str, Path] = field(default_factory=dict)  # path inside the bundle -> file in the project
    env_files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # service -> env files (not shipped)


# --- reading a compose file ---------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(text: str, variables: Mapping[str, str], where: str = "") -> str:
    """Compose's ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}`` and ``$$``."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        expr = match.group("braced") if match.group("braced") is not None else match.group("plain")
        for op in (":-", "-", ":?", "?"):
            name, sep, rest = expr.partition(op)
            if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                value = variables.get(name)
                empty = value is None or (op.startswith(":") and value == "")
                if op.endswith("-"):
                    return rest if empty else str(value)
                if empty:
                    raise ConfigError(f"{where}: variable {name} is required: {rest or 'not set'}")
                return str(value)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", expr):
            raise ConfigError(f"{where}: invalid interpolation {match.group(0)!r}")
        return str(variables.get(expr, ""))

    return _VARIABLE.sub(replace, text)


def _interpolate_tree(value: Any, variables: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        return interpolate(value, variables, where)
    if isinstance(value, Mapping):
        return {k: _interpolate_tree(v, variables, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate_tree(v, variables, where) for v in value]
    return value


def read_compose_file(path: Path, variables: Mapping[str, str]) -> dict[str, Any]:
    """Load ``path`` and interpolate it with ``variables`` only (not the caller's environment)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the compose file ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("services"), Mapping):
        raise ConfigError(f"{path}: not a compose file (no services mapping)")
    return _interpolate_tree(dict(data), variables, str(path))


# --- values -------------------------------------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmg]?)b?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")


def mebibytes(value: Any, service: str, key: str) -> int:
    """``512m``/``1g``/``134217728`` -> MiB (at least 4, as ECS requires)."""
    match = _SIZE.match(str(value))
    if not match:
        raise UnsupportedComposeKey(service, key, f"has a size ECS cannot read: {value!r}")
    number, unit = float(match.group(1)), match.group(2).lower()
    size = number * {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]
    return max(4, int(size // 1024**2))


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


def parse_port(spec: Any, service: str) -> PortSpec:
    """``"8080:80"``, ``"80"``, ``"127.0.0.1:8080:80/udp"`` or the long syntax."""
    if isinstance(spec, Mapping):
        target = spec.get("target")
        published = spec.get("published")
        if target is None:
            raise UnsupportedComposeKey(service, "ports", "long syntax needs a target")
        return PortSpec(int(target), int(published) if published not in (None, "") else None,
                        str(spec.get("protocol") or "tcp"))
    text = str(spec)
    text, _, protocol = text.partition("/")
    parts = text.split(":")
    if "-" in text:
        raise UnsupportedComposeKey(service, "ports", f"port ranges ({spec!r}) have no container-definition form")
    try:
        if len(parts) == 1:
            return PortSpec(int(parts[0]), None, protocol or "tcp")
        return PortSpec(int(parts[-1]), int(parts[-2]) if parts[-2] else None, protocol or "tcp")
    except ValueError:
        raise UnsupportedComposeKey(service, "ports", f"cannot read port {spec!r}") from None


@dataclass(frozen=True)
class VolumeSpec:
    kind: str  # bind | volume | anonymous
    source: str  # host path (bind, as written) or volume name
    target: str
    read_only: bool


def parse_volume(spec: Any, service: str) -> VolumeSpec:
    if isinstance(spec, Mapping):
        kind = str(spec.get("type") or "volume")
        if kind not in ("bind", "volume"):
            raise UnsupportedComposeKey(service, "volumes", f"volume type {kind!r} has no container-definition form")
        source = str(spec.get("source") or "")
        target = str(spec.get("target") or "")
        return VolumeSpec(kind if source else "anonymous", source, target, bool(spec.get("read_only")))
    parts = str(spec).split(":")
    if len(parts) == 1:
        return VolumeSpec("anonymous", "", parts[0], False)
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) > 2 else "rw"
    read_only = "ro" in mode.split(",")
    kind = "bind" if source.startswith((".", "/", "~")) else "volume"
    return VolumeSpec(kind, source, target, read_only)


def project_path(source: str, compose_dir: Path, project_root: Path, service: str) -> str:
    """A bind-mount source as a path inside the project (POSIX), or refused when it points outside."""
    path = (compose_dir / Path(source).expanduser()).resolve()
    try:
        relative = path.relative_to(project_root.resolve())
    except ValueError:
        raise UnsupportedComposeKey(service, "volumes", f"mounts {source}, which is outside the project and cannot "
                                    "ship in the bundle") from None
    if not path.exists():
        raise UnsupportedComposeKey(service, "volumes", f"mounts {source}, which does not exist")
    return PurePosixPath(*relative.parts).as_posix()


def volume_name(text: str) -> str:
    """A task-volume name from a path: letters, digits, '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "volume"


# --- the conversion -------------------------------------------------------------------------------------------------


def container_definitions(
    compose_model: Mapping[str, Any],
    *,
    images: Mapping[str, str] = {},
    project_root: Path,
    compose_dir: Path,
    root_prefix: str = "/var/app/current",
    default_memory: int = 256,
) -> ContainerDefinitions:
    """Convert an interpolated compose model (:func:`read_compose_file`) to container definitions.

    ``images`` pins services to images (``{"web": "registry/app:1.2.3"}``); a service with a ``build`` section
    must be pinned. Every container is ``essential``; one without ``mem_limit``/``mem_reservation`` gets
    ``default_memory`` MiB.
    """
    services = compose_model.get("services") or {}
    containers: list[dict[str, Any]] = []
    volumes: dict[str, dict[str, Any]] = {}
    shipped: dict[str, Path] = {}
    env_files: dict[str, tuple[str, ...]] = {}
    for name in sorted(services):
        service = services[name] or {}
        unknown = sorted(set(service) - SUPPORTED_KEYS)
        if unknown:
            raise UnsupportedComposeKey(name, unknown[0])
        container = _container(name, service, images, default_memory)
        mounts = []
        for n, spec in enumerate(service.get("volumes") or []):
            volume = parse_volume(spec, name)
            if volume.kind == "bind":
                inside = project_path(volume.source, compose_dir, project_root, name)
                vol_name = volume_name(inside)
                volumes[vol_name] = {"name": vol_name, "host": {"sourcePath": f"{root_prefix.rstrip('/')}/{inside}"}}
                shipped[inside] = (project_root / inside)
            else:
                vol_name = volume_name(volume.source) if volume.kind == "volume" else f"{name}-anonymous-{n}"
                volumes.setdefault(vol_name, {"name": vol_name})
            mounts.append({"sourceVolume": vol_name, "containerPath": volume.target, "readOnly": volume.read_only})
        if mounts:
            container["mountPoints"] = mounts
        if service.get("env_file"):
            files = service["env_file"]
            files = [files] if isinstance(files, str) else files
            env_files[name] = tuple(str(f["path"] if isinstance(f, Mapping) else f) for f in files)
        containers.append(container)
    return ContainerDefinitions(tuple(containers), tuple(volumes[k] for k in sorted(volumes)), shipped, env_files)


def _container(name: str, service: Mapping[str, Any], images: Mapping[str, str], default_memory: int) -> dict:
    image = images.get(name) or service.get("image")
    if not image:
        raise UnsupportedComposeKey(name, "build", "builds an image, which a deployment cannot do; give it an "
                                    "image or pin one")
    if service.get("build") and name not in images:
        raise UnsupportedComposeKey(name, "build", "builds its image on the host; dockyard pins released images "
                                    "only to services listed in images")
    out: dict[str, Any] = {"name": name, "image": str(image), "essential": True}
    if "mem_limit" in service:
        out["memory"] = mebibytes(service["mem_limit"], name, "mem_limit")
    if "mem_reservation" in service:
        out["memoryReservation"] = mebibytes(service["mem_reservation"], name, "mem_reservation")
    if "memory" not in out and "memoryReservation" not in out:
        out["memory"] = default_memory
    ports = [parse_port(p, name) for p in service.get("ports") or []]
    ports += [PortSpec(int(str(p).split("/")[0]), None, (str(p).split("/") + ["tcp"])[1])
              for p in service.get("expose") or []]
    if ports:
        out["portMappings"] = [
            {"containerPort": p.container, **({"hostPort": p.host} if p.host else {}),
             **({"protocol": p.protocol} if p.protocol != "tcp" else {})}
            for p in ports
        ]
    if "links" in service:
        out["links"] = [str(link) for link in service["links"]]
    if "depends_on" in service:
        depends = service["depends_on"]
        names = list(depends) if isinstance(depends, (list, Mapping)) else []
        conditions = {"service_started": "START", "service_healthy": "HEALTHY",
                      "service_completed_successfully": "SUCCESS"}
        out["dependsOn"] = []
        for dep in names:
            cond = (depends[dep] or {}).get("condition", "service_started") if isinstance(depends, Mapping) else \
                "service_started"
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
        hosts = key_values(service["extra_hosts"], name, "extra_hosts") if isinstance(service["extra_hosts"], Mapping) \
            else dict(str(h).split(":", 1) for h in service["extra_hosts"])
        out["extraHosts"] = [{"hostname": h, "ipAddress": ip} for h, ip in sorted(hosts.items())]
    if "labels" in service:
        out["dockerLabels"] = key_values(service["labels"], name, "labels")
    if "stop_grace_period" in service:
        out["stopTimeout"] = seconds(service["stop_grace_period"], name, "stop_grace_period")
    if "healthcheck" in service:
        out["healthCheck"] = _health_check(service["healthcheck"] or {}, name)
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
    return out


def _health_check(check: Mapping[str, Any], service: str) -> dict[str, Any]:
    if check.get("disable"):
        raise UnsupportedComposeKey(service, "healthcheck.disable", "has no container-definition form")
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
    return out
