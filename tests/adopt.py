"""What the adoption tests share: an app of tests/apps/ copied to a git repository and pointed at the real parts.

A team adopting dockyard writes tasks.py, invoke.yaml, compose files and env examples (tests/apps/<name>/ hold
those). What differs on this machine is only where things are: the registry, the SSH hosts, the Elastic Beanstalk
stand-in, free ports. :func:`adopt` sets exactly those in the copy's invoke.yaml, as a team fills in its own
addresses, and never touches app code, Dockerfiles or compose files.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from conftest import REPO, SampleProject, free_port, git, remove_test_artifacts, unavailable

APPS = REPO / "tests" / "apps"
IDENTITY = {"user.name": "Adopting Team", "user.email": "team@example.invalid"}
NGINX_BASE = "dockyard-base/nginx:bookworm"


def require_images(*images: str) -> None:
    for image in images:
        if subprocess.run(["docker", "image", "inspect", image], check=False, capture_output=True).returncode != 0:
            unavailable(f"base image {image} missing (run scripts/base-images.sh)")


def docker(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def http_get(url: str, timeout: float = 5, method: str = "GET", data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, repr(exc)


@dataclass
class Adopted:
    """An app of tests/apps/ in its own git repository with a bare origin, driven by real `inv` only."""

    project: SampleProject
    name: str
    ports: dict[str, int]
    staging_port: int
    registry: object
    env_values: dict[str, dict[str, str]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)  # everything every `inv` printed

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def app(self) -> str:
        return self.project.app

    @property
    def repository(self) -> str:
        return self.project.repository

    @property
    def staging_prefix(self) -> str:
        return f"{self.app}-staging"

    def ok(self, *args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
        result = self.project.inv(*args, timeout=timeout, **kwargs)
        self.outputs.append(result.stdout + result.stderr)
        assert result.returncode == 0, f"inv {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def secrets_shown(self) -> list[str]:
        """The env files' values and the registry password that any `inv` output showed (there should be none)."""
        secrets = {v for values in self.env_values.values() for v in values.values() if len(v) >= 4}
        secrets.add(self.registry.password)
        return sorted(s for s in secrets if any(s in text for text in self.outputs))

    def url(self, env: str, path: str = "/") -> str:
        port = self.staging_port if env == "staging" else self.ports[env]
        return f"http://127.0.0.1:{port}{path}"

    def get(self, env: str, path: str = "/", **kwargs) -> tuple[int, str]:
        return http_get(self.url(env, path), **kwargs)

    def edit(self, relative: str, old: str, new: str, message: str) -> str:
        path = self.root / relative
        text = path.read_text()
        assert old in text, (relative, old)
        path.write_text(text.replace(old, new))
        return self.project.commit(message)

    def image_tags(self) -> set[str]:
        out = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", self.repository).stdout
        return set(out.split())

    def containers(self, *filters: str) -> list[dict]:
        argv = ["ps", "--format", "{{json .}}"]
        for f in filters:
            argv += ["--filter", f]
        return [json.loads(line) for line in docker(*argv).stdout.splitlines() if line.strip()]

    def staging_containers(self) -> dict[str, str]:
        """name -> status of every container the staging deploy made."""
        return {c["Names"]: c["State"] for c in self.containers(f"label=dev.dockyard.ssh.prefix={self.staging_prefix}")}

    def cleanup(self) -> None:
        for env in ("dev", "prod"):
            self.project.inv(f"{env}.down", "--volumes", timeout=120)
        prefix = self.staging_prefix
        ids = docker("ps", "-aq", "--filter", f"label=dev.dockyard.ssh.prefix={prefix}").stdout.split()
        ids += docker("ps", "-aq", "--filter", f"name=^{prefix}-").stdout.split()
        if ids:
            docker("rm", "-f", "-v", *sorted(set(ids)))
        docker("network", "rm", prefix)
        volumes = [v for v in docker("volume", "ls", "-q").stdout.split() if v.startswith(prefix + "-")]
        if volumes:
            docker("volume", "rm", *volumes)
        shutil.rmtree(Path.home() / ".dockyard" / prefix, ignore_errors=True)
        images = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", self.repository).stdout.split()
        images = [i for i in images if not i.endswith(":<none>")]
        if images:
            docker("image", "rm", "-f", *images)
        remove_test_artifacts(self.app)


class Later:
    """Checks whose failure should not stop the rest of the life from being exercised: each failed one is kept,
    and :meth:`verify` (called at the end of the test) fails with all of them."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, ok: bool, what: str, detail: object = "") -> bool:
        if not ok:
            self.failed.append(f"{what}: {detail}" if detail != "" else what)
        return ok

    def verify(self) -> None:
        assert not self.failed, "\n".join(self.failed)


def fill_env_files(root: Path, values: dict[str, dict[str, str]]) -> None:
    """Each environments/<env>/.env from its .env.example, with the team's values (as `cp` + an editor would)."""
    for example in sorted(root.glob("environments/*/.env.example")):
        env = example.parent.name
        lines = []
        for line in example.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#") and key in values.get(env, {}):
                value = values[env][key]
            lines.append(f"{key}{sep}{value}" if sep else line)
        example.with_name(".env").write_text("\n".join(lines) + "\n")


