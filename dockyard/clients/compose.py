"""Docker Compose: found wherever it is installed (see :func:`find_compose`), then run as argv data."""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import CommandFailed, ConfigError, DockyardError, EngineUnavailable
from ..runner import Command, Result, Runner

# Where the Docker CLI looks for plugins besides the user's directory (cli/cli-plugins/manager, Unix).
SYSTEM_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
_announced: set[str] = set()


class ComposeUnavailable(EngineUnavailable):
    """No usable Docker Compose: the message names every place that was searched."""


@dataclass(frozen=True)
class ComposeInstall:
    """The Compose dockyard runs: its argv prefix, the version it reports, where it is and why it was chosen."""

    prefix: tuple[str, ...]
    version: str
    path: str
    why: str

    @property
    def major(self) -> int:
        match = _VERSION.match(self.version)
        return int(match.group(1)) if match else 0

    @property
    def is_v2(self) -> bool:
        return self.major >= 2

    def describe(self) -> str:
        kind = "v2" if self.is_v2 else "v1"
        return f"{kind} {self.version} at {self.path} ({self.why})"


def user_plugin_dir(environ: Mapping[str, str]) -> Path:
    """The plugin directory the Docker CLI reads for this user: ``$DOCKER_CONFIG/cli-plugins`` when it is set."""
    config = environ.get("DOCKER_CONFIG")
    return Path(config, "cli-plugins") if config else Path(environ.get("HOME") or Path.home(), ".docker", "cli-plugins")


def find_compose(
    runner: Runner,
    preference: str = "auto",
    *,
    system_dirs: Sequence[str] = SYSTEM_PLUGIN_DIRS,
) -> ComposeInstall:
    """The Compose to use: the Docker CLI's plugin first, then plugin binaries it cannot see, then ``docker-compose``.

    ``DOCKER_CONFIG`` hides ``~/.docker/cli-plugins`` from the Docker CLI, so a plugin there is run directly (a v2
    plugin binary is also a standalone Compose). v1 and v2 are told apart by the version each reports.
    """
    env = os.environ
    home_dir = Path(env.get("HOME") or Path.home(), ".docker", "cli-plugins")
    cli_dir = user_plugin_dir(env)
    searched: list[str] = []
    found: list[ComposeInstall] = []

    if preference in ("auto", "v2"):
        searched.append(f"`docker compose` (plugins in {cli_dir} and the system directories)")
        version = _reported_version(runner, ["docker", "compose", "version", "--short"])
        if version:
            path = next((str(d / "docker-compose") for d in (cli_dir, *map(Path, system_dirs))
                         if (d / "docker-compose").is_file()), "the Docker CLI's plugin path")
            found.append(ComposeInstall(("docker", "compose"), version, path, "the Docker CLI's compose plugin"))
        if not found:
            hidden = [] if home_dir == cli_dir else [home_dir]
            for directory in (*hidden, *map(Path, system_dirs)):
                candidate = directory / "docker-compose"
                searched.append(str(directory))
                if not os.access(candidate, os.X_OK) or candidate.is_dir():
                    continue
                version = _reported_version(runner, [str(candidate), "version", "--short"])
                if version:
                    why = ("a plugin the Docker CLI does not see while DOCKER_CONFIG is set; run directly"
                           if directory == home_dir else "a plugin the Docker CLI did not load; run directly")
                    found.append(ComposeInstall((str(candidate),), version, str(candidate), why))
                    break
    if not found:
        searched.append("docker-compose on PATH")
        binary = shutil.which("docker-compose", path=env.get("PATH"))
        if binary:
            version = _reported_version(runner, [binary, "version", "--short"])
            if version:
                found.append(ComposeInstall(("docker-compose",), version, binary, "the docker-compose binary on PATH"))

    if not found:
        raise ComposeUnavailable(
            f"Docker Compose not found (looked for {', '.join(searched)}): install Compose v2 "
            "with `bash scripts/setup.sh`, or put the compose plugin in one of those directories"
        )
    install = found[0]
    if preference == "v2" and not install.is_v2:
        raise ComposeUnavailable(
            f"dockyard.compose_command is v2 but the only Compose is {install.describe()}: install Compose v2 "
            "(bash scripts/setup.sh), or set compose_command: auto"
        )
    if not install.is_v2 and install.path not in _announced:
        print(f"dockyard: Compose v2 not found; using the v1 `docker-compose` binary {install.version}", file=sys.stderr)
        _announced.add(install.path)
    return install


