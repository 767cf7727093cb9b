"""Settings of the ``dockyard.ci`` section: the testing image, its service containers, caches, CI providers.

``DEFAULTS`` declares every key with its default; ``parse`` validates the section once, at load, and returns a
:class:`CiSettings`. Services are a mapping (name -> image, environment, readiness probe); Invoke merges
mappings, so a project adds services by naming them and switches a default one off with ``enabled: false``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..section import Names, Section, keys_of

if TYPE_CHECKING:
    from ..config import Settings

SECTION = "ci"

PROVIDERS = ("circleci", "github")
AWS_AUTH = ("oidc", "keys", "none")
_SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")

DEFAULTS: dict[str, Any] = {
    "dockerfile": "docker/app/Dockerfile",  # relative to the project root
    "context": ".",
    "build_args": {"APP_ENV": "testing"},  # added to dockyard.image.build_args for the testing image
    "tag_suffix": "testing",  # the testing image is <repository>:<short-sha>-<suffix>; never pushed
    "cache_from": ["latest"],  # registry tags whose layers seed the build ("{branch}": the current branch)
    "test_command": "",  # default: dockyard.environments.dev.test_command
    "setup_command": "",  # schema / fixtures, run in the testing image before the tests ("" = none)
    "env": {  # the test container's environment (service names resolve on the private network)
        "DJANGO_SECRET_KEY": "insecure-ci-only-key",
        "REDIS_URL": "redis://redis:6379/0",
        "DATABASE_URL": "mysql://test:testing@mariadb:3306/test",
    },
    "reports_dir": "reports/ci",  # host directory mounted at /reports (DOCKYARD_REPORTS_DIR in the container)
    "ready_timeout": 120,  # seconds each service gets to pass its readiness probe
    "cache_dir": ".ci-cache/images",  # where ci.cache.save writes service images (persist it in CI)
    "cache_images": [],  # more images to cache besides the services' (e.g. the build's base image)
    "services": {
        "redis": {
            "enabled": True,
            "image": "dockyard-base/redis:bookworm",  # in CI: redis:7.0.15 (pin a version, never latest)
            "env": {},
            "ready": ["redis-cli", "-h", "127.0.0.1", "ping"],
            "ready_output": "PONG",
        },
        "mariadb": {
            "enabled": True,
            "image": "dockyard-base/mariadb:bookworm",  # in CI: mariadb:10.11.8
            "env": {"MYSQL_ROOT_PASSWORD": "testing-root", "MYSQL_DATABASE": "test", "MYSQL_USER": "test",
                    "MYSQL_PASSWORD": "testing"},
            # a real query over TCP as the app's user: the entrypoint's init-time server does not listen on TCP
            "ready": ["sh", "-c", 'MYSQL_PWD="$MYSQL_PASSWORD" mariadb --protocol=tcp -h 127.0.0.1 -u"$MYSQL_USER" '
                                  '"$MYSQL_DATABASE" -e "SELECT 1"'],
            "ready_output": "",
        },
    },
    "provider": "github",  # ci.config default: circleci | github
    "staging_branch": "staging",  # pushes here build, push and deploy the commit image of staging
    "release_tag_pattern": "v*",  # tags like this deploy
    # inv invocations CI runs after the tests, checked against the project's own tasks and flags. A bare
    # {version} (release tag without its prefix) goes to the task's `version` argument, positional or --version.
    "staging_tasks": ["image.push staging", "staging.setup", "staging.ssh-deploy"],  # on pushes to staging_branch
    "release_tasks": ["publish {version}", "deploy {version}"],  # on release tags
    "python_version": "3.11",
    # how CI installs dockyard and the project's tasks; "" = `pip install -r requirements.txt` when the project
    # has one, else `pip install .` (pyproject.toml / setup.py)
    "install_command": "",
    "aws_auth": "oidc",  # oidc (a role assumed with the provider's token) | keys (static secrets) | none
    "aws_role_arn": "",  # the role CI assumes; "" = the variable AWS_ROLE_ARN (GitHub `vars`, CircleCI context)
    "github_repository": "",  # owner/name for the trust policy; "" = from the git remote
    "circleci_org_id": "",  # CircleCI organisation ID (the OIDC issuer and audience)
    "circleci_project_id": "",  # CircleCI project ID ("" = every project of the organisation)
    "ssh_key_secret": "SSH_PRIVATE_KEY",  # secret holding the deploy key (written to a 0600 file)
    "ssh_known_hosts_secret": "SSH_KNOWN_HOSTS",  # secret holding the hosts' known_hosts lines
    "env_secret_prefix": "DOCKYARD_ENV_",  # one secret per environment holding its whole .env (DOCKYARD_ENV_STAGING)
    "secrets": [],  # more secrets the deploy jobs export (names in the provider's store; values never written)
}

#: ``services.<name>``
SERVICE_SCHEMA = {"enabled": None, "image": None, "env": Names(), "ready": None, "ready_output": None}
SCHEMA = keys_of(DEFAULTS, build_args=Names(), env=Names(), services=Names(SERVICE_SCHEMA))


@dataclass(frozen=True)
class ServiceSpec:
    """One service container the tests need (redis, a database...)."""

    name: str
    image: str
    env: Mapping[str, str] = field(default_factory=dict)
    ready: tuple[str, ...] = ()  # argv run inside the container; exit 0 (and ready_output, if set) = ready
    ready_output: str = ""


@dataclass(frozen=True)
class CiSettings:
    dockerfile: Path
    context: Path
    build_args: Mapping[str, str]
    tag_suffix: str
    cache_from: tuple[str, ...]
    test_command: str
    setup_command: str
    env: Mapping[str, str]
    reports_dir: Path
    ready_timeout: int
    cache_dir: Path
    cache_images: tuple[str, ...]
    services: tuple[ServiceSpec, ...]
    provider: str
    staging_branch: str
    release_tag_pattern: str
    staging_tasks: tuple[str, ...]
    release_tasks: tuple[str, ...]
    python_version: str
    install_command: str
    aws_auth: str
    aws_role_arn: str
    github_repository: str
    circleci_org_id: str
    circleci_project_id: str
    ssh_key_secret: str
    ssh_known_hosts_secret: str
    env_secret_prefix: str
    secrets: tuple[str, ...]


def parse(settings: Settings) -> CiSettings:
    """Validate ``dockyard.ci`` (every key, with the key and its file named on error)."""
    ci: Section = settings.section.section(SECTION)
    root: Path = settings.root
    tag_suffix = ci.str("tag_suffix", DEFAULTS["tag_suffix"], required=True)
    if not tag_suffix.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ci.fail("tag_suffix", f"expected letters, digits, '-', '_' or '.', got {tag_suffix!r}")
    test_command = ci.str("test_command")
    if not test_command and "dev" in settings.environments:
        test_command = settings.environments["dev"].test_command
    return CiSettings(
        dockerfile=root / ci.str("dockerfile", DEFAULTS["dockerfile"], required=True),
        context=root / ci.str("context", ".", required=True),
        build_args=ci.mapping("build_args"),
        tag_suffix=tag_suffix,
        cache_from=ci.strings("cache_from"),
        test_command=test_command or "python manage.py test",
        setup_command=ci.str("setup_command"),
        env=ci.mapping("env"),
        reports_dir=root / ci.str("reports_dir", DEFAULTS["reports_dir"], required=True),
        ready_timeout=ci.int("ready_timeout", 120, minimum=1),
        cache_dir=root / ci.str("cache_dir", DEFAULTS["cache_dir"], required=True),
        cache_images=ci.strings("cache_images"),
        services=_services(ci),
        provider=ci.str("provider", "github", choices=PROVIDERS),
        staging_branch=ci.str("staging_branch", "staging", required=True),
        release_tag_pattern=ci.str("release_tag_pattern", "v*", required=True),
        staging_tasks=ci.strings("staging_tasks"),
        release_tasks=ci.strings("release_tasks"),
        python_version=ci.str("python_version", "3.11", required=True),
        install_command=ci.str("install_command"),
        aws_auth=ci.str("aws_auth", "oidc", choices=AWS_AUTH),
        aws_role_arn=_role_arn(ci),
        github_repository=ci.str("github_repository"),
        circleci_org_id=ci.str("circleci_org_id"),
        circleci_project_id=ci.str("circleci_project_id"),
        ssh_key_secret=_secret_name(ci, "ssh_key_secret"),
        ssh_known_hosts_secret=_secret_name(ci, "ssh_known_hosts_secret"),
        env_secret_prefix=_secret_name(ci, "env_secret_prefix"),
        secrets=tuple(_secret_name(ci, "secrets", name) for name in ci.strings("secrets")),
    )


def _secret_name(ci: Any, key: str, value: str | None = None) -> str:
    name = ci.str(key, DEFAULTS[key], required=True) if value is None else value
    if not _SECRET_NAME.match(name):
        raise ci.fail(key, f"expected a variable name (letters, digits, '_'), got {name!r}")
    return name


def _role_arn(ci: Any) -> str:
    arn = ci.str("aws_role_arn")
    if arn and not _ROLE_ARN.match(arn):
        raise ci.fail("aws_role_arn", f"expected arn:aws:iam::<12-digit account>:role/<name>, got {arn!r}")
    return arn


def _services(ci: Any) -> tuple[ServiceSpec, ...]:
    raw = ci.raw("services") or {}
    if not isinstance(raw, Mapping):
        raise ci.fail("services", "expected a mapping of service name -> {image, env, ready}")
    services = []
    for name, entry in raw.items():
        name = str(name)
        if isinstance(entry, Mapping) and entry.get("enabled", True) in (False, "false", "no", "0"):
            continue  # Invoke cannot merge null over a default mapping, so a default is switched off this way
        if not name.replace("-", "").replace("_", "").isalnum() or not name[0].isalnum():
            raise ci.fail(f"services.{name}", "service names are letters, digits, '-' and '_'")
        svc = ci.section("services").section(name)
        ready = svc.raw("ready", [])
        if isinstance(ready, str):
            ready = ["sh", "-c", ready]
        if not isinstance(ready, (list, tuple)) or not all(isinstance(a, (str, int)) for a in ready):
            raise svc.fail("ready", "expected a command: a list of arguments or one shell line")
        svc.bool("enabled", True)
        services.append(ServiceSpec(
            name=name,
            image=svc.str("image", required=True),
            env=svc.mapping("env"),
            ready=tuple(str(a) for a in ready),
            ready_output=svc.str("ready_output"),
        ))
    return tuple(services)
