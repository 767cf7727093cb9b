"""What every task shares: the error edge, and a :class:`Project` that loads settings and builds clients."""
from __future__ import annotations

import functools
import inspect
import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from invoke.exceptions import Exit

from ..core.signals import INTERRUPTS, Interrupted, exit_code_of, signals_as_interrupts
from ..errors import DockyardError
from .flags import BadFlag, Kind, flag_name, implied

#: :meth:`Project.registry_lookup` could not ask the registry
UNKNOWN = "?"

if TYPE_CHECKING:
    from ..config import Environment, Settings
    from ..envfile import EnvFile

F = TypeVar("F", bound=Callable[..., Any])


def edge(func: F | None = None, /, **kinds: Kind) -> F:
    """Turn a :class:`DockyardError` into one line on stderr and its exit code, with no traceback.

    SIGTERM and SIGHUP unwind the task like Ctrl-C (:mod:`dockyard.core.signals`): locks are released, the audit
    record says ``interrupted``; the exit code is 130 (Ctrl-C), 143 (SIGTERM) or 129 (SIGHUP).

    ``kinds`` declare what a flag may hold (:mod:`dockyard.tasks.flags`); numeric flags get one from their
    default. They are checked here, before the task runs, so a bad value changes nothing.
    """
    if func is None:
        return functools.partial(edge, **kinds)  # type: ignore[return-value]
    signature = inspect.signature(func)
    unknown = set(kinds) - set(signature.parameters)
    if unknown:
        raise TypeError(f"{func.__name__}: flag kinds for parameters it does not have: {', '.join(sorted(unknown))}")
    checks: dict[str, Kind] = {}
    shown = []
    for parameter in signature.parameters.values():
        kind = kinds.get(parameter.name)
        if kind is None and parameter.default is not parameter.empty:
            kind = implied(parameter.default)
        if kind is not None:
            checks[parameter.name] = kind
            if isinstance(parameter.default, (int, float)) and not isinstance(parameter.default, bool):
                # Invoke casts a flag to its default's type and raises on what it cannot cast: it gets text.
                parameter = parameter.replace(default="")
        shown.append(parameter)
    exposed = SharedSignature(shown, return_annotation=signature.return_annotation)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            call = _checked(exposed, signature, checks, args, kwargs)
            with signals_as_interrupts():
                return func(*call.args, **call.kwargs)
        except DockyardError as exc:
            raise Exit(f"dockyard: {exc.message}", code=exc.exit_code) from None
        except INTERRUPTS as exc:
            by = f" by {exc.name}" if isinstance(exc, Interrupted) else ""
            raise Exit(f"dockyard: interrupted{by}", code=exit_code_of(exc)) from None

    wrapper.__signature__ = exposed  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


class SharedSignature(inspect.Signature):
    """A signature that deep copies as itself.

    Invoke copies every ``Task`` (and the ``__signature__`` it inherits from the function) twice while it builds
    its parser; a signature is immutable, so sharing it is safe and saves ``inv --list`` rebuilding hundreds of
    ``Parameter`` objects.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict) -> "SharedSignature":
        return self


def _checked(exposed: inspect.Signature, signature: inspect.Signature, checks: Mapping[str, Kind],
             args: tuple, kwargs: dict) -> inspect.BoundArguments:
    """The call's arguments, each declared flag converted; a numeric flag not given keeps the task's default."""
    call = exposed.bind(*args, **kwargs)
    bound = call.arguments
    for name, kind in checks.items():
        if name not in bound:
            continue
        value = bound[name]
        default = signature.parameters[name].default
        if value == "" and default != "":
            bound[name] = default  # not typed on the command line
        elif isinstance(value, str):
            bound[name] = kind.convert(flag_name(name), value)
        elif not isinstance(value, bool) and isinstance(value, (int, float)):
            bound[name] = kind.convert(flag_name(name), str(value))  # a call from Python: the same bounds
    return call


def write_output(path: Path, data: str | bytes, *, flag: str = "--output") -> None:
    """Write a file the user asked for (its directories made); a place that cannot be written is one line, exit 2."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    except OSError as exc:
        raise BadFlag(f"{flag}: cannot write {path}: {exc.strerror or exc}; choose another path") from None


