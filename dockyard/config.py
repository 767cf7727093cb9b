"""The project's settings: one typed model read from the ``dockyard:`` section of Invoke's config.

Every key has a default in :data:`DEFAULTS` (declared with ``ns.configure``) so ``invoke.yaml``, ``-f`` files and
``INVOKE_DOCKYARD_*`` variables can all override it. :func:`load_settings` validates everything once; an error
names the key, where its value came from and what was expected.

Feature packages (releases, Elastic Beanstalk, staging over SSH, ECS, CI) keep their own keys under their own
section in their ``settings`` module (``SECTION``, ``DEFAULTS``, ``SCHEMA``, ``parse``); they validate with
:class:`~dockyard.section.Section`, and :class:`Settings` gives each parsed section a typed property
(``settings.eb``). Any key no schema knows is refused with the nearest known one.
"""
from __future__ import annotations

import copy
import difflib
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from . import release_settings
from .ci import settings as ci_settings
from .ci.settings import CiSettings
from .core import hooks as hooks_settings
from .core import static as static_settings
from .core.entrypoint import MODES as entrypoint_modes
from .core.hooks import HooksSettings
from .core.static import StaticSettings
from .eb import settings as eb_settings
from .eb.settings import EbSettings
from .ecs import settings as ecs_settings
from .ecs.settings import EcsSettings
from .errors import ConfigError, UnknownEnvironment
from .health import HealthSetting
from .release_settings import ReleaseSettings
from .section import Items, Names, Origin, Section, check_keys, describe, invoke_origin, keys_of, no_origin
from .staging import settings as ssh_settings
from .staging.settings import SshSettings

#: The modules that own a section of the settings, in the order they are parsed.
FEATURES = (release_settings, eb_settings, ssh_settings, ecs_settings, ci_settings, hooks_settings, static_settings)

ENVIRONMENT_DEFAULTS: dict[str, Any] = {
    "compose": "",  # compose file, relative to the project root; "" = no local stack
    "env_file": "",  # default: environments/<name>/.env
    "app_service": "web",
    "port": 0,  # host port the stack publishes (passed to compose as DOCKYARD_PORT); 0 = no HTTP check
    "health_path": "",  # default: dockyard.health_path
    "health_timeout": 90,
    "test_command": "python manage.py test",
    "shell": "sh",
    "target": "",  # how the environment is deployed: "", "eb", "ssh" or "ecs"
    "project_name": "",  # compose project; default <app>-<env>
    # run once per deploy in a one-off container of the new image, before it takes traffic; "" = none
    "release_command": "",
    "release_command_timeout": 600,  # seconds the release command may run before the deploy stops
}

#: a Buildx builder's name (`docker buildx create --name NAME`), as image.builder may give one
BUILDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
#: an image.platforms entry: os/arch[/variant] (linux/amd64, linux/arm64, linux/arm/v7)
PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")

