"""Check everything dockyard needs on this machine and say how to fix what is missing."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from invoke import Collection, task
from invoke.exceptions import Exit

from ..errors import DockyardError
from .common import Project, edge, table


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | missing | warn | skip
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.required and self.status == "missing"


def _guard(name: str, required: bool, probe: Callable[[], Check]) -> Check:
    try:
        return probe()
    except DockyardError as exc:
        return Check(name, "missing", exc.message, required=required)


def check_engine(project: Project) -> Check:
    def probe() -> Check:
        version = project.docker.server_version()
        return Check("Docker engine", "ok", f"server {version}")

    check = _guard("Docker engine", True, probe)
    if check.status != "ok":
        fix = ("run scripts/setup.sh (installs docker.io and starts dockerd on Debian)"
               if Path("/etc/debian_version").exists() else "install Docker and start it")
        return Check(check.name, "missing", check.detail.split(";")[0], fix)
    return check


def check_compose(project: Project) -> Check:
    from ..clients.compose import find_compose

    def probe() -> Check:
        install = find_compose(project.runner, project.settings.compose_command)
        if install.is_v2:
            return Check("Docker Compose", "ok", install.describe())
        return Check("Docker Compose", "warn", install.describe(), "install Compose v2: bash scripts/setup.sh", False)

    check = _guard("Docker Compose", True, probe)
    if check.status == "missing":
        return Check(check.name, "missing", check.detail.split(": install")[0],
                     "bash scripts/setup.sh (installs the Compose v2 plugin)")
    return check


def check_builder(project: Project) -> Check:
    """Which builder ``inv image.build`` uses (``image.builder``) and its version."""
    name = "image builder"
    try:
        builder = project.builder
    except DockyardError as exc:
        return Check(name, "missing", exc.message.split(": run")[0], "bash scripts/setup.sh (installs Buildx), "
                     "or set image.builder: auto")
    try:
        project.build_cache()  # image.cache the builder cannot do (registry mode on the docker driver)
    except DockyardError as exc:
        detail, _, fix = exc.message.partition(": create one")
        return Check(name, "warn", f"{builder.describe()}; {detail.removeprefix('dockyard.')}",
                     ("create one" + fix) if fix else "set image.cache: none", False)
    if not builder.is_buildkit:
        if project.settings.builder == "legacy":
            return Check(name, "ok", builder.describe(), required=False)
        return Check(name, "warn", builder.describe(), "bash scripts/setup.sh (installs Buildx: BuildKit builds)",
                     False)
    from ..clients.buildx import buildkit_version

    engine = buildkit_version(project.runner, builder)
    cache = f"; image.cache: {project.settings.image_cache}" if project.settings.image_cache != "none" else ""
    return Check(name, "ok", builder.describe() + (f"; engine BuildKit {engine}" if engine else "") + cache
                 + _platforms(project), required=False)


def _platforms(project: Project) -> str:
    """``image.platforms`` as doctor says it: the list, the local one, and the foreign ones whose ``RUN`` steps
    have no binfmt handler here (a static ``FROM scratch`` image needs none)."""
    from pathlib import Path

    from ..core.platforms import is_multi, normalized

    platforms = project.settings.image_platforms
    if not platforms:
        return ""
    local = project.local_platform
    text = f"; image.platforms: {', '.join(platforms)}" + (f" (local tags: {local})" if is_multi(platforms) else "")
    engine = normalized(project.engine_platform)
    qemu = {"linux/arm64": "qemu-aarch64", "linux/amd64": "qemu-x86_64", "linux/arm/v7": "qemu-arm",
            "linux/s390x": "qemu-s390x", "linux/ppc64le": "qemu-ppc64le", "linux/riscv64": "qemu-riscv64"}
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    lacking = [p for p in platforms if engine and normalized(p) != engine and p in qemu
               and not (binfmt / qemu[p]).exists()]
    if lacking:
        text += (f"; RUN steps for {', '.join(lacking)} need qemu binfmt handlers, none registered "
                 "(apt-get install qemu-user-static binfmt-support)")
    return text


def check_git(project: Project) -> Check:
    if not shutil.which("git"):
        return Check("git", "missing", "not installed", "apt-get install git")
    version = project.runner.run(["git", "--version"]).stdout.strip().replace("git version ", "")
    if not project.git.is_repository():
        return Check("git", "warn", f"{version}; {project.settings.root} is not a repository", "git init", False)
    return Check("git", "ok", version)


def check_env_files(project: Project) -> list[Check]:
    checks = []
    for env in project.settings.environments.values():
        if not env.compose and not env.target:
            continue
        name = f"env file ({env.name})"
        try:
            loaded = project.env_file(env)
            checks.append(Check(name, "ok", f"{len(loaded.values)} keys (values hidden)", required=False))
        except DockyardError as exc:
            checks.append(Check(name, "warn", exc.message.split(":")[0],
                                exc.message.split(": ", 1)[-1], required=False))
    return checks


def check_aws(project: Project) -> Check:
    import boto3  # only here: importing it costs more than the rest of `inv --list`

    s = project.settings
    session = boto3.Session(profile_name=s.aws_profile or None, region_name=s.aws_region or None)
    credentials = session.get_credentials()
    where = f"profile {s.aws_profile or session.profile_name or 'default'}, region {session.region_name or 'not set'}"
    if credentials is None:
        return Check("AWS credentials", "warn", f"none found ({where})",
                     "aws configure, or set AWS_PROFILE / AWS_ACCESS_KEY_ID (only deploys need them)", False)
    key = credentials.access_key or ""
    return Check("AWS credentials", "ok", f"{credentials.method}: key ...{key[-4:]} ({where})", required=False)


def check_ssh(project: Project) -> Check:
    agent = os.environ.get("SSH_AUTH_SOCK")
    keys = sorted(p.name for p in (Path.home() / ".ssh").glob("id_*") if not p.name.endswith(".pub"))
    wanted = sorted({str(t.key_file) for t in project.settings.ssh.targets.values() if t.key_file})
    missing = [k for k in wanted if not Path(k).exists()]
    if missing:
        return Check("SSH keys", "missing", f"configured key not found: {', '.join(missing)}",
                     "create it or fix dockyard.ssh key setting", False)
    if agent or keys or wanted:
        parts = (["agent"] if agent else []) + keys + [Path(k).name for k in wanted]
        return Check("SSH keys", "ok", ", ".join(parts), required=False)
    return Check("SSH keys", "warn", "no agent and no ~/.ssh/id_* key", "ssh-keygen, or start ssh-agent "
                 "(only staging deploys need it)", False)


def check_registry(project: Project) -> Check:
    from ..registry import ping

    registry = project.settings.registry
    name = "registry"
    if registry.kind == "ecr" or registry.url == "docker.io":
        return Check(name, "skip", f"{registry.url} ({registry.kind})", required=False)
    status = ping(registry.url)
    if status in (200, 401):
        return Check(name, "ok", f"{registry.url} answers the v2 API (HTTP {status})", required=False)
    return Check(name, "warn", f"{registry.url} answered HTTP {status} on /v2/",
                 "check dockyard.registry.url (or image.repository's host)", False)


def check_staging_hosts(project: Project) -> list[Check]:
    """Each SSH environment's hosts: reachable with the configured key and known_hosts, Docker usable there."""
    from ..staging.service import StagingService

    checks = []
    for env_name, target in sorted(project.settings.ssh.targets.items()):
        if not target.hosts:
            continue
        name = f"staging hosts ({env_name})"

        def probe(env_name: str = env_name, name: str = name) -> Check:
            service = StagingService(project, env_name)
            try:
                sessions = service.sessions(check=True)
                return Check(name, "ok", ", ".join(s.name for s in sessions) + ": Docker usable", required=False)
            finally:
                service.close()

        check = _guard(name, False, probe)
        if check.status == "missing":
            check = Check(name, "warn", check.detail, f"fix dockyard.environments.{env_name}.ssh / dockyard.ssh "
                          "(hosts, key_file, known_hosts), or the host", False)
        checks.append(check)
    return checks


