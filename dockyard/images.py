"""What an environment's image is called, how it is labelled, and how it is built (pure functions)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .clients.git import Revision
from .config import Environment, Settings
from .core.compose import image_reference
from .errors import ConfigError

LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_VERSION = "org.opencontainers.image.version"
LABEL_CREATED = "org.opencontainers.image.created"
LABEL_SOURCE = "org.opencontainers.image.source"
LABEL_TITLE = "org.opencontainers.image.title"
LABEL_APP = "dev.dockyard.app"
LABEL_ENV = "dev.dockyard.environment"
LABEL_DIRTY = "dev.dockyard.dirty"


def env_ref(settings: Settings, env: Environment) -> str:
    """The moving tag of an environment's image: ``<repository>:<env>``."""
    return image_reference(settings.repository, env.name)


def commit_tag(settings: Settings, env: Environment, revision: Revision) -> str:
    """The immutable tag: ``<short-sha>`` for the released environment, ``<env>-<short-sha>`` for others.

    Two environments built from one commit differ (dev has autoreload, prod gunicorn), so only the released one
    may own the bare SHA tag.
    """
    if env.name == settings.release_env:
        return revision.label
    return f"{env.name}-{revision.label}"


def image_tags(settings: Settings, env: Environment, revision: Revision) -> tuple[str, ...]:
    return (env_ref(settings, env), image_reference(settings.repository, commit_tag(settings, env, revision)))


def oci_labels(
    settings: Settings, env: Environment, revision: Revision, *, version: str = "", source: str = ""
) -> dict[str, str]:
    labels = {
        LABEL_REVISION: revision.sha,
        LABEL_VERSION: version or revision.label,
        # The commit's time, not now: an unchanged commit then builds a byte-identical image config.
        LABEL_CREATED: revision.committed,
        LABEL_SOURCE: source,
        LABEL_TITLE: settings.app,
        LABEL_APP: settings.app,
        LABEL_ENV: env.name,
    }
    if revision.dirty:
        labels[LABEL_DIRTY] = "true"
    return {k: v for k, v in labels.items() if v}


@dataclass(frozen=True)
class BuildSpec:
    """Where and how the app service's image is built, as the compose file says."""

    context: Path
    dockerfile: Path | None
    args: Mapping[str, str] = field(default_factory=dict)
    target: str = ""


def build_spec(settings: Settings, env: Environment, compose_model: Mapping[str, Any]) -> BuildSpec:
    """Read the app service's ``build:`` from a resolved compose model (``docker compose config``)."""
    services = compose_model.get("services") or {}
    where = f"dockyard.environments.{env.name}"
    if env.app_service not in services:
        raise ConfigError(
            f"{where}.app_service: service {env.app_service!r} is not in {env.compose} "
            f"(services: {', '.join(sorted(services)) or 'none'})"
        )
    build = services[env.app_service].get("build")
    if not build:
        raise ConfigError(f"{env.compose}: service {env.app_service!r} has no build section; add one to build it")
    if isinstance(build, str):
        build = {"context": build}
    context = Path(build.get("context") or ".")
    if not context.is_absolute() and env.compose is not None:
        context = (env.compose.parent / context).resolve()
    dockerfile = build.get("dockerfile")
    dockerfile_path = None
    if dockerfile:
        dockerfile_path = Path(dockerfile) if Path(dockerfile).is_absolute() else context / dockerfile
    args = {str(k): "" if v is None else str(v) for k, v in (build.get("args") or {}).items()}
    return BuildSpec(context=context, dockerfile=dockerfile_path, args=args, target=build.get("target") or "")


def tags_in(references: Iterable[str], repository: str) -> list[str]:
    """The tags of ``repository`` among image references (``127.0.0.1:5000/shop:dev`` -> ``dev``); a registry port's
    colon is part of the repository, so the tag is what follows the last colon after it."""
    prefix = repository + ":"
    return sorted(ref[len(prefix):] for ref in references if ref.startswith(prefix) and "/" not in ref[len(prefix):])


def declared_args(dockerfile: str) -> set[str]:
    """Names of the ``ARG`` instructions in a Dockerfile's text."""
    names = set()
    for line in dockerfile.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0].upper() == "ARG":
            names.add(parts[1].split("=", 1)[0].strip())
    return names


def build_args_for(spec: BuildSpec, configured: Mapping[str, str], metadata: Mapping[str, str]) -> dict[str, str]:
    """The compose file's args, plus configured and metadata args the Dockerfile declares (no unused-arg noise)."""
    dockerfile = spec.dockerfile or spec.context / "Dockerfile"
    declared = declared_args(dockerfile.read_text()) if dockerfile.is_file() else set()
    args = {k: v for k, v in {**metadata, **configured}.items() if k in declared}
    args.update(spec.args)
    return args


