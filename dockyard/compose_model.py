"""A compose file as Compose itself resolves it: the one model Dockerrun v2, the compose bundle and ``ecs.render``
are made from.

:func:`resolved_model` runs ``docker compose config --format json`` (the reference implementation: interpolation,
``extends``, ``include``, profiles, anchors, long and short syntaxes) with dockyard's compose variables for the
environment and nothing else: not the caller's shell, not a ``.env`` beside the compose file, so a deploy renders
the same on every machine. ``env_file`` entries are taken out before Compose sees the file (Compose would inline
their values, which are secrets) and put back, as written, on the resolved services.

Without a Compose v2 on the machine (a CI step that only renders) :func:`fallback_model` reads the documented
subset itself: one file, YAML anchors and merge keys, the whole ``${...}`` syntax, ``profiles`` via
``COMPOSE_PROFILES``, the short and long syntaxes. ``extends`` and ``include`` need Compose and are refused.
Both give the same :func:`normalize` shape, which is what :mod:`dockyard.containers` converts.
"""
from __future__ import annotations

import os
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import ConfigError, DockyardError

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


# --- YAML as Compose reads it ----------------------------------------------------------------------------------------

def _compose_loader() -> type:
    """PyYAML's safe loader with YAML 1.2 scalars, as Compose's Go YAML reads them: ``8080:80`` stays text
    (YAML 1.1 reads it as the base-60 number 484880), ``yes``/``on`` stay text."""
    import yaml

    class ComposeLoader(yaml.SafeLoader):
        pass

    resolvers = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = [(tag, rx) for tag, rx in entries
                if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
        resolvers[first] = kept
    ComposeLoader.yaml_implicit_resolvers = resolvers
    rules = (
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
        ("tag:yaml.org,2002:float",
         r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
         "-+0123456789."),
    )
    for tag, pattern, first in rules:
        ComposeLoader.add_implicit_resolver(tag, re.compile(pattern), list(first))

    def construct_int(loader: Any, node: Any) -> int:
        text = loader.construct_scalar(node)
        return int(text, 8) if text.startswith("0o") else int(text, 0) if text.startswith("0x") else int(text)

    ComposeLoader.add_constructor("tag:yaml.org,2002:int", construct_int)
    return ComposeLoader


_LOADER: type | None = None


def load_yaml(text: str, where: str) -> Any:
    import yaml

    global _LOADER
    _LOADER = _LOADER or _compose_loader()
    try:
        return yaml.load(text, Loader=_LOADER)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: cannot read the compose file ({exc.__class__.__name__}: {exc})") from None


# --- interpolation (the fallback's; Compose does its own) ----------------------------------------------------------

def interpolate(text: str, variables: Mapping[str, str], where: str = "") -> str:
    """Compose's ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``, ``${VAR?err}``,
    ``${VAR:+alt}``, ``${VAR+alt}`` and ``$$``; defaults and alternatives may nest (``${A:-${B}}``)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise ConfigError(f"{where}: invalid interpolation {text[i:]!r} (no closing brace)")
            out.append(_braced(text[i + 2:end], variables, where))
            i = end + 1
        else:
            match = re.match(_NAME, text[i + 1:])
            if not match:
                out.append("$")
                i += 1
                continue
            out.append(str(variables.get(match.group(0), "")))
            i += 1 + match.end()
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _braced(expr: str, variables: Mapping[str, str], where: str) -> str:
    match = re.match(_NAME, expr)
    if not match:
        raise ConfigError(f"{where}: invalid interpolation '${{{expr}}}'")
    name, rest = match.group(0), expr[match.end():]
    value = variables.get(name)
    if not rest:
        return str(value or "")
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op):]
            unset = value is None or (op.startswith(":") and value == "")
            if op.endswith("-"):
                return interpolate(arg, variables, where) if unset else str(value)
            if op.endswith("+"):
                return "" if unset else interpolate(arg, variables, where)
            if unset:
                raise ConfigError(f"{where}: variable {name} is required: {interpolate(arg, variables, where) or 'not set'}")
            return str(value)
    raise ConfigError(f"{where}: invalid interpolation '${{{expr}}}'")


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` with ``change`` applied to every string in it (not to mapping keys)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        return {k: _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    return value


def escape_dollars(model: Mapping[str, Any]) -> dict[str, Any]:
    """``model`` with every ``$`` written ``$$``, so Compose reading it again takes the values literally."""
    return _map_strings(dict(model), lambda text: text.replace("$", "$$"))


def _interpolate_tree(value: Any, variables: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        return interpolate(value, variables, where)
    if isinstance(value, Mapping):
        return {k: _interpolate_tree(v, variables, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate_tree(v, variables, where) for v in value]
    return value


# --- reading -------------------------------------------------------------------------------------------------------

def read_raw(path: Path) -> dict[str, Any]:
    """The file as written (YAML 1.2 scalars, anchors merged), refused when it is not a compose file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the compose file ({exc.__class__.__name__}: {exc})") from None
    data = load_yaml(text, str(path)) or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: not a compose file (expected a mapping with a services key)")
    if not isinstance(data.get("services"), Mapping):
        if data and all(isinstance(v, Mapping) and ({"image", "build"} & set(v)) for v in data.values()):
            raise ConfigError(f"{path}: this is the compose v1 format (services at the top level); move them under "
                              "a top-level `services:` key (Compose's `docker compose convert` prints the file that way)")
        raise ConfigError(f"{path}: not a compose file (no services mapping)")
    return dict(data)


def take_env_files(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """``raw`` without its services' ``env_file`` entries, and those entries per service."""
    services: dict[str, Any] = {}
    taken: dict[str, list[Any]] = {}
    for name, service in (raw.get("services") or {}).items():
        service = dict(service or {})
        if "env_file" in service:
            files = service.pop("env_file")
            taken[str(name)] = [files] if isinstance(files, (str, Mapping)) else list(files or [])
        services[name] = service
    return {**raw, "services": services}, taken


def resolved_model(
    path: Path,
    variables: Mapping[str, str],
    *,
    resolve: Callable[[Path, Mapping[str, Any], Mapping[str, str]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The normalized model of ``path`` with ``variables``: Compose's own when ``resolve`` (see
    :func:`dockyard.clients.compose.resolve_config`) is given, else :func:`fallback_model`."""
    raw = read_raw(path)
    stripped, env_files = take_env_files(raw)
    if resolve is None:
        model = fallback_model(stripped, variables, str(path))
    else:
        model = _map_strings(resolve(path, stripped, variables), lambda text: text.replace("$$", "$"))
    services = model.get("services") or {}
    for name, files in env_files.items():
        if name in services:
            services[name]["env_file"] = _interpolate_tree(files, variables, str(path))
    return normalize(model)


def fallback_model(raw: Mapping[str, Any], variables: Mapping[str, str], where: str) -> dict[str, Any]:
    """The documented subset without Compose: interpolation, profiles, then :func:`normalize`."""
    for key in ("include",):
        if key in raw:
            raise ConfigError(f"{where}: `{key}` needs Docker Compose v2 to resolve; install it (bash scripts/setup.sh)")
    for name, service in (raw.get("services") or {}).items():
        if isinstance(service, Mapping) and "extends" in service:
            raise ConfigError(f"{where}: service {name!r} uses `extends`, which needs Docker Compose v2 to resolve; "
                              "install it (bash scripts/setup.sh)")
    model = _interpolate_tree({k: v for k, v in raw.items() if not str(k).startswith("x-")}, variables, where)
    active = {p.strip() for p in str(variables.get("COMPOSE_PROFILES", "")).split(",") if p.strip()}
    services = {}
    for name, service in (model.get("services") or {}).items():
        service = dict(service or {})
        profiles = service.get("profiles") or []
        if profiles and not (active & set(profiles)) and "*" not in active:
            continue
        services[str(name)] = service
    model["services"] = services
    model.pop("version", None)
    model = normalize(model)
    for service in model["services"].values():
        # Compose starts what a service links to or takes volumes from first, as if it were in depends_on
        implied = [str(link).split(":")[0] for link in service.get("links") or []]
        implied += [str(v).split(":")[0] for v in service.get("volumes_from") or [] if not str(v).startswith("container:")]
        for dep in implied:
            service.setdefault("depends_on", {}).setdefault(dep, {"condition": "service_started", "required": True})
    return model


# --- the normalized shape (what `docker compose config --format json` prints) ----------------------------------------

def normalize(model: Mapping[str, Any]) -> dict[str, Any]:
    """Short syntaxes as Compose's long ones; idempotent, so Compose's own output passes through unchanged."""
    out = {k: v for k, v in model.items() if not str(k).startswith("x-")}
    services = {}
    for name, service in (model.get("services") or {}).items():
        services[str(name)] = normalize_service(dict(service or {}))
    out["services"] = services
    return out


def normalize_service(service: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in service.items() if not str(k).startswith("x-") and v is not None}
    for key in ("command", "entrypoint"):
        if isinstance(out.get(key), str):
            out[key] = shlex.split(out[key])
    if "environment" in out:
        out["environment"] = _mapping(out["environment"], allow_null=True)
    for key in ("labels", "sysctls"):
        if key in out:
            out[key] = _mapping(out[key], allow_null=False)
    if "extra_hosts" in out:
        hosts = out["extra_hosts"]
        if isinstance(hosts, Mapping):
            out["extra_hosts"] = [f"{h}={ip}" for h, ip in hosts.items()]
        else:
            out["extra_hosts"] = [_host_entry(str(h)) for h in hosts]
    if "ports" in out:
        out["ports"] = [p for spec in out["ports"] for p in _ports(spec)]
    if "expose" in out:
        out["expose"] = [str(e) for e in out["expose"]]
    if "volumes" in out:
        out["volumes"] = [_volume(v) for v in out["volumes"]]
    if "tmpfs" in out and isinstance(out["tmpfs"], str):
        out["tmpfs"] = [out["tmpfs"]]
    if "env_file" in out and isinstance(out["env_file"], (str, Mapping)):
        out["env_file"] = [out["env_file"]]
    if "depends_on" in out:
        depends = out["depends_on"]
        if isinstance(depends, list):
            depends = {str(d): {} for d in depends}
        out["depends_on"] = {str(d): {"condition": "service_started", "required": True, **(c or {})}
                             for d, c in depends.items()}
    if "healthcheck" in out and isinstance(out["healthcheck"], Mapping):
        check = dict(out["healthcheck"])
        if isinstance(check.get("test"), str):
            check["test"] = ["CMD-SHELL", check["test"]]
        out["healthcheck"] = check
    if "networks" in out and isinstance(out["networks"], list):
        out["networks"] = {str(n): None for n in out["networks"]}
    if "dns" in out and isinstance(out["dns"], str):
        out["dns"] = [out["dns"]]
    if "dns_search" in out and isinstance(out["dns_search"], str):
        out["dns_search"] = [out["dns_search"]]
    for key in ("cap_add", "cap_drop", "security_opt", "links", "volumes_from", "devices"):
        if key in out and isinstance(out[key], str):
            out[key] = [out[key]]
    return out


def _mapping(value: Any, *, allow_null: bool) -> dict[str, Any]:
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list):
        items = [tuple(str(v).split("=", 1)) if "=" in str(v) else (str(v), None) for v in value]
    else:
        return value  # the converter refuses it with the key's name
    out: dict[str, Any] = {}
    for key, val in items:
        if val is None:
            out[str(key)] = None if allow_null else ""
        elif isinstance(val, bool):
            out[str(key)] = "true" if val else "false"
        else:
            out[str(key)] = str(val)
    return out


def _host_entry(text: str) -> str:
    if "=" in text:
        return text
    host, sep, ip = text.partition(":")
    return f"{host}={ip}" if sep else text


_PORT = re.compile(r"^(?:(?P<ip>\[[^\]]*\]|\d+\.\d+\.\d+\.\d+):)?(?:(?P<published>[0-9-]*):)?(?P<target>[0-9-]+)(?:/(?P<proto>\w+))?$")


def _ports(spec: Any) -> list[Any]:
    """One short-syntax port as Compose's long ones (ranges expanded as Compose does)."""
    if isinstance(spec, Mapping):
        port = dict(spec)
        if port.get("published") not in (None, ""):
            port["published"] = str(port["published"])
        else:
            port.pop("published", None)
        port.setdefault("protocol", "tcp")
        port.setdefault("mode", "ingress")
        return [port]
    match = _PORT.match(str(spec).strip())
    if not match:
        return [spec]  # the converter refuses it, naming the value
    ip, published, target, proto = (match.group("ip"), match.group("published"), match.group("target"),
                                    match.group("proto") or "tcp")
    targets = _range(target)
    publisheds = _range(published) if published else []
    base: dict[str, Any] = {"mode": "ingress", **({"host_ip": ip.strip("[]")} if ip else {})}
    if publisheds and len(publisheds) == len(targets):
        return [{**base, "target": t, "published": str(p), "protocol": proto} for t, p in zip(targets, publisheds)]
    if publisheds:  # one container port, any host port of a range
        return [{**base, "target": t, "published": published, "protocol": proto} for t in targets]
    return [{**base, "target": t, "protocol": proto} for t in targets]


def _range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        return []
    return list(range(int(first), int(last or first) + 1))


def _volume(spec: Any) -> Any:
    if isinstance(spec, Mapping):
        volume = dict(spec)
        if volume.get("type") == "volume" and not volume.get("source"):
            volume.pop("source", None)
        if volume.get("target"):
            volume["target"] = posixpath.normpath(str(volume["target"]))  # Compose cleans container paths
        return volume
    parts = str(spec).split(":")
    if len(parts) == 1:
        return {"type": "volume", "target": posixpath.normpath(parts[0])}
    source, target = parts[0], parts[1]
    if source.startswith("~"):
        source = os.path.expanduser(source)  # as Compose does, with the HOME it runs with
    mode = parts[2].split(",") if len(parts) > 2 else []
    kind = "bind" if source.startswith((".", "/", "~")) else "volume"
    out: dict[str, Any] = {"type": kind, "source": source, "target": posixpath.normpath(target)}
    if "ro" in mode:
        out["read_only"] = True
    return out


# --- what the conversion says about a service ----------------------------------------------------------------------

class UnsupportedComposeKey(DockyardError):
    """A compose key (or value) with no container-definition equivalent: one line, the service, the key, what to do."""

    exit_code = 2

    def __init__(self, service: str, key: str, why: str = "") -> None:
        reason = why or "has no equivalent in ECS container definitions (Dockerrun.aws.json v2)"
        if "; " not in reason:  # a reason that does not say what to do gets the generic advice
            reason += "; remove it or deploy another way"
        super().__init__(f"compose service {service!r}: key {key!r} {reason}")
        self.service = service
        self.key = key


@dataclass(frozen=True)
class ChangeOfMeaning:
    """Something the conversion did that makes the container behave differently than under Compose."""

    service: str
    key: str
    what: str

    def __str__(self) -> str:
        return f"compose service {self.service!r}: {self.key}: {self.what}"
