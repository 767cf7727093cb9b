"""The Docker CLI: pure command builders plus a thin client that runs them through a :class:`Runner`."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import CommandFailed, ConfigError, EngineUnavailable, Unreachable
from ..runner import Command, Result, Runner, Stalled
from .buildx import LEGACY_BUILDER, Builder

DOCKER = "docker"
#: seconds a push or pull may go without progress (``dockyard.registry.stall_timeout``)
STALL_TIMEOUT = 120.0


# --- builders (pure) -----------------------------------------------------------------------------------------


def build_command(
    *,
    context: Path,
    dockerfile: Path | None,
    tags: Sequence[str],
    labels: Mapping[str, str] = {},
    build_args: Mapping[str, str] = {},
    target: str = "",
    no_cache: bool = False,
    pull: bool = False,
    cache_from: Sequence[str] = (),
    builder: Builder | None = None,
    secrets: Sequence[str] = (),
    cache: Sequence[str] = (),
    platform: str = "",
) -> Command:
    """A build through ``builder`` (the legacy builder when None), with the same options either way.

    BuildKit: ``docker buildx build --load`` (the image lands in the local engine), ``--secret`` for each of
    ``secrets`` (``id=x,env=VAR`` / ``id=x,src=path``: names, never values), and ``--cache-to type=inline`` so the
    image carries its layer-cache metadata and a later build can use it with ``--cache-from`` once it is pushed
    (BuildKit's --cache-from only reads images built with an inline cache); ``cache`` are the ``image.cache``
    options (:func:`dockyard.clients.buildx.cache_arguments`), which replace that default --cache-to, and
    ``platform`` is ``--platform`` (``image.platforms``, one). Legacy: ``docker build`` with
    ``DOCKER_BUILDKIT=0``, which keeps a Docker CLI that has Buildx (23+) on the legacy builder.
    """
    builder = builder or LEGACY_BUILDER
    if secrets and not builder.is_buildkit:
        raise ConfigError("dockyard.image.build_secrets: build secrets need BuildKit, but the build uses the "
                          f"legacy builder ({builder.why}): install Buildx (bash scripts/setup.sh) and set "
                          "image.builder: auto or buildkit")
    argv: list[str] = list(builder.prefix)
    if dockerfile is not None:
        argv += ["--file", str(dockerfile)]
    for tag in tags:
        argv += ["--tag", tag]
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{key}={value}"]
    # Build args go through the environment (``--build-arg NAME`` with no value) so none is ever on argv.
    for key in sorted(build_args):
        argv += ["--build-arg", key]
    for secret in secrets:
        argv += ["--secret", secret]
    if target:
        argv += ["--target", target]
    if platform:
        if not builder.is_buildkit:
            raise ConfigError(f"dockyard.image.platforms: building for {platform} needs BuildKit, but the build uses "
                              f"the legacy builder ({builder.why}): install Buildx or remove image.platforms")
        argv += ["--platform", platform]
    if no_cache:
        argv.append("--no-cache")
    if pull:
        argv.append("--pull")
    for ref in cache_from:
        argv += ["--cache-from", ref]
    env = dict(build_args)
    if cache and not builder.is_buildkit:
        raise ConfigError("dockyard.image.cache: a layer cache to import and export needs BuildKit, but the build "
                          f"uses the legacy builder ({builder.why}): set image.cache: none")
    if builder.is_buildkit:
        argv += list(cache) if "--cache-to" in cache else ["--cache-to", "type=inline", *cache]
    else:
        env["DOCKER_BUILDKIT"] = "0"
    argv.append(str(context))
    return Command(tuple(argv), env=env)


def login_command(registry: str, username: str, password: str, *, config: str = "") -> Command:
    """``docker login`` with the password on stdin, never on the command line: the one login every path uses
    (``publish`` here, a staging host over SSH). ``config`` is a ``docker --config`` directory of its own."""
    options = ("--config", config) if config else ()
    return Command((DOCKER, *options, "login", "--username", username, "--password-stdin", registry),
                   stdin=password + "\n")


def stalled_error(verb: str, ref: str, stalled: Stalled) -> Unreachable:
    from ..config import registry_host

    host = registry_host(ref)
    doing = f"; last: {stalled.last[:120]}" if stalled.last else ""
    towards = "to" if verb == "push" else "from"
    return Unreachable(
        f"docker {verb} of {ref} {towards} {host} made no progress for {stalled.seconds:g}s and was stopped{doing}: "
        f"check that {host} answers (GET /v2/) and the network to it, or raise dockyard.registry.stall_timeout")


# --- values -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    id: str
    tags: tuple[str, ...]
    created: str
    size: int
    labels: Mapping[str, str]
    digests: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    user: str = ""  # the image's USER ("" = root)
    platform: str = ""  # os/arch[/variant] it was built for

    @classmethod
    def from_inspect(cls, data: Mapping) -> "Image":
        config = data.get("Config") or {}
        return cls(
            id=data["Id"],
            tags=tuple(data.get("RepoTags") or ()),
            created=data.get("Created", ""),
            size=int(data.get("Size") or 0),
            labels=dict(config.get("Labels") or {}),
            digests=tuple(data.get("RepoDigests") or ()),
            entrypoint=tuple(config.get("Entrypoint") or ()),
            user=str(config.get("User") or ""),
            platform="/".join(str(data[k]) for k in ("Os", "Architecture", "Variant") if data.get(k)),
        )


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    image: str
    state: str
    status: str
    labels: Mapping[str, str]
    ports: str = ""

    @property
    def service(self) -> str:
        return self.labels.get("com.docker.compose.service", "")


# --- client -------------------------------------------------------------------------------------------------------


class DockerClient:
    """``stall_timeout`` bounds pushes and pulls: one that shows no progress for that long is stopped."""

    def __init__(self, runner: Runner, *, stall_timeout: float = STALL_TIMEOUT) -> None:
        self.runner = runner
        self.stall_timeout = stall_timeout

    def run(self, cmd: Command | Sequence[str], **kwargs) -> Result:
        return self.runner.run(cmd, **kwargs)

    def server_version(self) -> str:
        """The engine's version; :class:`EngineUnavailable` when no engine answers."""
        try:
            result = self.run([DOCKER, "version", "--format", "{{.Server.Version}}"], check=False, timeout=20)
        except CommandFailed as exc:
            raise EngineUnavailable(f"Docker engine not reachable ({exc}); start it (see `inv doctor`)") from None
        except Exception as exc:
            if "command not found" in str(exc):
                raise EngineUnavailable("docker: command not found; install Docker (see `inv doctor`)") from None
            raise
        version = result.stdout.strip()
        if not result.ok or not version:
            said = (result.stderr.strip().splitlines() or ["no answer"])[-1]
            raise EngineUnavailable(
                f"Docker engine not reachable: {said}; start dockerd or set DOCKER_HOST (see `inv doctor`)"
            )
        return version

    def engine_platform(self) -> str:
        """The engine's own platform (``linux/amd64``); "" when it does not say."""
        result = self.run([DOCKER, "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"], check=False, timeout=20)
        platform = result.stdout.strip()
        return platform if result.ok and "/" in platform and "<no value>" not in platform else ""

    def inspect_image(self, ref: str) -> Image | None:
        result = self.run([DOCKER, "image", "inspect", ref], check=False)
        if not result.ok:
            return None
        return Image.from_inspect(json.loads(result.stdout)[0])

    def images(self, repository: str) -> list[Image]:
        result = self.run([DOCKER, "image", "ls", "--no-trunc", "--format", "{{.ID}}", repository])
        ids = sorted(set(result.stdout.split()))
        if not ids:
            return []
        data = json.loads(self.run([DOCKER, "image", "inspect", *ids]).stdout)
        return [Image.from_inspect(d) for d in data]

    def build(self, cmd: Command) -> Result:
        return self.run(cmd, capture=False)

    def tag(self, source: str, target: str) -> None:
        self.run([DOCKER, "tag", source, target])

    def remove_images(self, refs: Sequence[str], *, force: bool = False) -> Result:
        return self.run([DOCKER, "image", "rm", *(["--force"] if force else []), *refs], check=False)

    def containers(self, *, filters: Sequence[str] = (), all: bool = True) -> list[Container]:
        argv = [DOCKER, "ps", "--no-trunc", "--format", "{{json .}}"]
        if all:
            argv.append("--all")
        for f in filters:
            argv += ["--filter", f]
        out = []
        for line in self.run(argv).stdout.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            labels = dict(
                part.split("=", 1) for part in (row.get("Labels") or "").split(",") if "=" in part
            )
            out.append(
                Container(
                    id=row["ID"],
                    name=row["Names"],
                    image=row["Image"],
                    state=row.get("State", ""),
                    status=row.get("Status", ""),
                    labels=labels,
                    ports=row.get("Ports", ""),
                )
            )
        return out

    def login(self, registry: str, username: str, password: str) -> Result:
        return self.run(login_command(registry, username, password))

    def push(self, ref: str) -> Result:
        """``docker push``, its status lines shown; a stall, a refusal or an unreachable registry is one line."""
        return self.transfer("push", ref)

    def pull(self, ref: str) -> Result:
        return self.transfer("pull", ref)

    def transfer(self, verb: str, ref: str) -> Result:
        from ..registry import transfer_error

        command = Command((DOCKER, verb, ref))
        try:
            result = self.runner.watch(command, stall_timeout=self.stall_timeout)
        except Stalled as exc:
            raise stalled_error(verb, ref, exc) from None
        if not result.ok:
            raise transfer_error(verb, ref, (result.stderr or result.stdout).strip())
        return result

    def logs(self, container: str, *, tail: int = 50) -> str:
        result = self.run([DOCKER, "logs", "--tail", str(tail), container], check=False)
        return (result.stdout + result.stderr).strip()