CORE_DEFAULTS: dict[str, Any] = {
    "app": "app",
    "root": "",
    "health_path": "/health/",  # the route every environment's health check polls, unless it sets its own  # set by dockyard.namespace() to the directory of tasks.py
    "image": {
        "repository": "",  # registry host + path, e.g. 123.dkr.ecr.eu-west-1.amazonaws.com/shop
        "release_env": "prod",  # the environment whose image is released and tagged <short-sha>
        "build_args": {},  # passed to docker build and exported to compose (base images...)
        "keep": 5,  # image.prune keeps this many commit-tagged images
        "builder": "auto",  # auto | buildkit | legacy (see dockyard.clients.buildx)
        "build_secrets": [],  # [{id: token, env: NPM_TOKEN} or {id: netrc, src: path}]: BuildKit's --secret
        "cache": "none",  # none | inline | registry: the layer cache builds import and export (BuildKit)
        # [linux/amd64]: the platform images are built for; [] = the engine's own; two or more: releases are
        # multi-platform indexes (dockyard.core.platforms), local builds the engine's platform (else the first)
        "platforms": [],
    },
    "registry": {
        "url": "",  # default: the host part of image.repository
        "username": "",
        "password_env": "DOCKYARD_REGISTRY_PASSWORD",
        "kind": "auto",  # auto | v2 | ecr
        "stall_timeout": 120.0,  # seconds a docker push/pull may go without progress before it is stopped
    },
    "git": {"remote": "origin", "main_branch": "main"},
    "aws": {"region": "", "profile": "", "endpoint_url": "",
            # every AWS call's bounds: seconds to connect, seconds a response may stall, attempts in all
            "connect_timeout": 10.0, "read_timeout": 60.0, "max_attempts": 3,
            # botocore's retry mode for every client: standard (backoff with jitter) | adaptive (also rate-limits
            # the client once AWS throttles it)
            "retry_mode": "standard"},
    "compose_command": "auto",  # auto | v2 | v1
    "command_entrypoint": "bypass",  # bypass: commands run instead of the image's ENTRYPOINT; apply: through it
    "environments": {
        "dev": dict(ENVIRONMENT_DEFAULTS),
        "staging": dict(ENVIRONMENT_DEFAULTS),
        "prod": dict(ENVIRONMENT_DEFAULTS),
    },
}

TARGETS = ("", "eb", "ssh", "ecs")

#: The keys of ``environments.<env>``, the features' per-environment overrides included.
ENVIRONMENT_SCHEMA = keys_of(ENVIRONMENT_DEFAULTS, eb=eb_settings.ENVIRONMENT_SCHEMA,
                             ssh=ssh_settings.ENVIRONMENT_SCHEMA, ecs=ecs_settings.ENVIRONMENT_SCHEMA)
#: Every key the ``dockyard`` section may hold (see :mod:`dockyard.section`); any other is refused.
BUILD_SECRET_SCHEMA = {"id": None, "env": None, "src": None}
SCHEMA = keys_of(CORE_DEFAULTS, image=keys_of(CORE_DEFAULTS["image"], build_args=Names(),
                                              build_secrets=Items(BUILD_SECRET_SCHEMA)),
                 environments=Names(ENVIRONMENT_SCHEMA), **{module.SECTION: module.SCHEMA for module in FEATURES})


def defaults() -> dict[str, Any]:
    """Every dockyard key with its default, features included (for ``ns.configure``)."""
    merged = copy.deepcopy(CORE_DEFAULTS)
    for module in FEATURES:
        merged[module.SECTION] = copy.deepcopy(module.DEFAULTS)
    return merged


def deploy_target(entry: Mapping[str, Any]) -> str:
    """How an environment is deployed: ``eb``, ``ssh``, ``ecs``, or ``""`` (not deployed by dockyard).

    The one reading of ``environments.<env>.target``: the namespace asks it of an environment's raw entry (to
    add ``<env>.ssh-deploy``) before anything is validated; :attr:`Environment.target` is its validated value.
    """
    value = entry.get("target") or ""
    return value if isinstance(value, str) and value in TARGETS else ""


# --- the model ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Environment:
    """One configured environment (dev, staging, prod, ...)."""

    name: str
    compose: Path | None
    env_file: Path
    app_service: str
    port: int
    health_path: str
    health_timeout: int
    test_command: str
    shell: str
    target: str
    project_name: str
    section: Section = field(repr=False, compare=False)
    release_command: str = ""  # see dockyard.core.release_command
    release_command_timeout: int = 600
    #: the setting ``health_path`` came from, named when the check fails
    health_path_key: str = field(default="dockyard.health_path", compare=False)

    @property
    def health_setting(self) -> HealthSetting:
        return HealthSetting(self.health_path, self.health_path_key)

    @property
    def env_example(self) -> Path:
        return self.env_file.with_name(self.env_file.name + ".example")

    @property
    def health_url(self) -> str | None:
        if not self.port:
            return None
        return f"http://127.0.0.1:{self.port}{self.health_path}"

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}/" if self.port else None


