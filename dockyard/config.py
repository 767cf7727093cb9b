"""The project's settings: one typed model read from the ``dockyard:`` section of Invoke's config.

Every key has a default in :data:`DEFAULTS` (declared with ``ns.configure``) so ``invoke.yaml``, ``-f`` files and
``INVOKE_DOCKYARD_*`` variables can all override it. :func:`load_settings` validates everything once; an error
names the key, where its value came from and what was expected.

Feature modules (releases, Elastic Beanstalk, staging over SSH, ECS, CI) keep their own keys under their own
section; they validate with :class:`Section` and register in :data:`FEATURES`.
"""
from __future__ import annotations

import copy
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import ConfigError, UnknownEnvironment

#: Modules that own a config section: each has ``SECTION``, ``DEFAULTS`` and ``parse(settings)``.
FEATURES: tuple[str, ...] = (
    "dockyard.release_settings",
    "dockyard.eb.settings",
    "dockyard.staging.settings",
    "dockyard.ecs.settings",
    "dockyard.ci.settings",
)

ENVIRONMENT_DEFAULTS: dict[str, Any] = {
    "compose": "",  # compose file, relative to the project root; "" = no local stack
    "env_file": "",  # default: environments/<name>/.env
    "app_service": "web",
    "port": 0,  # host port the stack publishes (passed to compose as DOCKYARD_PORT); 0 = no HTTP check
    "health_path": "/health/",
    "health_timeout": 90,
    "test_command": "python manage.py test",
    "shell": "sh",
    "target": "",  # how the environment is deployed: "", "eb", "ssh" or "ecs"
    "project_name": "",  # compose project; default <app>-<env>
}

CORE_DEFAULTS: dict[str, Any] = {
    "app": "app",
    "root": "",  # set by dockyard.namespace() to the directory of tasks.py
    "image": {
        "repository": "",  # registry host + path, e.g. 123.dkr.ecr.eu-west-1.amazonaws.com/shop
        "release_env": "prod",  # the environment whose image is released and tagged <short-sha>
        "build_args": {},  # passed to docker build and exported to compose (base images...)
        "keep": 5,  # image.prune keeps this many commit-tagged images
    },
    "registry": {
        "url": "",  # default: the host part of image.repository
        "username": "",
        "password_env": "DOCKYARD_REGISTRY_PASSWORD",
        "kind": "auto",  # auto | v2 | ecr
    },
    "git": {"remote": "origin", "main_branch": "main"},
    "aws": {"region": "", "profile": "", "endpoint_url": ""},
    "compose_command": "auto",  # auto | v2 | v1
    "environments": {
        "dev": dict(ENVIRONMENT_DEFAULTS),
        "staging": dict(ENVIRONMENT_DEFAULTS),
        "prod": dict(ENVIRONMENT_DEFAULTS),
    },
}

TARGETS = ("", "eb", "ssh", "ecs")


def defaults() -> dict[str, Any]:
    """Every dockyard key with its default, features included (for ``ns.configure``)."""
    merged = copy.deepcopy(CORE_DEFAULTS)
    for name in FEATURES:
        module = importlib.import_module(name)
        merged[module.SECTION] = copy.deepcopy(module.DEFAULTS)
    return merged


# --- where a value came from -------------------------------------------------------------------------------

Origin = Callable[[str], str]


def invoke_origin(config: Any) -> Origin:
    """Return a function naming where dotted key ``dockyard.x.y`` was set in an Invoke ``Config``."""

    layers = [
        ("_overrides", lambda: "command-line overrides"),
        ("_runtime", lambda: _file_name(getattr(config, "_runtime_path", None), "-f file")),
        ("_env", None),
        ("_project", lambda: _file_name(getattr(config, "_project_path", None), "invoke.yaml")),
        ("_user", lambda: _file_name(getattr(config, "_user_path", None), "user config")),
        ("_system", lambda: _file_name(getattr(config, "_system_path", None), "system config")),
    ]

    def origin(key: str) -> str:
        parts = key.split(".")
        for attr, describe in layers:
            data = getattr(config, attr, None)
            if isinstance(data, Mapping) and _has_path(data, parts):
                if describe is None:
                    return "environment variable INVOKE_" + "_".join(p.upper() for p in parts)
                return describe()
        return "dockyard defaults"

    return origin


def _file_name(path: Any, fallback: str) -> str:
    if not path:
        return fallback
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _has_path(data: Mapping, parts: list[str]) -> bool:
    node: Any = data
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _no_origin(key: str) -> str:
    return "settings"


# --- typed reading of one section ---------------------------------------------------------------------------


