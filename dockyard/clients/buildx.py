"""Docker Buildx: found wherever it is installed, and which builder (BuildKit or legacy) a build goes through.

``image.builder`` says: ``auto`` builds with BuildKit (``docker buildx build --load``, the engine's builtin BuildKit
through buildx's default ``docker`` driver, so the image lands in the local engine as before) when Buildx is
installed and with the legacy builder otherwise; ``buildkit`` requires Buildx; ``legacy`` never uses it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import ConfigError
from ..runner import Runner
from .compose import SYSTEM_PLUGIN_DIRS, user_plugin_dir

BUILDKIT = "buildkit"
LEGACY = "legacy"
CHOICES = ("auto", BUILDKIT, LEGACY)


@dataclass(frozen=True)
class Builder:
    """How images are built: ``kind`` (buildkit | legacy), the argv that starts a build, and what to report."""

    kind: str
    prefix: tuple[str, ...]  # ("docker", "buildx", "build", "--load") | ("docker", "build")
    version: str = ""  # buildx's version; "" for the legacy builder
    path: str = ""
    why: str = ""
    name: str = ""  # the Buildx builder image.builder names; "" = the current one (`docker buildx use`)

    @property
    def is_buildkit(self) -> bool:
        return self.kind == BUILDKIT

    @property
    def buildx(self) -> tuple[str, ...]:
        """The Buildx command itself (``docker buildx`` or the plugin binary), without ``build``."""
        return self.prefix[: self.prefix.index("build")]

    def describe(self) -> str:
        if self.is_buildkit:
            return f"BuildKit: Buildx {self.version}, {self.path} ({self.why})"
        return f"legacy builder (docker build; {self.why})"


LEGACY_BUILDER = Builder(LEGACY, ("docker", "build"), why="image.builder: legacy")

#: Compose builds through Buildx only from this version on ("compose build requires buildx 0.17 or later")
COMPOSE_MIN_BUILDX = (0, 17)


def compose_build_env(builder: Builder) -> dict[str, str]:
    """What Compose's own builds (``up --build``, ``run`` of a service whose image is missing) need to work with
    ``builder``: the legacy builder (``DOCKER_BUILDKIT=0``) unless Buildx is new enough for Compose. Once any Buildx
    is installed Compose refuses to build with an older one; Debian's is 0.13."""
    if builder.is_buildkit and _parsed(builder.version) >= COMPOSE_MIN_BUILDX:
        return {}
    return {"DOCKER_BUILDKIT": "0"}


def _parsed(version: str) -> tuple[int, ...]:
    numbers = []
    for part in version.split("+")[0].split("-")[0].split(".")[:3]:
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


@dataclass(frozen=True)
class BuildxInstall:
    prefix: tuple[str, ...]  # ("docker", "buildx") or the plugin binary run directly
    version: str
    path: str
    why: str


def _version(runner: Runner, argv: Sequence[str]) -> str:
    """The version ``<argv> version`` reports (``github.com/docker/buildx 0.13.1 <commit>``); "" when it fails."""
    try:
        result = runner.run([*argv, "version"], check=False, timeout=20)
    except Exception:  # noqa: BLE001 - a missing or broken binary is simply no Buildx
        return ""
    words = result.stdout.split()
    if not result.ok or len(words) < 2 or "buildx" not in words[0]:
        return ""
    return words[1]


def find_buildx(runner: Runner, *, environ: Mapping[str, str] | None = None,
                system_dirs: Sequence[str] = SYSTEM_PLUGIN_DIRS) -> BuildxInstall | None:
    """Buildx as the Docker CLI sees it (``docker buildx``), else a plugin binary it cannot see, run directly.

    ``DOCKER_CONFIG`` hides ``~/.docker/cli-plugins`` from the Docker CLI; the buildx binary also runs standalone.
    """
    env = os.environ if environ is None else environ
    version = _version(runner, ["docker", "buildx"])
    if version:
        return BuildxInstall(("docker", "buildx"), version, "docker buildx", "the Docker CLI's plugin")
    cli_dir = user_plugin_dir(env)
    home_dir = Path(env.get("HOME") or Path.home(), ".docker", "cli-plugins")
    for directory in dict.fromkeys([str(cli_dir), str(home_dir), *system_dirs]):
        binary = Path(directory, "docker-buildx")
        if binary.is_file() and os.access(binary, os.X_OK):
            version = _version(runner, [str(binary)])
            if version:
                return BuildxInstall((str(binary),), version, str(binary),
                                     "a plugin the Docker CLI does not see; run directly")
    return None


def choose_builder(setting: str, install: BuildxInstall | None, *, origin: str = "") -> Builder:
    """The builder ``image.builder`` asks for, given the Buildx found (None: none); ``origin`` is where it was set."""
    if setting == LEGACY:
        return LEGACY_BUILDER
    if install is None:
        if setting != "auto":
            set_in = f" (set in {origin})" if origin else ""
            raise ConfigError(f"dockyard.image.builder: {setting}, but Docker Buildx is not installed{set_in}: "
                              "run `bash scripts/setup.sh`, or set image.builder: auto or legacy")
        return Builder(LEGACY, ("docker", "build"), why="Docker Buildx not installed; image.builder: auto")
    if setting not in CHOICES:  # the name of a Buildx builder
        return Builder(BUILDKIT, (*install.prefix, "build", "--builder", setting, "--load"), version=install.version,
                       path=install.path, why=f"image.builder: {setting} (a Buildx builder); {install.why}",
                       name=setting)
    return Builder(BUILDKIT, (*install.prefix, "build", "--load"), version=install.version, path=install.path,
                   why=f"image.builder: {setting}; {install.why}")