@dataclass(frozen=True)
class Registry:
    url: str
    username: str
    password_env: str
    kind: str  # v2 | ecr
    stall_timeout: float = 120.0  # a docker push/pull with no progress for this long is stopped


@dataclass(frozen=True)
class BuildSecret:
    """A BuildKit build secret (``RUN --mount=type=secret,id=<id>``): read from environment variable ``env`` or from
    the file ``src`` when the build runs, never a build arg, never in a layer."""

    id: str
    env: str = ""
    src: Path | None = None

    @property
    def argument(self) -> str:
        """The value of ``--secret``: names the variable or file, never holds the secret."""
        return f"id={self.id},env={self.env}" if self.env else f"id={self.id},src={self.src}"


@dataclass(frozen=True)
class AwsBounds:
    """How long any AWS call may take: to connect, between bytes of the answer, and how often it is tried."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 3
    retry_mode: str = "standard"  # botocore's retry mode: standard | adaptive


RETRY_MODES = ("standard", "adaptive")


@dataclass(frozen=True)
class Features:
    """The parsed feature sections, each typed by the ``settings`` module of the feature that owns it."""

    release: ReleaseSettings
    eb: EbSettings
    ssh: SshSettings
    ecs: EcsSettings
    ci: CiSettings
    hooks: HooksSettings
    static: StaticSettings


@dataclass(frozen=True)
class Settings:
    """The validated ``dockyard:`` section: the core keys as fields, each feature section as a typed property."""

    root: Path
    app: str
    repository: str
    release_env: str
    build_args: Mapping[str, str]
    image_keep: int
    registry: Registry
    git_remote: str
    main_branch: str
    aws_region: str
    aws_profile: str
    aws_endpoint_url: str
    compose_command: str
    environments: Mapping[str, Environment]
    section: Section = field(repr=False, compare=False)
    command_entrypoint: str = "bypass"  # see dockyard.core.entrypoint
    aws_bounds: AwsBounds = field(default_factory=AwsBounds)
    builder: str = "auto"  # image.builder: auto | buildkit | legacy
    build_secrets: tuple[BuildSecret, ...] = ()
    image_platforms: tuple[str, ...] = ()  # image.platforms: os/arch[/variant]; () = the engine's own
    image_cache: str = "none"  # image.cache: none | inline | registry (see dockyard.clients.buildx.cache_arguments)
    features: Features | None = field(default=None, repr=False, compare=False)  # None only while they are parsed

    def environment(self, name: str) -> Environment:
        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise UnknownEnvironment(
                f"unknown environment {name!r}: configured ones are {known} "
                f"(add it under dockyard.environments in invoke.yaml)"
            )
        return self.environments[name]

    def environments_deployed_over(self, target: str) -> dict[str, Environment]:
        """The environments whose ``target`` is ``target`` (``eb``, ``ssh``, ``ecs``), by name."""
        return {name: env for name, env in self.environments.items() if env.target == target}

    def _features(self) -> Features:
        if self.features is None:
            raise RuntimeError("feature settings read while the feature sections are being parsed")
        return self.features

    @property
    def release(self) -> ReleaseSettings:
        return self._features().release

    @property
    def eb(self) -> EbSettings:
        return self._features().eb

    @property
    def ssh(self) -> SshSettings:
        return self._features().ssh

    @property
    def ecs(self) -> EcsSettings:
        return self._features().ecs

    @property
    def ci(self) -> CiSettings:
        return self._features().ci

    @property
    def hooks(self) -> HooksSettings:
        return self._features().hooks

    @property
    def static(self) -> StaticSettings:
        return self._features().static


_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_REPOSITORY = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


def registry_host(repository: str) -> str:
    """The registry part of an image repository (``docker.io`` when it has none)."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def parse_settings(data: Mapping[str, Any], origin: Origin = no_origin, *, root: Path | None = None) -> Settings:
    """Validate the whole ``dockyard`` mapping and return the model (features included).

    Unknown keys are refused first: a misspelt key is the likeliest cause of any other error.
    """
    check_keys(data, SCHEMA, "dockyard", origin)
    top = Section(data, "dockyard", origin)
    root_text = top.str("root")
    project_root = Path(root_text) if root_text else (root or Path.cwd())
    app = top.str("app", required=True)
    if not _NAME.match(app):
        raise top.fail("app", f"expected lower-case letters, digits, '-', '_' or '.', got {app!r}")

    image = top.section("image")
    repository = image.str("repository") or f"dockyard/{app}"
    if not _REPOSITORY.match(repository):
        raise image.fail("repository", f"not a valid image repository (host[:port]/path, lower case): {repository!r}")
    build_args = image.mapping("build_args")
    release_env = image.str("release_env", "prod")
    builder = image.str("builder", "auto")
    if builder not in ("auto", "buildkit", "legacy") and not BUILDER_NAME.fullmatch(builder):
        raise image.fail("builder", f"expected auto, buildkit, legacy or the name of a Buildx builder "
                         f"(`docker buildx ls`), got {builder!r}")
    image_cache = image.str("cache", "none", choices=("none", "inline", "registry"))
    image_platforms = image.strings("platforms")
    for platform in image_platforms:
        if not PLATFORM.fullmatch(platform):
            raise image.fail("platforms", f"expected os/arch[/variant] entries such as linux/amd64, got {platform!r}")
    if image_platforms and builder == "legacy":
        raise image.fail("platforms", "image.platforms needs BuildKit, and image.builder is legacy: set "
                         "image.builder: auto or buildkit")
    if image_cache != "none" and builder == "legacy":
        raise image.fail("cache", f"image.cache: {image_cache} needs BuildKit, and image.builder is legacy: set "
                         "image.builder: auto or buildkit, or image.cache: none")
    build_secrets = _build_secrets(image, project_root)
    if build_secrets and builder == "legacy":
        raise image.fail("build_secrets", "build secrets need BuildKit, and image.builder is legacy: set "
                         "image.builder: auto or buildkit (and install Buildx: bash scripts/setup.sh)")

    reg = top.section("registry")
    kind = reg.str("kind", "auto", choices=("auto", "v2", "ecr"))
    url = reg.str("url") or registry_host(repository)
    if kind == "auto":
        kind = "ecr" if ".dkr.ecr." in url else "v2"
    registry = Registry(url=url, username=reg.str("username"), password_env=reg.str("password_env"), kind=kind,
                        stall_timeout=reg.float("stall_timeout", 120.0, minimum=1))

    git = top.section("git")
    aws = top.section("aws")
    compose_command = top.str("compose_command", "auto", choices=("auto", "v2", "v1"))

    envs_section = top.section("environments")
    environments: dict[str, Environment] = {}
    for name, raw in envs_section.data.items():
        name = str(name)
        if not _NAME.match(name):
            raise envs_section.fail(name, "environment names are lower-case letters, digits, '-', '_'")
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise envs_section.fail(name, f"expected a mapping, got {describe(raw)}")
        env = Section({**ENVIRONMENT_DEFAULTS, **raw}, envs_section.full(name), origin)
        environments[name] = _parse_environment(name, env, project_root, app, top)

    if release_env and release_env not in environments:
        raise image.fail("release_env", f"no environment named {release_env!r}")

    settings = Settings(
        root=project_root,
        app=app,
        repository=repository,
        release_env=release_env,
        build_args=build_args,
        image_keep=image.int("keep", 5, minimum=1),
        registry=registry,
        git_remote=git.str("remote", "origin", required=True),
        main_branch=git.str("main_branch", "main", required=True),
        aws_region=aws.str("region"),
        aws_profile=aws.str("profile"),
        aws_endpoint_url=aws.url("endpoint_url"),
        compose_command=compose_command,
        environments=environments,
        section=top,
        command_entrypoint=top.str("command_entrypoint", "bypass", choices=entrypoint_modes),
        builder=builder,
        build_secrets=build_secrets,
        image_cache=image_cache,
        image_platforms=tuple(dict.fromkeys(image_platforms)),
        aws_bounds=AwsBounds(connect_timeout=aws.float("connect_timeout", 10.0, minimum=1),
                             read_timeout=aws.float("read_timeout", 60.0, minimum=1),
                             max_attempts=aws.int("max_attempts", 3, minimum=1),
                             retry_mode=aws.str("retry_mode", "standard", choices=RETRY_MODES)),
    )
    features = Features(
        release=release_settings.parse(settings),
        eb=eb_settings.parse(settings),
        ssh=ssh_settings.parse(settings),
        ecs=ecs_settings.parse(settings),
        ci=ci_settings.parse(settings),
        hooks=hooks_settings.parse(settings),
        static=static_settings.parse(settings),
    )
    return replace(settings, features=features)