class Section:
    """A mapping of settings at dotted ``key``, read with typed getters that fail with the key and its origin."""

    def __init__(self, data: Mapping[str, Any], key: str, origin: Origin = _no_origin) -> None:
        self.data = data
        self.key = key
        self.origin = origin

    def full(self, name: str) -> str:
        return f"{self.key}.{name}"

    def fail(self, name: str, problem: str) -> ConfigError:
        full = self.full(name)
        return ConfigError(f"{full}: {problem} (set in {self.origin(full)})")

    def raw(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def str(self, name: str, default: str = "", *, required: bool = False, choices: tuple[str, ...] = ()) -> str:
        value = self.data.get(name, default)
        if value is None:
            value = ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.fail(name, f"expected a string, got {_describe(value)}")
        if required and not value:
            raise self.fail(name, "is required and empty")
        if choices and value not in choices:
            raise self.fail(name, f"expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
        return value

    def int(self, name: str, default: int = 0, *, minimum: int | None = None) -> int:
        value = self.data.get(name, default)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)  # INVOKE_* variables arrive as text
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"expected an integer, got {_describe(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"expected an integer >= {minimum}, got {value}")
        return value

    def float(self, name: str, default: float = 0.0, *, minimum: float | None = None) -> float:
        value = self.data.get(name, default)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"expected a number, got {_describe(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"expected a number >= {minimum}, got {value}")
        return float(value)

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name, default)
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, got {_describe(value)}")
        return value

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.data.get(name, list(default))
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) for v in value):
            raise self.fail(name, f"expected a list of strings, got {_describe(value)}")
        return tuple(str(v) for v in value)

    def mapping(self, name: str) -> dict[str, str]:
        value = self.data.get(name) or {}
        if not isinstance(value, Mapping):
            raise self.fail(name, f"expected a mapping, got {_describe(value)}")
        out: dict[str, str] = {}
        for k, v in value.items():
            if isinstance(v, (Mapping, list)):
                raise self.fail(f"{name}.{k}", f"expected a string, got {_describe(v)}")
            out[str(k)] = "" if v is None else str(v)
        return out

    def section(self, name: str) -> "Section":
        value = self.data.get(name) or {}
        if not isinstance(value, Mapping):
            raise self.fail(name, f"expected a mapping, got {_describe(value)}")
        return Section(value, self.full(name), self.origin)

    def path(self, name: str, root: Path, *, must_exist: bool = True, default: str = "") -> Path | None:
        text = self.str(name, default)
        if not text:
            return None
        path = (root / text) if not Path(text).is_absolute() else Path(text)
        if must_exist and not path.exists():
            raise self.fail(name, f"{text} does not exist")
        return path


def _describe(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", str: "text", int: "an integer"}.get(
        type(value), type(value).__name__
    )
    text = repr(value)
    return f"{kind} {text if len(text) < 40 else text[:37] + '...'}"


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


@dataclass(frozen=True)
class Settings:
    """The validated ``dockyard:`` section."""

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
    features: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def environment(self, name: str) -> Environment:
        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise UnknownEnvironment(
                f"unknown environment {name!r}: configured ones are {known} "
                f"(add it under dockyard.environments in invoke.yaml)"
            )
        return self.environments[name]

    def feature(self, section: str) -> Any:
        """The parsed settings of a feature section (``release``, ``eb``, ``ssh``, ``ecs``, ``ci``)."""
        return self.features[section]


_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_REPOSITORY = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


def registry_host(repository: str) -> str:
    """The registry part of an image repository (``docker.io`` when it has none)."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def parse_settings(data: Mapping[str, Any], origin: Origin = _no_origin, *, root: Path | None = None) -> Settings:
    """Validate the whole ``dockyard`` mapping and return the model (features included)."""
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

    reg = top.section("registry")
    kind = reg.str("kind", "auto", choices=("auto", "v2", "ecr"))
    url = reg.str("url") or registry_host(repository)
    if kind == "auto":
        kind = "ecr" if ".dkr.ecr." in url else "v2"
    registry = Registry(url=url, username=reg.str("username"), password_env=reg.str("password_env"), kind=kind)

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
            raise envs_section.fail(name, f"expected a mapping, got {_describe(raw)}")
        env = Section({**ENVIRONMENT_DEFAULTS, **raw}, envs_section.full(name), origin)
        environments[name] = _parse_environment(name, env, project_root, app)

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
        aws_endpoint_url=aws.str("endpoint_url"),
        compose_command=compose_command,
        environments=environments,
        section=top,
        features={},
    )
    features: dict[str, Any] = {}
    for module_name in FEATURES:
        module = importlib.import_module(module_name)
        features[module.SECTION] = module.parse(settings)
    object.__setattr__(settings, "features", features)
    return settings


def _parse_environment(name: str, env: Section, root: Path, app: str) -> Environment:
    compose = env.path("compose", root)
    if compose is not None and compose.is_dir():
        raise env.fail("compose", f"{compose} is a directory; name the compose file")
    env_file_text = env.str("env_file") or f"environments/{name}/.env"
    health_path = env.str("health_path", "/health/")
    if not health_path.startswith("/"):
        raise env.fail("health_path", f"expected a path starting with '/', got {health_path!r}")
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
        section=env,
    )


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
