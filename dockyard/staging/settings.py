"""Settings of the ``dockyard.ssh`` section (owned by the staging-over-SSH feature).

``dockyard.ssh`` holds the defaults of every environment deployed over SSH (``target: ssh``); an environment may
override any key under ``dockyard.environments.<env>.ssh``. ``parse`` validates both once, at load, and returns
an :class:`SshSettings` whose ``target(env_name)`` is the :class:`~dockyard.staging.model.StagingTarget` a task
uses. An empty host list is valid here (the repository's sample has none); the tasks refuse it when they run.
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ConfigError
from ..section import Items, Names, Section, keys_of
from .model import Accessory, HostSpec, SshAddress, StagingTarget

if TYPE_CHECKING:
    from ..config import Environment, Settings

SECTION = "ssh"

DEFAULTS: dict[str, Any] = {
    "hosts": [],  # "user@host[:port]", or {address: ..., prefix: ..., proxy_port: ...} per host
    "key_file": "",  # private key; "" = the SSH agent (and no other key)
    "use_agent": True,
    "known_hosts": "~/.ssh/known_hosts",  # host keys are checked against this file; unknown hosts are refused
    "accept_new_host_keys": False,  # trust-on-first-use outside CI only (never under CI=true)
    "connect_timeout": 10.0,
    "command_timeout": 900.0,  # seconds a remote command that streams nothing may run (a pull, a script)
    "app_port": 8000,  # the port the app listens on inside its container
    "health_path": "",  # default: the environment's health_path
    "health_timeout": 0,  # seconds; default: the environment's health_timeout
    "public_host": "",  # the host name users reach the environment by (e.g. staging.example.com)
    "health_host": "",  # Host header of the health probe; default: public_host, else localhost
    "env_file": "",  # default: the environment's env_file
    "proxy_port": 80,  # the host's public port, owned by the front proxy
    "proxy_bind": "",  # host address the public port binds ("" = every address)
    "proxy_image": "",  # default: the build arg NGINX_IMAGE, else nginx:1.27
    "drain_seconds": 2.0,  # after the switch, before the old container is stopped
    "stop_timeout": 10,  # docker stop -t
    "keep": 3,  # stopped versions kept per host for rollback
    "prefix": "",  # container/network name prefix; default <app>-<env>
    "state_dir": ".dockyard",  # remote directory (relative to the login's home) for lock, audit, env file
    "batch_size": 1,  # hosts deployed at once (--limit)
    "lock_wait": 0.0,  # seconds to wait for another deploy's lock (--lock-wait)
    "version_format": "{env}-{sha7}",  # default VERSION from the CI commit: {env}, {sha}, {sha7}
    "accessories": {},  # name: {image, port, volume, env, command}; wins over a compose service of that name
    "skip_services": [],  # compose services staging does not run (e.g. a front nginx: the proxy fronts the app)
    "worker_start_seconds": 3.0,  # a new worker must still run this long after its start, else the deploy fails
}

#: one entry of ``hosts`` written as a mapping
HOST_SCHEMA = {"address": None, "prefix": None, "proxy_port": None, "state_dir": None}
#: ``accessories.<name>``
ACCESSORY_SCHEMA = {"image": None, "port": None, "ports": None, "volume": None, "volumes": None, "env": Names(),
                    "command": None}
SCHEMA = keys_of(DEFAULTS, hosts=Items(HOST_SCHEMA), accessories=Names(ACCESSORY_SCHEMA))
#: ``dockyard.environments.<env>.ssh`` overrides any key of the section
ENVIRONMENT_SCHEMA = SCHEMA


@dataclass(frozen=True)
class SshSettings:
    """The parsed section: the targets of every ``target: ssh`` environment, by name."""

    targets: Mapping[str, StagingTarget]
    #: ``command_timeout`` of each environment (a bound of the SSH client, :class:`~dockyard.clients.ssh.SshOptions`)
    command_timeouts: Mapping[str, float] = field(default_factory=dict)

    def command_timeout(self, env_name: str) -> float:
        return self.command_timeouts.get(env_name, DEFAULTS["command_timeout"])

    def target(self, env_name: str) -> StagingTarget:
        if env_name not in self.targets:
            raise ConfigError(
                f"dockyard.environments.{env_name}.target is not 'ssh': set `target: ssh` to deploy it over SSH"
            )
        return self.targets[env_name]


def parse(settings: Settings) -> SshSettings:
    """Validate ``dockyard.ssh`` and each SSH environment's ``ssh`` overrides."""
    top: Section = settings.section.section(SECTION)
    targets, command_timeouts = {}, {}
    for name, env in settings.environments_deployed_over("ssh").items():
        overrides: Section = env.section.section(SECTION)
        targets[name] = parse_target(settings, env, Layered(top, overrides))
        command_timeouts[name] = Layered(top, overrides).float("command_timeout", minimum=1)
    return SshSettings(targets, command_timeouts)