_SECRET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _build_secrets(image: Section, root: Path) -> tuple[BuildSecret, ...]:
    raw = image.raw("build_secrets") or []
    if not isinstance(raw, (list, tuple)):
        raise image.fail("build_secrets", f"expected a list of {{id, env}} or {{id, src}} entries, got {describe(raw)}")
    secrets: list[BuildSecret] = []
    for number, entry in enumerate(raw, 1):
        name = f"build_secrets[{number}]"
        if not isinstance(entry, Mapping):
            raise image.fail(name, f"expected a mapping with id and env (or src), got {describe(entry)}")
        item = Section(entry, image.full(name), lambda _key: image.origin(image.full("build_secrets")))
        secret_id = item.str("id", required=True)
        if not _SECRET_ID.match(secret_id):
            raise item.fail("id", f"expected letters, digits, '_', '.' or '-', got {secret_id!r}")
        if secret_id in {s.id for s in secrets}:
            raise item.fail("id", f"{secret_id!r} is listed twice")
        env, src = item.str("env"), item.str("src")
        if bool(env) == bool(src):
            raise item.fail("id", f"secret {secret_id!r} needs exactly one source: env (a variable name) or src "
                            "(a file path)")
        if env and not _VARIABLE.match(env):
            raise item.fail("env", f"expected an environment variable name, got {env!r}")
        path = None
        if src:
            path = Path(src).expanduser()
            path = path if path.is_absolute() else root / path
            if any(ch in str(path) for ch in ",\n"):
                raise item.fail("src", f"a path with a comma or newline cannot be passed to --secret: {src!r}")
        secrets.append(BuildSecret(secret_id, env=env, src=path))
    return tuple(secrets)