def adopt(name: str, dest: Path, *, registry, sshd_host, env_values: dict[str, dict[str, str]]) -> Adopted:
    """Copy tests/apps/<name> to ``dest`` as a git repository with an origin, and point it at this machine's parts."""
    source = APPS / name
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".env", "node_modules"))
    app = f"t{uuid.uuid4().hex[:8]}"
    fill_env_files(dest, env_values)
    git(dest, "init", "-q", "-b", "main")
    for key, value in IDENTITY.items():
        git(dest, "config", key, value)
    origin = dest.parent / f"{dest.name}-origin.git"
    git(dest.parent, "init", "-q", "--bare", "--initial-branch=main", str(origin))
    git(dest, "remote", "add", "origin", str(origin))

    project = SampleProject(dest, app)
    ports = {"dev": free_port(), "prod": free_port()}
    staging_port = free_port()
    # Only where things are on this machine: names, addresses, ports, keys. The app's own settings stay as written.
    project.configure({"dockyard": {
        "app": app,
        "image": {"repository": registry.repository(f"dockyard-test/{app}")},
        "registry": {"username": registry.username},
        "environments": {"dev": {"port": ports["dev"]}, "prod": {"port": ports["prod"]}},
        "ssh": {"hosts": [sshd_host.address], "key_file": str(sshd_host.key_file),
                "known_hosts": str(sshd_host.known_hosts), "use_agent": False, "proxy_port": staging_port,
                "proxy_bind": "127.0.0.1", "proxy_image": NGINX_BASE, "drain_seconds": 1, "health_timeout": 90},
    }})
    project.env.update({"DOCKYARD_REGISTRY_PASSWORD": registry.password, "CI": "true"})
    project.commit("adopt dockyard")
    git(dest, "push", "-q", "origin", "main")
    return Adopted(project, name, ports, staging_port, registry, env_values)


def point_at_eb(adopted: Adopted, eb, properties: dict[str, str]) -> str:
    """Create the app's EB environment on the stand-in (as a team does once, in the console) and configure it."""
    environment = f"{adopted.app}-prod"
    eb.create_environment(environment, properties=properties)
    adopted.project.configure({"dockyard": {
        "registry": {"url": adopted.registry.host},
        "eb": {"application": eb.application, "bucket": eb.bucket, "endpoint_url": eb.endpoint,
               "poll_interval": 0.3, "health_window": 2, "timeout": 240},
        "environments": {"prod": {"eb": {"name": environment}}},
    }})
    adopted.project.env.update(eb.moto.env)
    adopted.project.commit("deploy prod to our Elastic Beanstalk environment")
    return environment


def laptop_leaks(text: str, adopted: Adopted) -> list[str]:
    """What a generated deploy file (Dockerrun v2, an ECS task definition) must not carry from the laptop's compose
    binding ``127.0.0.1:${DOCKYARD_PORT}:<port>``: a laptop port anywhere, or a port mapping bound to a host IP.
    (127.0.0.1 may appear elsewhere: the registry's address in image references, a container's own healthcheck.)"""
    leaks = [f"laptop port {p}" for p in adopted.ports.values() if re.search(rf"(?<![0-9]){p}(?![0-9])", text)]
    leaks += [f"host binding {m}" for m in re.findall(r"127\.0\.0\.1:[0-9]+", text) if m != adopted.registry.host]
    for container in json.loads(text).get("containerDefinitions") or []:
        for mapping in container.get("portMappings") or []:
            if set(mapping) - {"containerPort", "hostPort", "protocol"}:
                leaks.append(f"{container['name']}: port mapping {mapping}")
    return leaks


def remove_eb_environment(eb, name: str) -> None:
    """The stand-in runs an environment's containers on this engine (label dockyard-standin=ebsi-<id>): remove them,
    with their network and volumes."""
    eb.standin.wait_idle(120)
    try:
        label = f"dockyard-standin=ebsi-{eb.state(name)['EnvironmentId']}"
    except Exception:  # noqa: BLE001 - the environment was never created
        return
    ids = docker("ps", "-aq", "--filter", f"label={label}").stdout.split()
    if ids:
        docker("rm", "-f", "-v", *ids)
    for kind in ("network", "volume"):
        names = docker(kind, "ls", "-q", "--filter", f"label={label}").stdout.split()
        if names:
            docker(kind, "rm", *names)
