"""Docker commands of a CI test run, as data (pure builders; :mod:`dockyard.ci.testrun` runs them)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from ..core.entrypoint import BYPASS, shell_run
from ..runner import Command

DOCKER = "docker"
RUN_LABEL = "dev.dockyard.ci.run"
APP_LABEL = "dev.dockyard.app"
REPORTS_MOUNT = "/reports"


def _env_flags(env: Mapping[str, str]) -> list[str]:
    # ``-e NAME`` without a value: docker reads it from the command's environment, so no value is on argv.
    flags: list[str] = []
    for name in sorted(env):
        flags += ["--env", name]
    return flags


def network_create(network: str, run_id: str, app: str) -> Command:
    return Command((DOCKER, "network", "create", "--label", f"{RUN_LABEL}={run_id}", "--label", f"{APP_LABEL}={app}",
                    network))


def network_remove(network: str) -> Command:
    return Command((DOCKER, "network", "rm", network))


def service_run(*, name: str, alias: str, image: str, network: str, env: Mapping[str, str], run_id: str,
                app: str) -> Command:
    """Start one service container, reachable as ``alias`` on the private network; no port is published."""
    argv = [DOCKER, "run", "--detach", "--name", name, "--network", network, "--network-alias", alias,
            "--label", f"{RUN_LABEL}={run_id}", "--label", f"{APP_LABEL}={app}", *_env_flags(env), image]
    return Command(tuple(argv), env=dict(env))


def probe(container: str, ready: Sequence[str]) -> Command:
    """The readiness probe, run inside the service container."""
    return Command((DOCKER, "exec", container, *ready))


def test_run(*, name: str, image: str, network: str, command: str, env: Mapping[str, str], run_id: str, app: str,
             reports: Path | None = None, entrypoint: str = BYPASS) -> Command:
    """Run ``command`` (a shell line) in the testing image, attached to the services' network.

    ``entrypoint`` is ``dockyard.command_entrypoint`` (see :mod:`dockyard.core.entrypoint`): by default the line
    runs in ``sh`` instead of the image's ENTRYPOINT, so ``ENTRYPOINT ["python3"]`` does not receive ``sh``.
    """
    argv = [DOCKER, "run", "--rm", "--name", name, "--network", network,
            "--label", f"{RUN_LABEL}={run_id}", "--label", f"{APP_LABEL}={app}"]
    env = dict(env)
    if reports is not None:
        argv += ["--volume", f"{reports}:{REPORTS_MOUNT}"]
        env["DOCKYARD_REPORTS_DIR"] = REPORTS_MOUNT
    argv += [*_env_flags(env), *shell_run(entrypoint, image, command)]
    return Command(tuple(argv), env=env)


def containers_of_run(run_id: str) -> Command:
    return Command((DOCKER, "ps", "--all", "--quiet", "--filter", f"label={RUN_LABEL}={run_id}"))


def remove_containers(ids: Sequence[str]) -> Command:
    return Command((DOCKER, "rm", "--force", "--volumes", *ids))


def save_image(image: str, archive: Path) -> Command:
    return Command((DOCKER, "save", "--output", str(archive), image))


def load_image(archive: Path) -> Command:
    return Command((DOCKER, "load", "--input", str(archive)))