def _release_command(env: Section) -> str:
    text = env.str("release_command").strip()
    if text:
        try:
            shlex.split(text)
        except ValueError as exc:
            raise env.fail("release_command", f"not a shell-style command line ({exc}): {text!r}") from None
    return text


def _parse_environment(name: str, env: Section, root: Path, app: str, top: Section) -> Environment:
    compose = env.path("compose", root)
    if compose is not None and compose.is_dir():
        raise env.fail("compose", f"{compose} is a directory; name the compose file")
    env_file_text = env.str("env_file") or f"environments/{name}/.env"
    owner = env if env.str("health_path") else top
    health_path = owner.str("health_path", "/health/", required=True)
    if not health_path.startswith("/"):
        raise owner.fail("health_path", f"expected a path starting with '/', got {health_path!r}")
    port = env.int("port", 0, minimum=0)
    if port > 65535:
        raise env.fail("port", f"expected a port number up to 65535, got {port}")
    return Environment(
        name=name,
        compose=compose,
        env_file=root / env_file_text,
        app_service=env.str("app_service", "web", required=True),
        port=port,
        health_path=health_path,
        health_timeout=env.int("health_timeout", 90, minimum=1),
        test_command=env.str("test_command"),
        shell=env.str("shell", "sh", required=True),
        target=env.str("target", "", choices=TARGETS),
        project_name=env.str("project_name") or f"{app}-{name}".replace(".", "-"),
        release_command=_release_command(env),
        release_command_timeout=env.int("release_command_timeout", 600, minimum=1),
        section=env,
        health_path_key=owner.full("health_path"),
    )


# --- INVOKE_DOCKYARD_* variables --------------------------------------------------------------------------------

