"""``eb.local``: run a v2 or compose bundle on the local Docker engine, as ``eb local run`` once did.

The bundle is unpacked into a temporary directory (never the working tree). A compose bundle runs as it is; a v2
bundle's container definitions are turned back into a compose file (the inverse of :mod:`dockyard.containers`),
so what runs is what the bundle says, not the project's compose file. Environment properties come from the
environment's ``.env`` (written as the bundle's ``.env``, as the platform does, 0600), in a directory only its owner
can read and nobody can guess (``mkdtemp``), and removed once ``up`` ends, whether it worked or not. Port 80 is published on
``127.0.0.1:<port>``; the health path must answer 2xx.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Refused

ROOT_PREFIX = "/var/app/current"


def compose_from_v2(document: dict[str, Any], port: int) -> dict[str, Any]:
    """A compose model equivalent to a Dockerrun v2 document, port 80 published on ``127.0.0.1:port``."""
    volumes = {v["name"]: (v.get("host") or {}).get("sourcePath") for v in document.get("volumes") or []}
    services: dict[str, Any] = {}
    for container in document.get("containerDefinitions") or []:
        service: dict[str, Any] = {"image": container["image"], "env_file": [".env"]}
        if container.get("command"):
            service["command"] = list(container["command"])
        if container.get("entryPoint"):
            service["entrypoint"] = list(container["entryPoint"])
        if container.get("environment"):
            service["environment"] = {e["name"]: e["value"] for e in container["environment"]}
        ports = []
        for mapping in container.get("portMappings") or []:
            if int(mapping.get("hostPort") or 0) == 80:
                ports.append(f"127.0.0.1:{port}:{mapping['containerPort']}")
        if ports:
            service["ports"] = ports
        mounts = []
        for mount in container.get("mountPoints") or []:
            source = volumes.get(mount["sourceVolume"])
            if source:
                source = "./" + source[len(ROOT_PREFIX):].lstrip("/")
            else:
                source = mount["sourceVolume"]
            mounts.append(f"{source}:{mount['containerPath']}" + (":ro" if mount.get("readOnly") else ""))
        if mounts:
            service["volumes"] = mounts
        if container.get("links"):
            service["links"] = list(container["links"])
        if container.get("memory"):
            service["mem_limit"] = f"{container['memory']}m"
        services[container["name"]] = service
    named = {name: {} for name, source in volumes.items() if not source}
    return {"services": services, **({"volumes": named} if named else {})}


def run_local(service: Any, version: str = "", *, port: int, down: bool = False) -> None:
    from ..clients.compose import ComposeClient, ComposeProject, detect_compose

    project = service.project
    name = f"{service.settings.app}-eblocal-{service.env.name}".replace(".", "-")
    prefix = detect_compose(project.runner, service.settings.compose_command)

    def compose_in(directory: Path) -> ComposeClient:
        return ComposeClient(project.runner, ComposeProject(prefix, name, directory / "docker-compose.yml"))

    if down:
        directories = bundle_directories(name)
        if directories:
            newest = directories[-1]
            write_private(newest / ".env", "")  # compose loads the env_file it names; its values are not needed
            project.runner.run(compose_in(newest).project.down(volumes=True), capture=False)
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)
        service.say(f"{name} removed")
        return
    if not port:
        raise ConfigError(f"dockyard.environments.{service.env.name}.port: 0; give --port to publish the bundle on")
    platform = service.target.platform
    if platform == "v1":
        raise Refused("eb.local runs v2 and compose bundles; a v1 bundle is one container: use the stack tasks")
    release = service.release(version)
    bundle = service.bundle(release)
    env_file = project.env_file(service.env, required=False)
    values = dict(env_file.values) if env_file else {}
    for stale in bundle_directories(name):  # a previous run's bundle: `up` below replaces its containers
        shutil.rmtree(stale, ignore_errors=True)
    # Private and unpredictable (mkdtemp: 0700, a random name): the .env below holds the environment's secrets.
    directory = Path(tempfile.mkdtemp(prefix=f"dockyard-{name}-"))
    bundle.write_tree(directory)
    write_private(directory / ".env", "".join(f"{k}={v}\n" for k, v in sorted(values.items())))
    try:
        _up(service, compose_in(directory), directory, release, platform, port)
    finally:
        # Compose read the values when it created the containers; no copy of them stays on disk, whatever happened.
        (directory / ".env").unlink(missing_ok=True)


def bundle_directories(name: str) -> list[Path]:
    """This user's eb.local directories of the stack ``name``, oldest first (another user's are never touched)."""
    found = []
    for path in Path(tempfile.gettempdir()).glob(f"dockyard-{name}-*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        if path.is_dir() and not path.is_symlink() and info.st_uid == os.getuid():
            found.append((info.st_mtime, path))
    return [path for _, path in sorted(found)]


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (0600 from the first byte)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def _up(service: Any, compose: Any, directory: Path, release: Any, platform: str, port: int) -> None:
    from ..health import HealthCheck
    from ..registry import login

    project = service.project
    if platform == "v2":
        document = json.loads((directory / "Dockerrun.aws.json").read_text())
        model = compose_from_v2(document, port)
    else:
        import yaml

        model = yaml.safe_load((directory / "docker-compose.yml").read_text())
        for svc in model.get("services", {}).values():
            svc["ports"] = [f"127.0.0.1:{port}:{str(p).rsplit(':', 1)[-1]}" if str(p).split(":")[-2:-1] == ["80"]
                            else p for p in svc.get("ports") or []]
    import yaml

    (directory / "docker-compose.yml").write_text(yaml.safe_dump(model, sort_keys=True))
    if service.eb.auth in ("dockercfg", "ssm") and service.settings.registry.username:
        login(project.docker, service.credentials())
    service.say(f"running {release.label} ({platform} bundle) from {directory}")
    project.runner.run(compose.project.command("up", "--detach", "--remove-orphans"), capture=False)
    url = f"http://127.0.0.1:{port}{service.env.health_path}"
    HealthCheck(url, timeout=service.env.health_timeout, setting=service.env.health_setting).wait()
    service.say(f"{release.label} answers at http://127.0.0.1:{port}/ (stop it with `inv eb.local --down`)")