def detect_compose(runner: Runner, preference: str = "auto") -> tuple[str, ...]:
    """The compose command prefix (see :func:`find_compose`)."""
    return find_compose(runner, preference).prefix


def _reported_version(runner: Runner, argv: list[str]) -> str:
    """The version a ``version --short`` call printed ("2.40.3", "v2.1.0", "1.29.2"), or "" when it failed."""
    try:
        result = runner.run(argv, check=False, timeout=30)
    except DockyardError:  # not installed, or hung
        return ""
    if not result.ok:
        return ""
    match = _VERSION.search(result.stdout.strip())
    return match.group(0).lstrip("v") if match else ""


@dataclass(frozen=True)
class ComposeProject:
    """One stack: a compose file run under a project name with dockyard's variables exported."""

    prefix: tuple[str, ...]
    name: str
    file: Path
    env: Mapping[str, str] = field(default_factory=dict)
    overrides: tuple[Path, ...] = ()  # more compose files merged over ``file`` (dockyard's static proxy)

    def command(self, *args: str, stdin: str | None = None) -> Command:
        files = [a for path in (self.file, *self.overrides) for a in ("--file", str(path))]
        return Command((*self.prefix, "--project-name", self.name, *files, *args), env=dict(self.env), stdin=stdin)

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

    def run(self, service: str, argv: Sequence[str], *, tty: bool = True, entrypoint: str | None = None) -> Command:
        """A one-off container; ``entrypoint`` replaces the image's (None keeps it)."""
        override = [] if entrypoint is None else ["--entrypoint", entrypoint]
        return self.command("run", "--rm", "--no-deps", *([] if tty else ["-T"]), *override, service, *argv)

    def release_run(self, service: str, argv: Sequence[str], *, name: str, entrypoint: str | None = None) -> Command:
        """The release command's one-off container: named (a timeout removes it), its dependencies started (a
        migration needs its database), no terminal, removed afterwards."""
        override = [] if entrypoint is None else ["--entrypoint", entrypoint]
        return self.command("run", "--rm", "-T", "--name", name, *override, service, *argv)

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


# --- the resolved model of one compose file (dockyard.compose_model) -------------------------------------------------

#: What Compose itself needs from the caller's environment; nothing else reaches its interpolation.
PASSED_ENVIRONMENT = ("PATH", "HOME", "DOCKER_CONFIG")


def resolved_config_command(prefix: Sequence[str], project_dir: Path, variables_file: Path, model_json: str,
                            environ: Mapping[str, str]) -> Command:
    """``docker compose config`` of a model given on stdin, interpolated with ``variables_file`` only.

    ``env -i`` keeps the caller's shell variables out of the result, ``--env-file`` replaces the ``.env`` Compose
    would read beside the file, and ``--project-directory`` keeps relative paths relative to the compose file.
    """
    passed = [f"{k}={environ[k]}" for k in PASSED_ENVIRONMENT if environ.get(k)]
    return Command(("env", "-i", *passed, *prefix, "--project-directory", str(project_dir), "--env-file",
                    str(variables_file), "--file", "-", "config", "--format", "json"), stdin=model_json)


def dotenv(variables: Mapping[str, str]) -> str:
    """``variables`` as a Compose env file: single-quoted, so Compose takes every value literally."""
    lines = []
    for key, value in sorted(variables.items()):
        value = str(value)
        if "'" in value or "\n" in value:
            raise ConfigError(f"compose variable {key}: a value with a single quote or a newline cannot be passed to "
                              "Compose literally; change it")
        lines.append(f"{key}='{value}'")
    return "\n".join(lines) + "\n"


def compose_resolver(runner: Runner) -> Any:
    """A ``resolve(path, raw_model, variables)`` that runs Compose v2, or None when there is no Compose v2 here."""
    try:
        install = find_compose(runner)
    except ComposeUnavailable:
        return None
    if not install.is_v2:
        return None

    def resolve(path: Path, raw: Mapping[str, Any], variables: Mapping[str, str]) -> dict[str, Any]:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="dockyard-compose-") as tmp:
            variables_file = Path(tmp, "variables.env")
            variables_file.touch(mode=0o600)
            variables_file.write_text(dotenv(variables))
            command = resolved_config_command(install.prefix, path.parent, variables_file, json.dumps(raw), os.environ)
            result = runner.run(command, check=False, timeout=120)
        if not result.ok:
            said = [line.strip() for line in result.stderr.strip().splitlines() if line.strip()]
            raise ConfigError(f"{path}: invalid compose file: {said[-1] if said else 'no detail'}")
        return json.loads(result.stdout)

    return resolve