def secret_arguments(secrets: Iterable[Any], environ: Mapping[str, str], *, check: bool = True) -> tuple[str, ...]:
    """The ``--secret`` values of ``image.build_secrets`` (names of variables and files, never their contents).

    ``check``: refuse a secret whose variable is unset or whose file is missing, before anything is built.
    """
    from .errors import ConfigError

    secrets = tuple(secrets)
    for number, secret in enumerate(secrets if check else (), 1):
        key = f"dockyard.image.build_secrets[{number}]"
        if secret.env and not environ.get(secret.env):
            raise ConfigError(f"{key}: secret {secret.id!r} is read from the environment variable {secret.env}, "
                              f"which is not set: export {secret.env} before building")
        if secret.src is not None and not secret.src.is_file():
            raise ConfigError(f"{key}: secret {secret.id!r} is read from {secret.src}, which is not a file: "
                              "create it or fix src")
    return tuple(secret.argument for secret in secrets)


def secret_values(secrets: Iterable[Any], environ: Mapping[str, str]) -> list[str]:
    """The secrets' values, for the masker only (a build that echoes one shows ********)."""
    values = []
    for secret in secrets:
        if secret.env and environ.get(secret.env):
            values.append(environ[secret.env])
        elif secret.src is not None and secret.src.is_file() and secret.src.stat().st_size <= 65536:
            values.append(secret.src.read_text(errors="replace").strip())
    return values


# --- the commit image of an environment, pushed once per commit ------------------------------------------------


def compose_less_spec(dockerfile: Path, context: Path) -> BuildSpec:
    """How an environment without a compose file (a staging over SSH) is built: the app's Dockerfile."""
    return BuildSpec(context=context, dockerfile=dockerfile)


@dataclass(frozen=True)
class PushState:
    """What is known before pushing the commit image ``ref`` of ``commit``."""

    ref: str
    commit: str
    remote_revision: str | None  # the registry's image's revision label; None: not in the registry
    remote_digest: str = ""
    local_revision: str | None = None  # the local image's revision label; None: not on this engine


@dataclass(frozen=True)
class PushDecision:
    ref: str
    commit: str
    build: bool
    push: bool
    remote_digest: str = ""  # set when the registry already holds this commit's image

    @property
    def nothing_to_do(self) -> bool:
        return not self.build and not self.push


def decide_push(state: PushState) -> PushDecision:
    """Build and push only what the registry lacks; refuse to move a commit tag to another commit."""
    from .errors import Refused

    if state.remote_revision is not None:
        if state.remote_revision != state.commit:
            raise Refused(
                f"the registry's {state.ref} was built from {state.remote_revision[:7] or 'an unlabelled image'}, "
                f"not {state.commit[:7]}: a commit tag never moves; check dockyard.ssh.version_format"
            )
        return PushDecision(state.ref, state.commit, build=False, push=False, remote_digest=state.remote_digest)
    return PushDecision(state.ref, state.commit, build=state.local_revision != state.commit, push=True)


def push_plan(decision: PushDecision, *, registry: str, login: Any = None, build: Any = None) -> Any:
    """Log in, build (unless this commit's image is here), push, check the registry's digest, record it.

    The steps are calls of the ``push`` performer, shown with the commands they run; a step that only says why
    nothing is done has no instruction.
    """
    from .plan import ApiCall, Plan, Step
    from .runner import Command

    d = decision
    steps = [Step(f"log in to {registry} (password on stdin)", instruction=ApiCall.of("push", "login"),
                  command=login)]
    if d.nothing_to_do:
        steps.append(Step(f"{d.ref} is in the registry, built from {d.commit[:7]} ({d.remote_digest}): "
                          "nothing to build or push"))
    else:
        if d.build:
            steps.append(Step(f"build {d.ref} from {d.commit[:7]}", instruction=ApiCall.of("push", "build"),
                              command=build))
        else:
            steps.append(Step(f"{d.ref} is on this engine, built from {d.commit[:7]}: not rebuilt"))
        steps.append(Step(f"push {d.ref}", instruction=ApiCall.of("push", "push"),
                          command=Command(("docker", "push", d.ref))))
    steps.append(Step(f"check the registry's digest of {d.ref}", instruction=ApiCall.of("push", "verify")))
    steps.append(Step("record the digest", instruction=ApiCall.of("push", "record")))
    return Plan(f"push the commit image {d.ref}", tuple(steps))