def buildkit_version(runner: Runner, builder: Builder) -> str:
    """The BuildKit version of the builder's node (``docker buildx inspect``: the engine's builtin one); "" unknown."""
    buildx = builder.buildx
    try:
        result = runner.run([*buildx, "inspect", *((builder.name,) if builder.name else ())], check=False,
                            timeout=20)
    except Exception:  # noqa: BLE001 - only a detail of `inv doctor`
        return ""
    for line in result.stdout.splitlines():
        if line.startswith("BuildKit version:") or line.startswith("Buildkit:"):
            return line.split(":", 1)[1].strip()
    return ""


# --- image.cache: the layer cache a build imports and exports ----------------------------------------------------

CACHE_MODES = ("none", "inline", "registry")
CACHE_TAG = "buildcache"  # registry mode's cache image: <repository>:buildcache
#: Buildx drivers that export a cache to a registry (the `docker` driver, the engine's builtin BuildKit, cannot)
REGISTRY_CACHE_DRIVERS = ("docker-container", "remote", "kubernetes")


def builder_driver(runner: Runner, builder: Builder) -> str:
    """The driver of the builder's Buildx builder (``docker buildx inspect``: ``Driver: docker``); "" unknown."""
    if not builder.is_buildkit:
        return ""
    buildx = builder.buildx
    try:
        result = runner.run([*buildx, "inspect", *((builder.name,) if builder.name else ())], check=False,
                            timeout=20)
    except Exception:  # noqa: BLE001 - unknown, said so by the caller
        return ""
    if not result.ok:
        return ""
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Driver":
            return value.strip()
    return ""


def check_cache_driver(mode: str, builder: Builder, driver: str, *, origin: str = "") -> None:
    """Refuse, in one line, an ``image.cache`` the builder cannot do (before anything is built)."""
    set_in = f" (set in {origin})" if origin else ""
    if mode != "none" and not builder.is_buildkit:
        raise ConfigError(f"dockyard.image.cache: {mode} needs BuildKit, but the build uses the legacy builder "
                          f"({builder.why}){set_in}: install Buildx (bash scripts/setup.sh) or set image.cache: none")
    if mode == "registry" and driver not in REGISTRY_CACHE_DRIVERS:
        which = f"the {driver} driver" if driver else "a driver dockyard could not read (docker buildx inspect)"
        named = f"builder {builder.name!r}" if builder.name else "the current Buildx builder"
        raise ConfigError(
            f"dockyard.image.cache: registry needs a Buildx builder that exports a cache to a registry, but {named} "
            f"has {which}{set_in}: create one (`docker buildx create --name cache --driver docker-container`, or "
            "`--driver remote unix:///run/buildkit/buildkitd.sock`) and set image.builder: cache, or set "
            "image.cache: inline")


def cache_arguments(mode: str, repository: str, previous: Sequence[str] = ()) -> tuple[str, ...]:
    """The ``--cache-to``/``--cache-from`` options of ``image.cache`` (pure).

    ``inline``: the image carries its cache metadata (``--cache-to type=inline``, which the engine's builtin
    BuildKit can do) and a build reads the cache of ``previous`` images (the environment's last pushed image);
    ``registry``: all layers, intermediate stages too (``mode=max``), go to ``<repository>:buildcache`` and come
    back from there; ``none``: neither (the image still carries its inline cache metadata; see build_command).
    """
    if mode == "inline":
        return ("--cache-to", "type=inline", *[arg for ref in previous for arg in ("--cache-from", ref)])
    if mode == "registry":
        ref = f"{repository}:{CACHE_TAG}"
        return ("--cache-to", f"type=registry,ref={ref},mode=max", "--cache-from", f"type=registry,ref={ref}")
    return ()


# --- multi-platform indexes (dockyard.core.platforms) ------------------------------------------------------------


def imagetools_command(builder: Builder, target: str, sources: Sequence[str]) -> tuple[str, ...]:
    """``docker buildx imagetools create --tag TARGET SOURCE...``: one index of ``sources`` (``repo@sha256:...``)
    pushed as ``target``, registry to registry (nothing is pulled); Buildx logs in with the Docker CLI's config."""
    if not builder.is_buildkit:
        raise ConfigError(f"dockyard.image.platforms: joining platform images into an index needs Docker Buildx, "
                          f"but the build uses the legacy builder ({builder.why}): install Buildx "
                          "(bash scripts/setup.sh)")
    return (*builder.buildx, "imagetools", "create", "--tag", target, *sources)


def imagetools_create(runner: Runner, builder: Builder, target: str, sources: Sequence[str], *,
                      timeout: float) -> None:
    """Run :func:`imagetools_command`, bounded by ``timeout``; a failure is one line saying what the registry said."""
    from ..registry import transfer_error
    from ..runner import Command, TimedOut

    try:
        result = runner.run(Command(imagetools_command(builder, target, sources)), check=False, timeout=timeout)
    except TimedOut:
        from ..errors import Unreachable

        raise Unreachable(f"docker buildx imagetools create of {target} did not finish within {timeout:g}s: check "
                          "that the registry answers, or raise dockyard.registry.stall_timeout") from None
    if not result.ok:
        raise transfer_error("push", target, (result.stderr or result.stdout).strip())