class Layered:
    """Reads a key from the environment's ``ssh`` overrides, else from ``dockyard.ssh``, else the default."""

    def __init__(self, top: Section, overrides: Section) -> None:
        self.top = top
        self.overrides = overrides

    def pick(self, name: str) -> Section:
        if name in self.overrides.data:
            return self.overrides
        if name in self.top.data:
            return self.top
        return Section(DEFAULTS, self.top.key, self.top.origin)

    def __getattr__(self, getter: str):
        def read(name: str, *args: Any, **kwargs: Any) -> Any:
            return getattr(self.pick(name), getter)(name, *args, **kwargs)

        return read


_ADDRESS = re.compile(r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\])(?::(?P<port>\d+))?$")
_HOST_HEADER = re.compile(r"^[A-Za-z0-9._-]+(:\d+)?$")
_PREFIX = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def parse_target(settings: Settings, env: Environment, ssh: Layered) -> StagingTarget:
    prefix = ssh.str("prefix") or f"{settings.app}-{env.name}".replace(".", "-")
    if not _PREFIX.match(prefix):
        raise ssh.pick("prefix").fail("prefix", f"expected letters, digits, '_', '.', '-', got {prefix!r}")
    proxy_port = _port(ssh, "proxy_port")
    state_dir = ssh.str("state_dir", required=True)

    hosts_owner = ssh.pick("hosts")
    raw_hosts = hosts_owner.raw("hosts") or []
    if isinstance(raw_hosts, (str, Mapping)):
        raw_hosts = [raw_hosts]
    if not isinstance(raw_hosts, list):
        raise hosts_owner.fail("hosts", "expected a list of user@host[:port]")
    hosts = []
    for i, entry in enumerate(raw_hosts):
        item = entry if isinstance(entry, Mapping) else {"address": entry}
        def bad(problem: str, n: int = i) -> Exception:
            return hosts_owner.fail("hosts", f"entry {n + 1}: {problem}")

        address_text = item.get("address")
        if not isinstance(address_text, str) or not (match := _ADDRESS.match(address_text.strip())):
            raise bad(f"expected user@host[:port], got {address_text!r}")
        port = int(match["port"] or 22)
        if not 0 < port < 65536:
            raise bad(f"port {port} is out of range")
        host_prefix = str(item.get("prefix") or prefix)
        if not _PREFIX.match(host_prefix):
            raise bad(f"prefix: expected letters, digits, '_', '.', '-', got {host_prefix!r}")
        host_proxy_port = item.get("proxy_port", proxy_port)
        if isinstance(host_proxy_port, bool) or not isinstance(host_proxy_port, int) or not 0 < host_proxy_port < 65536:
            raise bad(f"proxy_port: expected a port number, got {host_proxy_port!r}")
        address = SshAddress(user=match["user"] or os.environ.get("USER", "root"), host=match["host"].strip("[]"),
                             port=port)
        hosts.append(HostSpec(address=address, prefix=host_prefix, proxy_port=host_proxy_port,
                              state_dir=str(item.get("state_dir") or state_dir)))
    labels = [h.label for h in hosts]
    for h in hosts:
        if labels.count(h.label) > 1 and [x.prefix for x in hosts if x.label == h.label].count(h.prefix) > 1:
            raise hosts_owner.fail("hosts", f"{h.label} is listed twice with the same prefix {h.prefix!r}")

    key_file = ssh.str("key_file")
    known_hosts = ssh.str("known_hosts")
    health_timeout = ssh.int("health_timeout", minimum=0) or env.health_timeout
    health_path = ssh.str("health_path") or env.health_path
    health_path_key = ssh.pick("health_path").full("health_path") if ssh.str("health_path") else env.health_path_key
    if not health_path.startswith("/"):
        raise ssh.pick("health_path").fail("health_path", f"expected a path starting with '/', got {health_path!r}")
    health_host_key = "public_host" if ssh.str("public_host") and not ssh.str("health_host") else "health_host"
    health_host = ssh.str(health_host_key) or "localhost"
    if not _HOST_HEADER.match(health_host):
        raise ssh.pick(health_host_key).fail(health_host_key, f"expected a host name, got {health_host!r}")
    env_file_text = ssh.str("env_file")
    env_file = (settings.root / env_file_text) if env_file_text else env.env_file
    proxy_image = ssh.str("proxy_image") or settings.build_args.get("NGINX_IMAGE") or "nginx:1.27"
    version_format = ssh.str("version_format", required=True)
    try:
        version_format.format(env=env.name, sha="0" * 40, sha7="0" * 7)
    except (KeyError, IndexError, ValueError) as exc:
        raise ssh.pick("version_format").fail("version_format", f"unknown placeholder {exc}; use {{env}}, {{sha}}, {{sha7}}") from None

    return StagingTarget(
        env_name=env.name,
        app=settings.app,
        repository=settings.repository,
        hosts=tuple(hosts),
        key_file=_expand(settings.root, key_file),
        use_agent=ssh.bool("use_agent"),
        known_hosts=_expand(settings.root, known_hosts),
        accept_new_host_keys=ssh.bool("accept_new_host_keys"),
        connect_timeout=ssh.float("connect_timeout", minimum=1),
        app_port=_port(ssh, "app_port"),
        health_path=health_path,
        health_timeout=float(health_timeout),
        env_file=env_file,
        env_example=env.env_example if not env_file_text else env_file.with_name(env_file.name + ".example"),
        proxy_image=proxy_image,
        proxy_bind=ssh.str("proxy_bind"),
        drain_seconds=ssh.float("drain_seconds", minimum=0),
        stop_timeout=ssh.int("stop_timeout", minimum=0),
        keep=ssh.int("keep", minimum=0),
        batch_size=ssh.int("batch_size", minimum=1),
        lock_wait=ssh.float("lock_wait", minimum=0),
        version_format=version_format,
        accessories=tuple(_accessories(ssh)),
        prefix=prefix,
        health_path_key=health_path_key,
        health_host=health_host,
        health_host_key=ssh.pick(health_host_key).full(health_host_key),
        skip_services=ssh.strings("skip_services"),
        worker_start_seconds=ssh.float("worker_start_seconds", minimum=0),
        **_static(settings),
    )