def make_directory(path: Path, *, flag: str = "--dir") -> None:
    """Create a directory the user named; one that cannot be made is one line, exit 2."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadFlag(f"{flag}: cannot create directory {path}: {exc.strerror or exc}; choose another path") from None


def exit_like(result: Any, message: str = "") -> None:
    """Leave with the exit code of a command whose output already reached the user (tests, one-off runs)."""
    if not result.ok:
        raise Exit(message or None, code=result.returncode)


class Project:
    """Settings plus the clients a task needs, created on first use (no I/O in the constructor)."""

    def __init__(self, c: Any, *, echo: bool = True) -> None:
        from ..config import load_settings
        from ..runner import Masker, Runner, mask_debug_logs

        self.c = c
        self.settings: Settings = load_settings(c)
        import os

        # AWS credentials from the environment: botocore's debug log carries the session token (X-Amz-Security-Token)
        self.mask = Masker(os.environ.get(n, "") for n in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                                         "AWS_SECURITY_TOKEN"))
        mask_debug_logs(self.mask)  # `inv -d` prints botocore's debug log, API parameters included
        self.runner = Runner(echo=echo, mask=self.mask)

    def say(self, text: str = "") -> None:
        print(self.mask(text), flush=True)

    def warn(self, text: str) -> None:
        print(self.mask(text), file=sys.stderr, flush=True)

    def environment(self, name: str) -> Environment:
        return self.settings.environment(name)

    def env_file(self, env: Environment, *, required: bool = True) -> EnvFile | None:
        """Load and check the environment's ``.env``; its values become masked secrets."""
        from ..envfile import load_env_file

        if not required and not env.env_file.exists():
            return None
        loaded = load_env_file(env.env_file, env.env_example, root=self.settings.root)
        self.mask.add(*(v for v in loaded.values.values() if v not in self.public_words))
        return loaded

    def deploy_events(self, env: Environment):  # -> DeployEvents
        """The project's hooks and webhook (``dockyard.hooks``) for a run on ``env``."""
        from ..core.hooks import DeployEvents

        def env_values() -> dict[str, str]:
            loaded = self.env_file(env, required=False)
            return dict(loaded.values) if loaded is not None else {}

        return DeployEvents(self.settings.hooks, self.settings.root, say=self.say, warn=self.warn,
                            env_values=env_values)

    @cached_property
    def public_words(self) -> frozenset[str]:
        """Values the settings already show (environment names, the app): masking them would garble output."""
        s = self.settings
        return frozenset({*s.environments, s.app, s.repository, s.registry.url})

    @cached_property
    def docker(self):  # -> DockerClient
        from ..clients.docker import DockerClient

        return DockerClient(self.runner, stall_timeout=self.settings.registry.stall_timeout)

    @cached_property
    def builder(self):  # -> Builder
        """The builder ``image.builder`` chooses: BuildKit through Buildx when found (auto), else the legacy one."""
        from ..clients.buildx import LEGACY, choose_builder, find_buildx

        s = self.settings
        install = None if s.builder == LEGACY else find_buildx(self.runner)
        return choose_builder(s.builder, install, origin=s.section.origin("dockyard.image.builder"))

    def registry_digest(self, tag: str, *, timeout: float = 10, env_file: Any = None) -> str:
        """The registry's digest of ``<repository>:tag`` (a multi-platform release: its index's), when a plain
        (v2) registry can say; "" otherwise (no tag, no credentials, no answer)."""
        found = self.registry_lookup(tag, timeout=timeout, env_file=env_file)
        return found if found and found != UNKNOWN else ""

    def registry_lookup(self, tag: str, *, timeout: float = 10, env_file: Any = None) -> str | None:
        """The registry's digest of ``<repository>:tag``; None when the registry says it has no such tag,
        :data:`UNKNOWN` when it cannot be asked (not a v2 registry, no credentials, no answer)."""
        if self.settings.registry.kind != "v2" or not tag:
            return UNKNOWN
        from ..core.credentials import gather_credentials
        from ..errors import DockyardError
        from ..registry import remote_digest

        try:
            credentials = gather_credentials(self.settings, mask=self.mask, interactive=False, env_file=env_file)
            return remote_digest(credentials, self.settings.repository, tag, timeout=timeout)
        except (DockyardError, OSError):
            return UNKNOWN

    @cached_property
    def local_platform(self) -> str:
        """The platform local builds are for: ``image.platforms``' one, or with several the engine's (else the
        first listed); "" = the engine's own, no ``--platform``."""
        from ..core.platforms import is_multi, local_platform

        platforms = self.settings.image_platforms
        if not is_multi(platforms):
            return platforms[0] if platforms else ""
        return local_platform(platforms, self.engine_platform)

    @cached_property
    def engine_platform(self) -> str:
        """The engine's own platform (``linux/amd64``), asked once per command; "" when no engine says."""
        try:
            return self.docker.engine_platform()
        except Exception:  # noqa: BLE001 - no docker binary or engine: callers fall back to the listed platforms
            return ""

    def build_cache(self, previous: tuple[str, ...] = ()) -> tuple[str, ...]:
        """``image.cache`` as ``--cache-to``/``--cache-from`` options (``previous``: the images whose cache inline
        mode reads); refuses, in one line, a mode the builder cannot do before anything is built."""
        from ..clients.buildx import builder_driver, cache_arguments, check_cache_driver

        s = self.settings
        if s.image_cache == "none":
            return ()
        builder = self.builder
        driver = builder_driver(self.runner, builder) if s.image_cache == "registry" else ""
        check_cache_driver(s.image_cache, builder, driver, origin=s.section.origin("dockyard.image.cache"))
        return cache_arguments(s.image_cache, s.repository, self._cache_images(previous))

    def _cache_images(self, refs: tuple[str, ...]) -> tuple[str, ...]:
        """The ``refs`` an inline-cache build can import: those the registry has, or may have (it cannot be asked).
        One it lacks (the first build of an environment) is left out rather than have Buildx print an ERROR."""
        kept = []
        for ref in refs:
            repository, _, tag = ref.rpartition(":")
            if repository == self.settings.repository and self.registry_lookup(tag, timeout=5) is None:
                self.say(f"no cache image {ref} in the registry yet: this build starts without it (image.cache: "
                         "inline)")
                continue
            kept.append(ref)
        return tuple(kept)

    def build_secrets(self, *, check: bool = True) -> tuple[str, ...]:
        """``image.build_secrets`` as ``--secret`` values; their values join the masker."""
        import os

        from ..images import secret_arguments, secret_values

        secrets = self.settings.build_secrets
        arguments = secret_arguments(secrets, os.environ, check=check)
        self.mask.add(*secret_values(secrets, os.environ))
        return arguments

    @cached_property
    def git(self):  # -> GitClient
        from ..clients.git import GitClient

        return GitClient(self.runner, self.settings.root)


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows as aligned columns (the first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