#: Invoke's prefix for configuration variables (``inv``; a custom Program may use another).
ENV_PREFIX = "INVOKE_"


def environment_variables(config: Mapping[str, Any], prefix: str = ENV_PREFIX) -> dict[str, tuple[str, ...]]:
    """The variables Invoke reads for the ``dockyard`` section, each with its key path, derived the way Invoke does.

    Invoke names a variable after each leaf of the merged settings (``dockyard.environments.dev.port`` is
    ``INVOKE_DOCKYARD_ENVIRONMENTS_DEV_PORT``) and refuses to start a task when two leaves get the same name.
    """
    found: dict[str, tuple[str, ...]] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, Mapping):
            for name, value in node.items():
                walk(value, (*path, str(name)))
            return
        variable = prefix + "_".join(path).upper()
        if variable in found:
            raise ConfigError(f"{'.'.join(found[variable])} and {'.'.join(path)} both read {variable}, which Invoke "
                              "refuses: rename one of them")
        found[variable] = path

    walk(config, ("dockyard",))
    return found


def check_environment_variables(settings: Mapping[str, Any], files: list[Mapping[str, Any]],
                                environ: Mapping[str, str], prefix: str = ENV_PREFIX) -> None:
    """Refuse an ``INVOKE_DOCKYARD_*`` variable that Invoke would fail to read, or would silently ignore.

    ``settings`` are the defaults and ``files`` the ``dockyard`` sections of the settings files, in merge order:
    a variable's type is the type of the value it replaces. Invoke reads the variables only when a task starts,
    and a value it cannot cast ends in a traceback there; this runs when the collection loads instead.
    """
    from invoke.config import merge_dicts

    merged = copy.deepcopy(dict(settings))
    for data in files:
        merge_dicts(merged, copy.deepcopy(dict(data)))
    known = environment_variables(merged, prefix)
    for variable in sorted(v for v in environ if v.startswith(prefix + "DOCKYARD_")):
        path = known.get(variable)
        if path is None:
            close = difflib.get_close_matches(variable, list(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{variable}: not a dockyard setting, Invoke would ignore it{hint}")
        problem = _uncastable(_value_at(merged, path[1:]), environ[variable], ".".join(path))
        if problem:
            raise ConfigError(f"{variable}: {problem}")


def _value_at(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _uncastable(old: Any, text: str, key: str) -> str:
    """What is wrong with ``text`` replacing ``old`` at ``key`` under Invoke's casting rules ("" = nothing)."""
    if isinstance(old, bool):
        if text.lower() in ("", "0", "1", "true", "yes", "on"):
            return ""
        return f"expected 1 or 0 for {key}, got {describe(text)} (Invoke reads any text but 0 or empty as true)"
    if old is None or isinstance(old, str):
        return ""
    if isinstance(old, (list, tuple)):
        return f"{key} is a list, which Invoke cannot read from a variable; set it in invoke.yaml or a -f file"
    try:
        type(old)(text)
    except (TypeError, ValueError):
        kind = {int: "an integer", float: "a number"}.get(type(old), type(old).__name__)
        return f"expected {kind} for {key}, got {describe(text)}"
    return ""


def load_settings(c: Any) -> Settings:
    """Validate the ``dockyard`` section of an Invoke context's config (once per task run)."""
    config = c.config
    cached = getattr(config, "_dockyard_settings", None)
    if cached is not None:
        return cached
    raw = config.get("dockyard")
    if raw is None:
        raise ConfigError("no dockyard settings: build the collection with dockyard.namespace() in tasks.py")
    settings = parse_settings(_plain(raw), invoke_origin(config))
    try:
        object.__setattr__(config, "_dockyard_settings", settings)
    except Exception:  # pragma: no cover - a config object that refuses attributes just is not cached
        pass
    return settings


def _plain(value: Any) -> Any:
    """Invoke's DataProxy mappings as plain dicts."""
    if isinstance(value, Mapping) or hasattr(value, "items") and callable(value.items):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