@task(help={"aws": "also check AWS credentials (default: yes)",
            "ssh": "also check SSH keys and reach the staging hosts (default: yes)",
            "registry": "also check that the registry answers (default: yes)"})
@edge
def doctor(c, aws=True, ssh=True, registry=True):
    """Check Docker, Compose, builder, git, env files, AWS, SSH, staging hosts, registry; exit 1 if required fails."""
    project = Project(c, echo=False)
    checks = [check_engine(project), check_compose(project), check_builder(project), check_git(project),
              *check_env_files(project)]
    if aws:
        checks.append(_guard("AWS credentials", False, lambda: check_aws(project)))
    if ssh:
        checks.append(_guard("SSH keys", False, lambda: check_ssh(project)))
        checks += check_staging_hosts(project)
    if registry:
        check = _guard("registry", False, lambda: check_registry(project))
        checks.append(check if check.status != "missing" else
                      Check("registry", "warn", check.detail, "start the registry, or fix dockyard.registry.url",
                            False))
    rows = [("CHECK", "STATUS", "DETAIL", "FIX")]
    rows += [(ch.name, ch.status.upper(), ch.detail, ch.fix) for ch in checks]
    project.say(table(rows))
    failed = [ch.name for ch in checks if ch.failed]
    if failed:
        raise Exit(f"dockyard: missing: {', '.join(failed)} (see the FIX column)", code=1)


def attach(ns: Collection, environments: Mapping[str, Mapping[str, Any]]) -> None:
    ns.add_task(doctor)
