"""Project hooks around a deploy, and the notification when it ends (``dockyard.hooks``).

Hooks are the project's own executables in ``hooks.dir`` named after the moment they run at: ``pre-build``
(before ``image.build`` builds), ``pre-deploy`` and ``pre-rollback`` (before anything is locked or changed),
``post-deploy``, ``post-rollback`` (after a run that succeeded) and ``on-failure`` (after one that did not). A hook
that is not there is skipped; one that is there but not executable is an error, since the user meant it to run.

A hook gets the run's facts as ``DOCKYARD_*`` variables (:meth:`DeployFacts.variables`) and a clean environment:
``PATH``, ``HOME`` and the locale, plus the variables ``hooks.pass_env`` names, plus the environment's ``.env``
values only with ``hooks.env_file: true``. So the registry password, AWS keys and the webhook URL are never in a
hook's environment unless the project asks for them by name.

A failing ``pre-*`` hook stops the run before anything changed (exit 3); a failing ``post-*`` or ``on-failure``
hook is reported and never turns a finished deploy into a failure, nor a failure into another one.

The webhook (``hooks.webhook_env`` names the variable holding its URL, a secret: never printed) gets one POST per
finished deploy, rollback or release command: Slack-compatible (``{"text": ...}`` plus the fields) or the plain
facts (``webhook_format: json``). It is bounded by ``webhook_timeout`` and a failing webhook is a warning only.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import CommandFailed
from ..section import keys_of

if TYPE_CHECKING:
    from ..config import Settings

SECTION = "hooks"

NAMES = ("pre-build", "pre-deploy", "pre-rollback", "post-deploy", "post-rollback", "on-failure")
FORMATS = ("slack", "json")
#: what a hook inherits from dockyard's own environment, whatever the project says (no secrets among them)
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "TMPDIR", "USER", "LOGNAME", "SHELL", "CI")

DEFAULTS: dict[str, Any] = {
    "dir": "hooks",  # the project folder holding the hook executables (relative to the project root)
    "timeout": 300,  # seconds each hook may run before it is stopped (and counts as failed)
    "pass_env": [],  # names of dockyard's environment variables a hook also gets (e.g. AWS_PROFILE)
    "env_file": False,  # true: hooks also get the deployed environment's .env values (its secrets)
    "webhook_env": "DOCKYARD_WEBHOOK_URL",  # the variable holding the webhook URL; unset or empty: no notification
    "webhook_format": "slack",  # slack ({"text": ..., fields}) | json (the facts only)
    "webhook_timeout": 10,  # seconds the webhook may take to answer
}
SCHEMA = keys_of(DEFAULTS)


class HookFailed(CommandFailed):
    """A ``pre-*`` hook exited non-zero or ran out of time: nothing was changed (exit 3)."""


@dataclass(frozen=True)
class HooksSettings:
    dir: Path
    timeout: int
    pass_env: tuple[str, ...]
    env_file: bool
    webhook_env: str
    webhook_format: str
    webhook_timeout: int


def parse(settings: Settings) -> HooksSettings:
    """Validate ``dockyard.hooks`` (every key, with the key and its file named on error)."""
    hooks = settings.section.section(SECTION)
    folder = hooks.str("dir", DEFAULTS["dir"], required=True)
    path = Path(folder) if Path(folder).is_absolute() else settings.root / folder
    if path.exists() and not path.is_dir():
        raise hooks.fail("dir", f"{folder} is not a folder")
    names = hooks.strings("pass_env")
    for name in (*names, hooks.str("webhook_env")):
        if name and not (name.replace("_", "").isalnum() and not name[0].isdigit()):
            raise hooks.fail("pass_env" if name in names else "webhook_env",
                             f"expected a variable name (letters, digits, '_'), got {name!r}")
    return HooksSettings(dir=path, timeout=hooks.int("timeout", 300, minimum=1), pass_env=names,
                         env_file=hooks.bool("env_file", False), webhook_env=hooks.str("webhook_env"),
                         webhook_format=hooks.str("webhook_format", "slack", choices=FORMATS),
                         webhook_timeout=hooks.int("webhook_timeout", 10, minimum=1))


@dataclass
class DeployFacts:
    """What a hook and the notification are told about one run."""

    action: str  # deploy | rollback | build | release-command
    environment: str
    target: str  # eb | ecs | ssh | local
    version: str = ""
    previous: str = ""
    image: str = ""
    actor: str = ""
    result: str = ""  # "" before the run; succeeded, failed, rolled_back, interrupted ... after it
    exit_code: int = 0
    url: str = ""
    message: str = ""

    def variables(self) -> dict[str, str]:
        return {"DOCKYARD_ACTION": self.action, "DOCKYARD_ENVIRONMENT": self.environment,
                "DOCKYARD_TARGET": self.target, "DOCKYARD_VERSION": self.version,
                "DOCKYARD_PREVIOUS_VERSION": self.previous, "DOCKYARD_IMAGE": self.image,
                "DOCKYARD_ACTOR": self.actor, "DOCKYARD_RESULT": self.result,
                "DOCKYARD_EXIT_CODE": str(self.exit_code), "DOCKYARD_URL": self.url,
                "DOCKYARD_MESSAGE": self.message}


@dataclass
class DeployEvents:
    """Runs the hooks of one run and sends its notification; ``say``/``warn`` print (masked by the caller)."""

    settings: HooksSettings
    root: Path
    say: Callable[[str], None]
    warn: Callable[[str], None]
    env_values: Callable[[], Mapping[str, str]] = dict  # the environment's .env, read only if hooks.env_file
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    post: Callable[..., int] | None = None  # (url, body, timeout) -> HTTP status; default clients.http.post_json

    # --- hooks ----------------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.settings.dir / name

    def present(self, name: str) -> bool:
        return self.path(name).is_file()

    def check(self, *names: str) -> None:
        """Refuse, before anything runs, a hook that is there but cannot run."""
        for name in names:
            path = self.path(name)
            if path.exists() and not (path.is_file() and os.access(path, os.X_OK)):
                raise HookFailed(f"hook {self._shown(path)} is not an executable file: `chmod +x` it, or remove it")

    def environment(self, facts: DeployFacts) -> dict[str, str]:
        env = {name: self.environ[name] for name in BASE_ENV if name in self.environ}
        env.update({name: self.environ[name] for name in self.settings.pass_env if name in self.environ})
        if self.settings.env_file:
            env.update(self.env_values())
        env.update(facts.variables())
        return env

    def run(self, name: str, facts: DeployFacts) -> bool:
        """Run hook ``name`` if present; True when it is absent or exited 0. A ``pre-*`` hook's failure raises."""
        if not self.present(name):
            return True
        self.check(name)
        path = self.path(name)
        self.say(f"==> hook {name}: {self._shown(path)}")
        try:
            proc = subprocess.run([str(path)], cwd=self.root, env=self.environment(facts), text=True,
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=self.settings.timeout)
            code, output = proc.returncode, proc.stdout + proc.stderr
            why = f"exited {code}"
        except subprocess.TimeoutExpired as exc:
            code, why = -1, f"did not finish within {self.settings.timeout}s (hooks.timeout)"
            output = _text(exc.stdout) + _text(exc.stderr)
        except OSError as exc:
            code, why, output = -1, f"could not start ({exc.strerror or exc})", ""
        for line in output.splitlines():
            self.say(f"    {name} | {line}")
        if code == 0:
            return True
        if name.startswith("pre-"):
            raise HookFailed(f"hook {name} {why}: nothing was changed; fix the hook or move it out of "
                             f"{self._shown(self.settings.dir)}")
        self.warn(f"warning: hook {name} {why} (the {facts.action} itself ended: {facts.result or 'unknown'})")
        return False

    def before(self, facts: DeployFacts) -> None:
        """The ``pre-<action>`` hook; every hook of the run is checked first, so none is found broken later."""
        self.check(*NAMES)
        self.run(f"pre-{facts.action}", facts)

    def after(self, facts: DeployFacts) -> None:
        """``post-<action>`` after success, ``on-failure`` otherwise; then the notification. Never raises."""
        try:
            self.run(f"post-{facts.action}" if facts.exit_code == 0 else "on-failure", facts)
        except CommandFailed as exc:  # a post hook that cannot run: the run itself is over
            self.warn(f"warning: {exc}")
        self.notify(facts)

    def _shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    # --- the notification -----------------------------------------------------------------------------------
    def webhook_url(self) -> str:
        return self.environ.get(self.settings.webhook_env, "").strip() if self.settings.webhook_env else ""

    def notify(self, facts: DeployFacts) -> bool:
        """POST the facts to the webhook, if one is set; a failure is a warning. True when it answered 2xx."""
        url = self.webhook_url()
        if not url:
            return False
        variable = self.settings.webhook_env
        if not url.lower().startswith(("http://", "https://")):
            self.warn(f"warning: ${variable} is not an http(s) URL; no notification was sent")
            return False
        post = self.post
        if post is None:
            from ..clients.http import post_json as post
        body = notification(facts, self.settings.webhook_format)
        try:
            status = post(url, body, timeout=self.settings.webhook_timeout)
        except Exception as exc:  # noqa: BLE001 - whatever the webhook does, the deploy's outcome stands
            self.warn(f"warning: the notification to ${variable} failed ({type(exc).__name__}); "
                      f"the {facts.action} itself ended: {facts.result}")
            return False
        if not 200 <= status < 300:
            self.warn(f"warning: the notification to ${variable} was answered HTTP {status}; "
                      f"the {facts.action} itself ended: {facts.result}")
            return False
        self.say(f"==> notified ${variable} (HTTP {status})")
        return True


def notification(facts: DeployFacts, fmt: str) -> dict[str, Any]:
    """The webhook's JSON body: the facts, and for Slack a one-line ``text`` and the fields as an attachment."""
    data = asdict(facts)
    if fmt == "json":
        return data
    ok = facts.exit_code == 0
    what = f"{facts.action} of {facts.version or 'the previous version'} to {facts.environment} ({facts.target})"
    text = f"{'✅' if ok else '❌'} {what}: {facts.result or ('succeeded' if ok else 'failed')}"
    if facts.actor:
        text += f", by {facts.actor}"
    if facts.url:
        text += f" <{facts.url}>"
    if not ok and facts.message:
        text += f": {facts.message}"
    shown = ("environment", "target", "version", "previous", "image", "actor", "result", "url")
    fields = [{"title": name, "value": data[name], "short": True} for name in shown if data[name]]
    return {"text": text, "attachments": [{"color": "good" if ok else "danger", "fields": fields}], "dockyard": data}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