def _static(settings: Settings) -> dict[str, str]:
    """The proxy serves ``dockyard.static`` when its ``serve`` is ``proxy`` (core: :mod:`dockyard.core.static`)."""
    from ..core import static

    parsed = static.parse(settings)
    if not parsed.enabled or parsed.serve != "proxy":
        return {}
    return {"static_dir": parsed.dir, "static_url": parsed.url}


def _port(ssh: Layered, name: str) -> int:
    value = ssh.int(name, minimum=1)
    if value > 65535:
        raise ssh.pick(name).fail(name, f"expected a port number up to 65535, got {value}")
    return value


def _expand(root: Path, text: str) -> Path | None:
    if not text:
        return None
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else root / path


def _accessories(ssh: Layered) -> list[Accessory]:
    owner = ssh.pick("accessories")
    raw = owner.raw("accessories") or {}
    if not isinstance(raw, Mapping):
        raise owner.fail("accessories", "expected a mapping of name: {image, port, volume, env}")
    out = []
    for name, spec in raw.items():
        name = str(name)
        if not _PREFIX.match(name):
            raise owner.fail(f"accessories.{name}", "names are letters, digits, '_', '.', '-'")
        if isinstance(spec, str):
            spec = {"image": spec}
        if not isinstance(spec, Mapping):
            raise owner.fail(f"accessories.{name}", "expected a mapping with at least `image`")
        spec = {k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in spec.items()}
        section = Section(spec, owner.full(f"accessories.{name}"), owner.origin)
        command = spec.get("command") or ()
        if isinstance(command, str):
            command = shlex.split(command)
        out.append(Accessory(
            name=name,
            image=section.str("image", required=True),
            ports=section.strings("port") + section.strings("ports"),
            volumes=section.strings("volume") + section.strings("volumes"),
            env=section.mapping("env"),
            command=tuple(str(c) for c in command),
        ))
    return out
