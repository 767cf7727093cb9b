"""What a staging deploy is about, as values: hosts, the target environment, and the names used on a host."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..health import HealthSetting

LABEL_PREFIX = "dev.dockyard.ssh.prefix"
LABEL_ROLE = "dev.dockyard.ssh.role"  # app | worker | proxy | accessory | release
LABEL_SERVICE = "dev.dockyard.ssh.service"  # the compose service an app or worker container runs
LABEL_VERSION = "dev.dockyard.ssh.version"
LABEL_APP = "dev.dockyard.app"
LABEL_ENV = "dev.dockyard.environment"

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class SshAddress:
    user: str
    host: str
    port: int = 22

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class HostSpec:
    """One staging host: where to log in, and the names this deploy uses there."""

    address: SshAddress
    prefix: str
    proxy_port: int
    state_dir: str

    @property
    def label(self) -> str:
        return str(self.address)

    @property
    def name(self) -> str:
        """How a host is shown: its address, plus the prefix (two deploys may share one machine)."""
        return f"{self.address}/{self.prefix}"


@dataclass(frozen=True)
class Accessory:
    """A long-running service beside the app (database, cache), reachable on the app network by ``name``."""

    name: str
    image: str
    ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None  # None: the image's
    env_file: bool = False  # also takes the environment's .env values (a compose service listing env_file)
    source: str = "settings"  # settings (dockyard.ssh.accessories) | compose


@dataclass(frozen=True)
class RunSpec:
    """How a service sharing the release image runs (the app, a worker): what its compose entry says.

    ``volumes`` are ``docker --volume`` values as written in compose: a named volume's source gets the host's
    prefix when the command is built (:func:`dockyard.staging.commands.service_volume`).
    """

    service: str
    command: tuple[str, ...] = ()  # () = the image's CMD
    entrypoint: tuple[str, ...] | None = None  # None = the image's ENTRYPOINT; () = none
    environment: tuple[tuple[str, str], ...] = ()  # compose `environment`, written to the service's env file
    env_file: bool = False  # the compose entry lists env_file: the environment's .env values too
    working_dir: str = ""
    user: str = ""
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComposeServices:
    """What a staging host runs, read from the environment's compose file (or, without one, the app alone)."""

    app: RunSpec
    workers: tuple[RunSpec, ...] = ()
    accessories: tuple[Accessory, ...] = ()  # the compose services with an image of their own
    volumes: tuple[str, ...] = ()  # named volumes (without the host prefix) the app and workers mount
    notes: tuple[str, ...] = ()  # what staging leaves out of the compose file, one line each

    def worker(self, service: str) -> RunSpec | None:
        return next((w for w in self.workers if w.service == service), None)


@dataclass(frozen=True)
class StagingTarget:
    """The validated settings of one environment deployed over SSH."""

    env_name: str
    app: str
    repository: str
    hosts: tuple[HostSpec, ...]
    key_file: Path | None
    use_agent: bool
    known_hosts: Path | None
    accept_new_host_keys: bool
    connect_timeout: float
    app_port: int
    health_path: str
    health_timeout: float
    env_file: Path
    env_example: Path
    proxy_image: str
    proxy_bind: str
    drain_seconds: float
    stop_timeout: int
    keep: int
    batch_size: int
    lock_wait: float
    version_format: str
    accessories: tuple[Accessory, ...]
    prefix: str
    health_path_key: str = "dockyard.health_path"
    health_host: str = "localhost"  # the Host header of the health probe
    health_host_key: str = "dockyard.ssh.health_host"
    skip_services: tuple[str, ...] = ()  # compose services staging does not run (a front nginx: the proxy fronts)
    worker_start_seconds: float = 3.0  # a new worker must still be running this long after its start
    static_dir: str = ""  # dockyard.static.dir when the proxy serves the static files ("" = it does not)
    static_url: str = ""  # dockyard.static.url

    @property
    def health_setting(self) -> HealthSetting:
        return HealthSetting(self.health_path, self.health_path_key, self.health_host, self.health_host_key)

    def image(self, version: str) -> str:
        from ..core.compose import image_reference

        return image_reference(self.repository, version)

    def accessory(self, name: str) -> Accessory | None:
        return next((a for a in self.accessories if a.name == name), None)

    def default_version(self, sha: str) -> str:
        return self.version_format.format(env=self.env_name, sha=sha, sha7=sha[:7])


def valid_version(version: str) -> bool:
    """A Docker tag: what a VERSION may be."""
    return bool(_TAG.match(version))


@dataclass(frozen=True)
class Layout:
    """The names and paths of one deploy on one host; ``root`` is the absolute state directory there."""

    prefix: str
    root: str

    @property
    def network(self) -> str:
        return self.prefix

    @property
    def proxy(self) -> str:
        return f"{self.prefix}-proxy"

    def app_container(self, version: str) -> str:
        return f"{self.prefix}-app-{version}"

    def worker_container(self, service: str, version: str) -> str:
        return f"{self.prefix}-{service}-{version}"

    @property
    def release_container(self) -> str:
        """The one-off container of a deploy's release command (one at a time: the deploy lock is held)."""
        return f"{self.prefix}-release"

    def accessory_container(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def volume(self, name: str) -> str:
        """A compose named volume on the host: two deploys on one host keep their data apart."""
        return f"{self.prefix}-{name}"

    @property
    def docker_config(self) -> str:
        """A ``docker --config`` directory of our own: registry logins stay out of the user's config."""
        return f"{self.root}/docker"

    @property
    def proxy_dir(self) -> str:
        return f"{self.root}/proxy"

    @property
    def proxy_conf(self) -> str:
        return f"{self.proxy_dir}/nginx.conf"

    @property
    def static_files(self) -> str:
        """The live version's static files, which the proxy serves (under its mount, see dockyard.static)."""
        return f"{self.proxy_dir}/static"

    @property
    def upstream_conf(self) -> str:
        return f"{self.proxy_dir}/upstream.conf"

    @property
    def env_file(self) -> str:
        return f"{self.root}/app.env"

    @property
    def pulled_images(self) -> str:
        """The images dockyard pulled here (see :mod:`dockyard.staging.pulled`): the only ones pruning removes."""
        return f"{self.root}/pulled-images"

    def accessory_env_file(self, name: str) -> str:
        return f"{self.root}/{name}.env"

    def worker_env_file(self, service: str) -> str:
        return f"{self.root}/service-{service}.env"

    @property
    def lock_dir(self) -> str:
        return f"{self.root}/lock"

    @property
    def lock_details(self) -> str:
        return f"{self.lock_dir}/details"

    @property
    def audit_log(self) -> str:
        return f"{self.root}/audit.log"
