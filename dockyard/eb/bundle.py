"""Source bundles: what goes in the zip, rendered from the project's files, and the zip itself, byte for byte
deterministic (sorted entries, fixed timestamps and modes), so an unchanged bundle has an unchanged digest and is
never uploaded twice. The working tree is never written to.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..core.compose import DeployCompose
from ..errors import ConfigError
from .dockerrun import (
    DockercfgLocation,
    compose_yaml,
    container_definitions,
    dockerrun_v1,
    dockerrun_v2,
    dockerrun_v3,
    dumps,
    pinned_compose,
)

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
HOOK_DIRS = (".platform/hooks/prebuild", ".platform/confighooks/prebuild")
#: the release command's files: the leader-only container command, and the script it runs
RELEASE_CONFIG = ".ebextensions/90-dockyard-release-command.config"
RELEASE_SCRIPT = ".dockyard/release-command.sh"
#: the container command's name, as EB's events name it when it fails
RELEASE_COMMAND_NAME = "00_dockyard_release_command"


@dataclass(frozen=True)
class BundleFile:
    path: str  # POSIX path inside the zip
    data: bytes = field(repr=False)
    executable: bool = False


@dataclass(frozen=True)
class Bundle:
    files: tuple[BundleFile, ...]
    changes: tuple[str, ...] = ()  # what behaves differently than under Compose (dockyard.containers)

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(sorted(self.files, key=lambda f: f.path)))

    def zip_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for item in self.files:
                info = zipfile.ZipInfo(item.path, date_time=FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, so the mode below is honoured by unzip
                info.external_attr = (0o100755 if item.executable else 0o100644) << 16
                archive.writestr(info, item.data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        return buffer.getvalue()

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.zip_bytes()).hexdigest()

    def file(self, path: str) -> BundleFile | None:
        return next((f for f in self.files if f.path == path), None)

    def text(self, path: str) -> str:
        found = self.file(path)
        return found.data.decode() if found else ""

    def listing(self) -> list[str]:
        return [f"{f.path}{' (executable)' if f.executable else ''}  {len(f.data)} bytes" for f in self.files]

    def write_tree(self, directory: Path) -> None:
        """Unpack into ``directory`` (``eb.local``), keeping the executable bits."""
        for item in self.files:
            target = directory / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.data)
            target.chmod(0o755 if item.executable else 0o644)


@dataclass(frozen=True)
class BundleInputs:
    """Everything a bundle is made from (no I/O happens building this)."""

    project_root: Path
    env: Any  # dockyard.config.Environment
    eb_environment: str
    platform: str  # v1 | v2 | compose
    image: str  # the app image, pinned (repository:X.Y.Z)
    auth: str  # none | ecr | dockercfg | ssm
    registry: str
    dockercfg: DockercfgLocation | None
    ssm_username: str = ""
    ssm_password: str = ""
    ssm_password_arn: str = ""  # auth ssm: the password parameter's ARN (an environment secret names it)
    container_port: int = 8000
    default_memory: int = 256
    compose: DeployCompose | None = None  # the compose file as every deploy reads it (not needed by v1)
    volumes: Mapping[str, Any] = field(default_factory=dict)  # eb.volumes: what each named volume becomes (v2)
    release_command: Any = None  # dockyard.core.release_command.ReleaseCommand: run by a leader-only command


def build_bundle(inputs: BundleInputs) -> Bundle:
    """Render the bundle for ``inputs.platform``."""
    files: list[BundleFile] = []
    changes: tuple[str, ...] = ()
    auth = inputs.dockercfg if inputs.auth == "dockercfg" else None
    if inputs.platform == "v1":
        files.append(BundleFile("Dockerrun.aws.json", dumps(dockerrun_v1(
            inputs.image, container_port=inputs.container_port, auth=auth)).encode()))
    else:
        compose = inputs.compose
        if compose is None:
            raise ConfigError(f"dockyard.environments.{inputs.env.name}.compose: the {inputs.platform} platform "
                              "builds its containers from the compose file; set it (or use eb.platform: v1)")
        if inputs.platform == "v2":
            definitions = container_definitions(compose.model, images=compose.images,
                                                project_root=inputs.project_root, compose_dir=compose.compose_dir,
                                                default_memory=inputs.default_memory, named_volumes=inputs.volumes,
                                                volumes_setting="dockyard.eb.volumes")
            changes = tuple(str(c) for c in definitions.changes)
            files.append(BundleFile("Dockerrun.aws.json", dumps(dockerrun_v2(definitions, auth=auth)).encode()))
            shipped = definitions.shipped
        else:
            pinned, shipped = pinned_compose(compose.model, images=compose.images, project_root=inputs.project_root,
                                             compose_dir=compose.compose_dir)
            files.append(BundleFile("docker-compose.yml", compose_yaml(pinned).encode()))
            if auth is not None:
                files.append(BundleFile("Dockerrun.aws.json", dumps(dockerrun_v3(auth)).encode()))
        for inside, source in sorted(shipped.items()):
            files.append(BundleFile(inside, source.read_bytes()))
    files += _rendered_extensions(inputs)
    return Bundle(tuple(files), changes)


def template_environment(project_root: Path) -> Any:
    """jinja2 with StrictUndefined; the project's ``templates/`` wins over dockyard's own."""
    import jinja2

    import shlex

    loader = jinja2.FileSystemLoader([str(project_root / "templates"), str(TEMPLATES)])
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    env.filters["q"] = lambda value: shlex.quote(str(value))  # one shell word, quoted once
    return env


def _rendered_extensions(inputs: BundleInputs) -> list[BundleFile]:
    import jinja2

    env = template_environment(inputs.project_root)
    context = {"env": inputs.env, "eb_environment": inputs.eb_environment, "platform": inputs.platform,
               "image": inputs.image, "auth": inputs.auth, "registry": inputs.registry,
               "ssm_username": inputs.ssm_username, "ssm_password": inputs.ssm_password,
               "ssm_password_arn": inputs.ssm_password_arn}
    names = sorted({n for n in env.list_templates() if n.startswith("eb/ebextensions/") and n.endswith(".config.j2")})
    files = []
    try:
        for name in names:
            text = env.get_template(name).render(**context)
            files.append(BundleFile(f".ebextensions/{Path(name).name[:-3]}", text.encode()))
        if inputs.auth == "ssm":
            hook = env.get_template("eb/platform/01login.sh.j2").render(**context).encode()
            files += [BundleFile(f"{d}/01login.sh", hook, executable=True) for d in HOOK_DIRS]
        if inputs.release_command is not None:
            files += _release_command_files(env, inputs, context)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"template {getattr(exc, 'name', '') or 'eb/*'}: {exc}") from None
    return files


def _release_command_files(env: Any, inputs: BundleInputs, context: dict[str, Any]) -> list[BundleFile]:
    """The release command as EB runs it once per deployment: a ``leader_only`` container command (EB docs,
    "Customizing software on Linux servers", Container commands: they "run after the application and web server have
    been set up and the application version archive has been extracted, but before the application version is
    deployed"; leader_only runs one "on a single instance chosen by Elastic Beanstalk"), and the script it runs."""
    command = inputs.release_command
    registry = inputs.registry
    parts = registry.split(".")
    ecr_region = parts[3] if len(parts) > 4 and parts[1:3] == ["dkr", "ecr"] else ""
    values = {**context, "timeout": int(command.timeout), "argv": command.text, "command_text": command.text,
              "dockercfg": inputs.dockercfg, "ecr_region": ecr_region}
    config = env.get_template("eb/release/90-dockyard-release-command.config.j2").render(**values)
    script = env.get_template("eb/release/release-command.sh.j2").render(**values)
    return [BundleFile(RELEASE_CONFIG, config.encode()), BundleFile(RELEASE_SCRIPT, script.encode(), executable=True)]


def describe(bundle: Bundle) -> str:
    """The bundle as people read it in a dry run: file list and the Dockerrun document."""
    lines = ["files:"] + [f"  {line}" for line in bundle.listing()]
    if bundle.changes:
        lines += ["changes of meaning (Compose -> ECS):"] + [f"  warning: {change}" for change in bundle.changes]
    dockerrun = bundle.text("Dockerrun.aws.json")
    if dockerrun:
        lines += ["Dockerrun.aws.json:"] + [f"  {line}" for line in dockerrun.splitlines()]
    compose = bundle.text("docker-compose.yml")
    if compose:
        lines += ["docker-compose.yml:"] + [f"  {line}" for line in compose.splitlines()]
    return "\n".join(lines)


def dockerrun_document(bundle: Bundle) -> dict[str, Any]:
    text = bundle.text("Dockerrun.aws.json")
    return json.loads(text) if text else {}


def bundle_path(app: str, label: str) -> Path:
    """Where ``eb.bundle`` writes without ``--output``: outside the repository, under the temporary directory."""
    import tempfile

    return Path(tempfile.gettempdir()) / "dockyard-bundles" / app / f"{label}.zip"
