"""Settings of the ``dockyard.eb`` section (owned by the Elastic Beanstalk feature).

``DEFAULTS`` declares every key with its default; ``parse`` validates the section once, at load. Per-environment
keys live under ``dockyard.environments.<env>.eb`` (``name``, ``twin``, ``platform``) for environments whose
``target`` is ``eb``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ConfigError
from ..named_volumes import volume_decisions
from ..section import Names, keys_of

if TYPE_CHECKING:
    from ..config import Settings

SECTION = "eb"

PLATFORMS = ("v1", "v2", "compose")
AUTH_MODES = ("auto", "none", "ecr", "dockercfg", "ssm")
HEALTH_STATES = ("Green", "Yellow", "Red", "Grey")
SECRETS_BACKENDS = ("ssm", "secretsmanager")
#: Registry auth modes each platform can use. On v2 (ECS on AL2/AL2023) the ECS agent pulls the images with its own
#: credentials: ECR through the instance profile, or the Dockerrun v2 ``authentication`` file in S3; a ``docker
#: login`` on the instance (the ``ssm`` prebuild hook) gives it nothing (EB docs: "Using the ECS managed Docker
#: platform branch", "Authenticating with image repositories"; ECS docs: "Private registry authentication for
#: container instances").
PLATFORM_AUTH_MODES = {"v1": ("none", "ecr", "dockercfg", "ssm"), "v2": ("none", "ecr", "dockercfg"),
                       "compose": ("none", "ecr", "dockercfg", "ssm")}

DEFAULTS: dict[str, Any] = {
    "application": "",  # EB application; default: dockyard.app
    "bucket": "",  # S3 bucket for bundles, the dockercfg, locks and audit records
    "prefix": "dockyard",  # key prefix inside the bucket
    "endpoint_url": "",  # Elastic Beanstalk endpoint only (S3/SSM keep dockyard.aws.endpoint_url)
    "platform": "v2",  # v1 (Docker, one container) | v2 (ECS multi-container) | compose (Docker on AL2/AL2023)
    "auth": "auto",  # auto | none | ecr | dockercfg | ssm (not on v2); auto = ecr for ECR registries, else dockercfg
    "dockercfg_key": "",  # default <prefix>/<application>/dockercfg.json
    "dockercfg_format": "auto",  # auto | legacy | auths (auto: auths, what every current platform reads)
    "ssm_username": "",  # SSM parameter names for auth=ssm; default /<application>/registry/username|password
    "ssm_password": "",
    "ssm_secret_prefix": "",  # path (name prefix) of the secret keys' parameters/secrets; default /<application>/<env>/
    # keys of the .env file EB gets as environment secrets (option namespace
    # aws:elasticbeanstalk:application:environmentsecrets: the ARN of where the value is stored), never as values
    "secret_keys": [],
    # where secret_keys are stored: ssm (SecureString parameters) | secretsmanager (one secret per key, named by the
    # prefix without its leading "/")
    "secrets_backend": "ssm",
    "container_port": 8000,  # v1: the app container's port
    "host_port": 80,  # v2/compose: DOCKYARD_PORT, the instance port the compose file publishes its entry on
    "memory": 256,  # v2: MiB for containers whose compose service sets no mem_limit/mem_reservation
    "healthy_states": ["Green"],  # health the window accepts (add Yellow to accept warnings)
    "health_window": 30.0,  # seconds the health must stay accepted after Ready before a deploy counts
    "timeout": 900.0,  # overall deadline of one wait, seconds
    "poll_interval": 5.0,  # seconds between polls
    "smoke_path": "",  # eb.swap smoke test path; default: the environment's health_path
    "volumes": {},  # v2: what each compose named volume becomes: scratch | shared | /host/path | {efs: fs-...}
}

SCHEMA = keys_of(DEFAULTS, volumes=Names())
#: ``dockyard.environments.<env>.eb``
ENVIRONMENT_SCHEMA = {"name": None, "twin": None, "platform": None}


@dataclass(frozen=True)
class EbEnvironment:
    """One dockyard environment deployed to Elastic Beanstalk."""

    env: str  # dockyard's name (prod)
    name: str  # EB environment name
    twin: str  # blue/green twin ("" = none)
    platform: str


@dataclass(frozen=True)
class EbSettings:
    application: str
    bucket: str
    prefix: str
    endpoint_url: str
    platform: str
    auth: str
    dockercfg_key: str
    dockercfg_format: str
    ssm_username: str
    ssm_password: str
    ssm_secret_prefix: str
    secret_keys: tuple[str, ...]
    secrets_backend: str
    container_port: int
    host_port: int
    memory: int
    healthy_states: tuple[str, ...]
    health_window: float
    timeout: float
    poll_interval: float
    smoke_path: str
    environments: Mapping[str, EbEnvironment]
    volumes: Mapping[str, Any] = field(default_factory=dict)  # compose volume -> named_volumes.VolumeDecision

    def key(self, *parts: str) -> str:
        """An S3 key under ``<prefix>/<application>/``."""
        return "/".join(p.strip("/") for p in (self.prefix, self.application, *parts) if p.strip("/"))

    def secret_prefix(self, env: str) -> str:
        """The path the secret keys of dockyard environment ``env`` are stored under (ends with ``/``)."""
        prefix = self.ssm_secret_prefix or f"/{self.application}/{env}/"
        return prefix if prefix.endswith("/") else prefix + "/"

    def secret_name(self, env: str, key: str) -> str:
        """Where ``key`` of ``secret_keys`` is stored: an SSM parameter name, or a Secrets Manager secret name."""
        prefix = self.secret_prefix(env)
        return f"{prefix.lstrip('/')}{key}" if self.secrets_backend == "secretsmanager" else f"{prefix}{key}"

    def bundle_key(self, label: str) -> str:
        return self.key(f"{label}.zip")

    def environment(self, env: str) -> EbEnvironment:
        if env not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(
                f"environment {env!r} is not deployed to Elastic Beanstalk (target: eb environments: {known}); "
                f"set dockyard.environments.{env}.target: eb"
            )
        return self.environments[env]

    def require_auth_works_on(self, platform: str, where: str) -> None:
        """Refuse (one line) a registry auth mode that ``platform`` cannot use; ``where`` names the option that
        chose the platform (the settings' own platforms are checked by :func:`parse`)."""
        problem = auth_problem(self.auth, platform)
        if problem:
            raise ConfigError(f"dockyard.eb.auth: {where} chose the {platform} platform, but {problem}")

    def format_for(self, platform: str) -> str:
        """The dockercfg format ``platform`` reads: ``auths`` (what ``docker login`` writes) on every current one.

        The legacy ``.dockercfg`` format was for the Docker platforms on the Amazon Linux AMI (AL1), retired in 2022;
        the AL2/AL2023 Docker platforms read ``docker login``'s file unconverted (EB docs, "Docker configuration on
        Amazon Linux AMI (preceding Amazon Linux 2)"). ``legacy`` only when asked for."""
        if self.dockercfg_format != "auto":
            return self.dockercfg_format
        return "auths"


def auth_problem(auth: str, platform: str) -> str:
    """Why registry auth mode ``auth`` does not work on ``platform`` ("" when it does)."""
    if auth in PLATFORM_AUTH_MODES.get(platform, AUTH_MODES):
        return ""
    return (f"there the ECS agent pulls the images itself and never sees the `docker login` of auth {auth!r} (a "
            "prebuild hook): use auth 'dockercfg' (the Dockerrun v2 authentication file "
            "in S3) or 'ecr' (the instance profile), or the v1/compose platform")


def parse(settings: Settings) -> EbSettings:
    """Validate ``dockyard.eb`` and the ``eb`` keys of every environment whose target is ``eb``."""
    section = settings.section.section(SECTION)
    application = section.str("application") or settings.app
    platform = section.str("platform", "v2", choices=PLATFORMS)
    auth = section.str("auth", "auto", choices=AUTH_MODES)
    if auth == "auto":
        auth = "ecr" if settings.registry.kind == "ecr" else "dockercfg"
    states = section.strings("healthy_states", ("Green",))
    for state in states:
        if state not in HEALTH_STATES:
            raise section.fail("healthy_states", f"expected states among {', '.join(HEALTH_STATES)}, got {state!r}")
    if not states:
        raise section.fail("healthy_states", "name at least one state (Green)")
    prefix = section.str("prefix", "dockyard")
    environments: dict[str, EbEnvironment] = {}
    for name, env in settings.environments_deployed_over("eb").items():
        own = env.section.section("eb")
        environments[name] = EbEnvironment(
            env=name,
            name=own.str("name") or f"{application}-{name}",
            twin=own.str("twin"),
            platform=own.str("platform", platform, choices=PLATFORMS),
        )
    for name, target in environments.items():
        problem = auth_problem(auth, target.platform)
        if problem:
            own = target.platform != platform
            chosen = f"dockyard.environments.{name}.eb.platform" if own else "dockyard.eb.platform"
            raise section.fail("auth", f"environment {name} deploys to the {target.platform} platform ({chosen}), "
                                       f"but {problem}")
    parsed = EbSettings(
        application=application,
        bucket=section.bucket("bucket"),
        prefix=prefix,
        endpoint_url=section.url("endpoint_url"),
        platform=platform,
        auth=auth,
        dockercfg_key="",
        dockercfg_format=section.str("dockercfg_format", "auto", choices=("auto", "legacy", "auths")),
        ssm_username=section.str("ssm_username") or f"/{application}/registry/username",
        ssm_password=section.str("ssm_password") or f"/{application}/registry/password",
        ssm_secret_prefix=section.str("ssm_secret_prefix"),
        secret_keys=section.strings("secret_keys"),
        secrets_backend=section.str("secrets_backend", "ssm", choices=SECRETS_BACKENDS),
        container_port=section.int("container_port", 8000, minimum=1),
        host_port=section.int("host_port", 80, minimum=1),
        memory=section.int("memory", 256, minimum=4),
        healthy_states=states,
        health_window=section.float("health_window", 30, minimum=0),
        timeout=section.float("timeout", 900, minimum=1),
        poll_interval=section.float("poll_interval", 5, minimum=0.05),
        smoke_path=section.str("smoke_path"),
        environments=environments,
        volumes=volume_decisions(section),
    )
    key = section.str("dockercfg_key") or parsed.key("dockercfg.json")
    object.__setattr__(parsed, "dockercfg_key", key)
    return parsed

