"""Settings of the ``dockyard.ecs`` section: which ECS service runs the app, how deploys wait, what is kept.

``DEFAULTS`` declares every key with its default; ``parse`` validates the section once, at load. Any key may be
overridden per environment under ``dockyard.environments.<env>.ecs`` (e.g. another cluster for staging);
:meth:`EcsSettings.target` is the merge of the two for one environment.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ..named_volumes import volume_decisions
from ..section import Names, Section, keys_of

if TYPE_CHECKING:
    from ..config import Settings

SECTION = "ecs"

DEFAULTS: dict[str, Any] = {
    "cluster": "",  # required by the ecs tasks
    "service": "",  # default: dockyard.app
    "containers": ["web"],  # containers of the task definition that run the app image
    "family": "",  # ecs.render: task-definition family of a new service; default: dockyard.app
    "keep": 5,  # ACTIVE task-definition revisions kept; the live one and the new one are always kept
    "timeout": 600.0,  # seconds a deploy may take to become steady
    "rollback_timeout": 600.0,  # seconds the rollback may take
    "poll_interval": 5.0,
    "check_image": True,  # refuse to deploy a release whose image is not in the registry
    "env_file": False,  # also set the containers' environment from the environment's .env file
    "secret_keys": [],  # keys of the .env file that go as `secrets` (valueFrom SSM), never as plain values
    "ssm_prefix": "",  # SSM parameter path of those secrets; default /<app>/<env>/
    # where secret_keys live: ssm (SecureString parameters, always the latest value: ECS cannot pin an SSM version)
    # | secretsmanager (one secret per key, named by ssm_prefix without its leading "/", pinned by version id)
    "secrets_backend": "ssm",
    "bucket": "",  # S3 bucket of the deploy lock and audit records; default dockyard.eb.bucket ("" = SSM parameters)
    "prefix": "dockyard",  # key prefix in that bucket (or SSM path: /<prefix>/<app>/locks|audit/...)
    "default_memory": 256,  # ecs.render: MiB for containers without mem_limit
    "host_port": 80,  # ecs.render: DOCKYARD_PORT, the instance port the compose file publishes its entry on
    "volumes": {},  # ecs.render: what each compose named volume becomes: scratch | shared | /host/path | {efs: fs-...}
}

SCHEMA = keys_of(DEFAULTS, volumes=Names())
SECRETS_BACKENDS = ("ssm", "secretsmanager")
#: ``dockyard.environments.<env>.ecs`` overrides any key of the section
ENVIRONMENT_SCHEMA = SCHEMA


@dataclass(frozen=True)
class EcsTarget:
    """The ECS settings of one environment (global section + its ``environments.<env>.ecs`` overrides)."""

    environment: str
    cluster: str
    service: str
    containers: tuple[str, ...]
    family: str
    keep: int
    timeout: float
    rollback_timeout: float
    poll_interval: float
    check_image: bool
    env_file: bool
    secret_keys: tuple[str, ...]
    ssm_prefix: str
    bucket: str
    prefix: str
    default_memory: int
    volumes: Mapping[str, Any] = field(default_factory=dict)
    host_port: int = 80  # compose volume -> named_volumes.VolumeDecision
    secrets_backend: str = "ssm"  # ssm | secretsmanager

    def secret_name(self, key: str) -> str:
        """Where ``key`` of ``secret_keys`` is stored: an SSM parameter name, or a Secrets Manager secret name."""
        prefix = self.ssm_prefix if self.ssm_prefix.endswith("/") else self.ssm_prefix + "/"
        return f"{prefix.lstrip('/')}{key}" if self.secrets_backend == "secretsmanager" else f"{prefix}{key}"

    @property
    def where(self) -> str:
        return f"{self.cluster}/{self.service}"


@dataclass(frozen=True)
class EcsSettings:
    """The parsed section: the ECS settings of every environment, by name."""

    targets: Mapping[str, EcsTarget]

    def target(self, env_name: str) -> EcsTarget:
        return self.targets[env_name]


def parse(settings: Settings) -> EcsSettings:
    """Validate ``dockyard.ecs`` and each environment's ``ecs`` overrides."""
    return EcsSettings({name: _target(settings, name) for name in settings.environments})


def _target(settings: Settings, env_name: str) -> EcsTarget:
    top: Section = settings.section.section(SECTION)
    env = settings.environments[env_name]
    own = env.section.section(SECTION)
    merged = Section({**DEFAULTS, **top.data, **own.data}, top.key, top.origin)

    def pick(name: str) -> Section:
        return own if name in own.data else merged  # errors name the key where it was set

    containers = pick("containers").strings("containers")
    if not containers:
        raise pick("containers").fail("containers", "name at least one container that runs the app image")
    eb_bucket = ""
    eb = settings.section.section("eb")
    if isinstance(eb.raw("bucket"), str):
        eb_bucket = eb.raw("bucket")
    return EcsTarget(
        environment=env_name,
        cluster=pick("cluster").str("cluster"),
        service=pick("service").str("service") or settings.app,
        containers=containers,
        family=pick("family").str("family") or settings.app,
        keep=pick("keep").int("keep", 5, minimum=1),
        timeout=pick("timeout").float("timeout", 600, minimum=1),
        rollback_timeout=pick("rollback_timeout").float("rollback_timeout", 600, minimum=1),
        poll_interval=pick("poll_interval").float("poll_interval", 5, minimum=0),
        check_image=pick("check_image").bool("check_image", True),
        env_file=pick("env_file").bool("env_file", False),
        secret_keys=pick("secret_keys").strings("secret_keys"),
        ssm_prefix=pick("ssm_prefix").str("ssm_prefix") or f"/{settings.app}/{env_name}/",
        bucket=pick("bucket").bucket("bucket") or eb_bucket,
        prefix=pick("prefix").str("prefix", "dockyard"),
        default_memory=pick("default_memory").int("default_memory", 256, minimum=4),
        volumes=volume_decisions(pick("volumes")),
        host_port=_host_port(pick("host_port")),
        secrets_backend=pick("secrets_backend").str("secrets_backend", "ssm", choices=SECRETS_BACKENDS),
    )


def _host_port(section: Any) -> int:
    value = section.int("host_port", 80, minimum=1)
    if value > 65535:
        raise section.fail("host_port", f"expected a port number up to 65535, got {value}")
    return value

