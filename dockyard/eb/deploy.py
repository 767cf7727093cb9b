"""Deploying a release to an Elastic Beanstalk environment: releases, the plan, the wait, the rollback.

:func:`deploy_plan` turns an :class:`EbDeploy` (what was decided from the state read before) into a
:class:`~dockyard.plan.Plan` of client calls; ``--dry-run`` prints that same plan, and :class:`EbWaiter` performs
its wait step. :func:`wait_for_update` is the wait that never lies:
events of this update only (by request id), fail fast on ERROR/FATAL and the known failure messages, then Status
``Ready`` *and* our ``VersionLabel``, then the health window, all under one deadline.
"""
from __future__ import annotations

import difflib
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..clients.eb import AppVersion, EbClient, EnvironmentState, Event
from ..core.release_command import SKIPPED, ReleaseCommand, ReleaseCommandFailed
from ..core.versions import NO_RELEASE_COMMAND, Release
from ..errors import DeployFailed, DeployTimedOut, DockyardError, Refused, RolledBack  # noqa: F401 - re-exported
from ..plan import ApiCall, Output, Plan, Step
from .bundle import RELEASE_COMMAND_NAME, Bundle, describe

FAILURE_MESSAGES = ("failed to deploy application", "reverted to the previous", "failed to pull",
                    "instance deployment failed", "deployment failed", "command failed on")
AUTH_MESSAGES = ("unauthorized", "authentication required", "no basic auth credentials", "denied",
                 "incorrect username or password")


class LabelConflict(Refused):
    """The version label already names a different bundle."""


# --- the wait -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitPolicy:
    healthy_states: tuple[str, ...] = ("Green",)
    health_window: float = 30.0
    timeout: float = 900.0
    poll_interval: float = 5.0
    auth_hint: str = "check the dockercfg: `inv eb.dockercfg`"  # what to do when the registry refuses the pull


@dataclass(frozen=True)
class WaitOutcome:
    result: str  # ready | failed | timeout
    detail: str
    state: EnvironmentState | None = None
    events: tuple[Event, ...] = ()

    @property
    def ok(self) -> bool:
        return self.result == "ready"


def failure_in(event: Event) -> bool:
    text = event.message.lower()
    return event.severity in ("ERROR", "FATAL") or any(m in text for m in FAILURE_MESSAGES)


def release_command_failure(events: Iterable[Event]) -> str:
    """The event saying the release command's container command failed ("" when none does)."""
    return next((e.message for e in events if failure_in(e) and RELEASE_COMMAND_NAME in e.message), "")


def explain_failure(events: list[Event], fallback: str,
                    hint: str = "check the dockercfg: `inv eb.dockercfg`") -> str:
    """The most useful line: an authentication failure is named as such, with what to check."""
    messages = [e.message for e in events if failure_in(e)] or [fallback]
    for message in messages:
        if any(m in message.lower() for m in AUTH_MESSAGES):
            return f"registry authentication failed: {message} ({hint})"
    return messages[0]


def wait_for_update(
    client: EbClient,
    application: str,
    environment: str,
    label: str,
    request_id: str,
    policy: WaitPolicy,
    *,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> WaitOutcome:
    deadline = clock() + policy.timeout
    seen: set[tuple] = set()
    mine: list[Event] = []
    healthy_since: float | None = None
    last_health = ""
    state: EnvironmentState | None = None
    while True:
        failed = None
        for event in client.events(application, environment, request_id=request_id):
            key = (event.date, event.message)
            if key in seen:
                continue
            seen.add(key)
            mine.append(event)
            say(f"  {event.line()}")
            failed = failed or (event if failure_in(event) else None)
        if failed is not None:
            return WaitOutcome("failed", explain_failure(mine, failed.message, policy.auth_hint), state,
                               tuple(mine))
        state = client.environment(application, environment)
        if state is None:
            return WaitOutcome("failed", f"environment {environment} disappeared", None, tuple(mine))
        now = clock()
        if state.status == "Ready" and state.version_label != label:
            late = [e for e in client.events(application, environment, request_id=request_id)
                    if (e.date, e.message) not in seen]
            for event in late:
                mine.append(event)
                say(f"  {event.line()}")
            return WaitOutcome("failed", explain_failure(mine, f"{environment} is Ready but runs "
                                                         f"{state.version_label or 'nothing'}, not {label}",
                                                         policy.auth_hint), state, tuple(mine))
        if state.status == "Ready":
            if state.health != last_health:
                say(f"  health {state.health}" + (f" ({state.health_status})" if state.health_status else ""))
                last_health = state.health
            if state.health in policy.healthy_states:
                healthy_since = now if healthy_since is None else healthy_since
                if now - healthy_since >= policy.health_window:
                    return WaitOutcome("ready", f"{environment} runs {label}, health {state.health}", state,
                                       tuple(mine))
            elif state.health == "Red":
                return WaitOutcome("failed", f"{environment} health went Red running {label}"
                                   + (f" ({state.health_status})" if state.health_status else ""), state, tuple(mine))
            else:
                healthy_since = None
        if now >= deadline:
            return WaitOutcome("timeout", f"{environment} still {state.status}/{state.health} after "
                               f"{policy.timeout:g}s", state, tuple(mine))
        sleep(max(0.0, min(policy.poll_interval, deadline - now)))


# --- the deployment ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EbDeploy:
    """What one deploy of ``release`` to ``environment`` (an EB environment name) will do, decided from the state
    read before it: the plan is built from this value alone."""

    application: str
    environment: str
    release: Release
    bundle_zip: bytes = field(repr=False)
    bundle_digest: str
    bucket: str
    key: str
    policy: WaitPolicy
    previous_label: str
    reuse_object: bool
    reuse_version: bool
    lock_where: str
    lock_environment: str
    force_unlock: bool = False
    no_rollback: bool = False
    no_wait: bool = False
    release_command: ReleaseCommand | None = None  # run by the bundle's leader-only container command
    skip_release_command: bool = False  # --skip-release-command: the bundle does not carry it
    secrets: Any = None  # eb.secrets.SecretsChange: the secret keys' values to store, their options (None: no keys)
    #: eb.secrets.SecretWriteStep storing again the values the previous label ran with, for the automatic rollback
    rollback_secrets: tuple[Any, ...] = ()

    @property
    def label(self) -> str:
        return self.release.label


class EbWaiter:
    """The performer of a plan's wait: the update's events and health (:func:`wait_for_update`), and the rollback
    to the previous label when it fails."""

    def __init__(self, client: EbClient, policy: WaitPolicy, *, say: Callable[[str], None] = print,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 secrets: Any = None) -> None:
        self.client = client
        self.secrets = secrets  # the EbSecretStore that writes back the previous values before a rollback
        self.policy = policy
        self.say = say
        self.sleep = sleep
        self.clock = clock

    def until_live(self, application: str, environment: str, label: str, request_id: str, previous_label: str = "",
                   no_rollback: bool = False, release_command: tuple[str, ...] = (),
                   release_timeout: int = 0, restore_secrets: tuple[Any, ...] = ()) -> WaitOutcome:
        outcome = wait_for_update(self.client, application, environment, label, request_id, self.policy,
                                  say=self.say, sleep=self.sleep, clock=self.clock)
        if outcome.ok:
            return outcome
        failed = release_command_failure(outcome.events)
        if release_command and failed:
            # EB failed the deployment before deploying: the previous version never stopped serving, so there is
            # nothing to roll back (a rollback would redeploy what runs)
            self.until_ready(application, environment)
            raise ReleaseCommandFailed(ReleaseCommand(tuple(release_command), int(release_timeout)),
                                       f"failed on the leader instance of {environment}",
                                       [e.line() for e in outcome.events if failure_in(e)] or [failed],
                                       serving=previous_label or "the previous version")
        if outcome.result == "timeout":
            raise DeployTimedOut(f"deploy of {label} to {environment} timed out: {outcome.detail}; "
                                 "watch `inv eb.events --follow`, then `inv eb.rollback` if it does not recover")
        if no_rollback or not previous_label or previous_label == label:
            hint = "--no-rollback was given" if no_rollback else "there is no previous version to return to"
            raise DeployFailed(f"deploy of {label} to {environment} failed: {outcome.detail} ({hint})")
        why = outcome.detail
        self.say(f"deploy of {label} failed: {why}")
        self.say(f"rolling back {environment} to {previous_label}")
        self.until_ready(application, environment)
        # EB's environment secrets name no version: the instances read the latest value when the previous label
        # is deployed again, so the values it ran with become the latest first (see EbService.restored_secrets)
        for write in restore_secrets:
            self.secrets.put(write.key, write.name, write.value, arn=write.arn, version_id=write.version_id,
                             exists=write.exists)
        if restore_secrets:
            self.say(f"restored the secret values {previous_label} ran with "
                     f"({', '.join(w.key for w in restore_secrets)})")
        request = self.client.update_environment(application, environment, label=previous_label)
        back = wait_for_update(self.client, application, environment, previous_label, request, self.policy,
                               say=self.say, sleep=self.sleep, clock=self.clock)
        if not back.ok:
            raise DeployFailed(f"deploy of {label} to {environment} failed ({why}) and the rollback to "
                               f"{previous_label} failed too: {back.detail}")
        raise RolledBack(f"deploy of {label} to {environment} failed ({why}); rolled back to {previous_label}, "
                         "which is live and healthy")

    def rolled_to(self, application: str, environment: str, label: str, request_id: str) -> WaitOutcome:
        """A rollback's wait: no rollback of the rollback."""
        outcome = wait_for_update(self.client, application, environment, label, request_id, self.policy,
                                  say=self.say, sleep=self.sleep, clock=self.clock)
        if not outcome.ok:
            raise DeployFailed(f"rollback of {environment} to {label} failed: {outcome.detail}")
        return outcome

    def settled(self, application: str, environment: str, label: str, request_id: str) -> WaitOutcome:
        """A configuration update's wait: Ready, and the running version healthy (only Ready when none runs)."""
        policy = self.policy
        if not label:  # nothing runs yet, so there is no health to wait for
            policy = WaitPolicy(("Green", "Yellow", "Grey"), 0, policy.timeout, policy.poll_interval,
                                policy.auth_hint)
        outcome = wait_for_update(self.client, application, environment, label, request_id, policy,
                                  say=self.say, sleep=self.sleep, clock=self.clock)
        if not outcome.ok:
            raise DeployFailed(f"updating the environment properties of {environment} failed: {outcome.detail}")
        return outcome

    def until_ready(self, application: str, environment: str) -> None:
        """A failed update may leave the environment Updating a moment; EB refuses another update until Ready."""
        deadline = self.clock() + self.policy.timeout
        while True:
            state = self.client.environment(application, environment)
            if state is None or state.status == "Ready" or self.clock() >= deadline:
                return
            self.sleep(self.policy.poll_interval)


def result_of(error: BaseException | None, *, no_wait: bool = False) -> str:
    """The audit record's result of a deploy that ended with ``error`` (None: it did not fail)."""
    if error is None:
        return "started" if no_wait else "succeeded"
    if isinstance(error, RolledBack):
        return "rolled back"
    if isinstance(error, DeployTimedOut):
        return "timed out"
    return "failed"


def check_label(existing: AppVersion | None, object_meta: dict[str, str] | None, bucket: str, key: str,
                digest: str) -> tuple[bool, bool]:
    """(reuse the S3 object, reuse the version); :class:`LabelConflict` when the label names another bundle."""
    same_object = object_meta is not None and object_meta.get("sha256") == digest
    if existing is None:
        return same_object, False
    if (existing.bucket, existing.key) != (bucket, key) or not same_object:
        raise LabelConflict(
            f"application version {existing.label} already exists with a different bundle "
            f"(s3://{existing.bucket}/{existing.key}); a label is never reused for other contents: release a new "
            "version")
    return True, True


def release_arguments(d: EbDeploy) -> dict[str, Any]:
    if d.release_command is None or d.skip_release_command:
        return {}
    return {"release_command": d.release_command.argv, "release_timeout": d.release_command.timeout}


def deploy_plan(d: EbDeploy) -> Plan:
    """The steps of ``d``, as data: a reused bundle or version is not uploaded or created again."""
    notes = []
    steps = [Step(f"take the deploy lock of {d.lock_environment} ({d.lock_where})"
                  + (", clearing any stale one first" if d.force_unlock else ""),
                  instruction=ApiCall.of("lock", "acquire", version=str(d.release.version),
                                         force_unlock=d.force_unlock))]
    if d.reuse_object:
        notes.append(f"s3://{d.bucket}/{d.key} already holds this bundle; not uploading it again")
    else:
        steps.append(Step(f"upload the bundle to s3://{d.bucket}/{d.key} ({len(d.bundle_zip)} bytes, SSE AES256, "
                          f"private, sha256 {d.bundle_digest[:12]})",
                          instruction=ApiCall.of("eb", "upload", bucket=d.bucket, key=d.key, data=d.bundle_zip,
                                                 sha256=d.bundle_digest)))
    if d.reuse_version:
        notes.append(f"application version {d.label} already points at this bundle; reusing it")
    else:
        steps.append(Step(f"create application version {d.label}",
                          instruction=ApiCall.of("eb", "create_version", application=d.application, label=d.label,
                                                 bucket=d.bucket, key=d.key, description=d.release.description)))
    if d.release_command is not None and d.skip_release_command:
        notes.append(f"release command {d.release_command.text!r} {SKIPPED}: the bundle does not carry it, and its "
                     f"label ends {NO_RELEASE_COMMAND}")
    release = () if d.release_command is None or d.skip_release_command else (
        f"EB runs the release command {d.release_command.text!r} once, on the leader instance, before {d.label} is "
        f"deployed (.ebextensions container_commands, leader_only; at most {d.release_command.timeout}s); a "
        "failure fails the deployment and the old version keeps serving",)
    steps += secret_steps(d.secrets)
    steps.append(Step(f"update {d.environment} from {d.previous_label or 'nothing'} to {d.label}"
                      + secrets_title(d.secrets),
                      instruction=update_call(d.secrets, application=d.application, name=d.environment,
                                              label=d.label),
                      details=release + (d.secrets.diff if d.secrets is not None else ())))
    restored = () if d.no_rollback else d.rollback_secrets
    if not d.no_wait:
        steps.append(Step(
            f"wait for Ready, {d.label} live and health {'/'.join(d.policy.healthy_states)} for "
            f"{d.policy.health_window:g}s (deadline {d.policy.timeout:g}s)"
            + ("" if d.no_rollback else f"; on failure roll back to {d.previous_label or 'nothing'}")
            + (f" with the secret values it ran with ({', '.join(w.key for w in restored)})" if restored else ""),
            instruction=ApiCall.of("wait", "until_live", output="outcome",
                                   secret=("restore_secrets",) if restored else (),
                                   application=d.application, environment=d.environment, label=d.label,
                                   request_id=Output("request_id"), previous_label=d.previous_label,
                                   no_rollback=d.no_rollback, **release_arguments(d),
                                   **({"restore_secrets": restored} if restored else {}))))
    return Plan(f"deploy {d.release.version} ({d.label}) to {d.environment} [{d.application}]", tuple(steps),
                notes=tuple(notes))


def secret_steps(secrets: Any) -> list[Step]:
    """The steps storing the secret values a change writes (none without secret keys)."""
    from .secrets import write_steps

    return write_steps(secrets) if secrets is not None else []


def secrets_title(secrets: Any) -> str:
    if secrets is None or not secrets.changes_environment:
        return ""
    return f", with its environment secrets ({len(secrets.diff)} change(s))"


def update_call(secrets: Any, *, application: str, name: str, label: str = "",
                option_settings: tuple[dict[str, str], ...] = (),
                options_to_remove: tuple[dict[str, str], ...] = (), masked: bool = False) -> ApiCall:
    """``UpdateEnvironment``: through the secret store when secret options change (it puts in the ARNs of the
    secrets the run creates), else the EB client. ``masked``: the options carry plain values, never shown."""
    if secrets is not None and secrets.changes_environment:
        option_settings = tuple(option_settings) + secrets.option_settings
        options_to_remove = tuple(options_to_remove) + secrets.options_to_remove
        masked = masked or secrets.plain
    extra: dict[str, Any] = {}
    if label:
        extra["label"] = label
    if option_settings:
        extra["option_settings"] = option_settings
    if options_to_remove:
        extra["options_to_remove"] = options_to_remove
    performer = "secrets" if secrets is not None and secrets.changes_environment else "eb"
    return ApiCall.of(performer, "update_environment", output="request_id",
                      secret=("option_settings",) if masked and option_settings else (), application=application,
                      name=name, **extra)


def rollback_plan(*, application: str, environment: str, lock_environment: str, lock_where: str, current: str,
                  label: str, secrets: Any = None) -> Plan:
    """``secrets``: the secret values the deploy of ``label`` had, stored again (see :mod:`dockyard.eb.secrets`)."""
    return Plan(f"roll back {environment} from {current} to {label}", (
        Step(f"take the deploy lock of {lock_environment} ({lock_where})",
             instruction=ApiCall.of("lock", "acquire", version=label, action="rollback")),
        *secret_steps(secrets),
        Step(f"update {environment} to {label}" + secrets_title(secrets),
             instruction=update_call(secrets, application=application, name=environment, label=label),
             details=secrets.diff if secrets is not None else ()),
        Step(f"wait for Ready and health of {label}",
             instruction=ApiCall.of("wait", "rolled_to", output="outcome", application=application,
                                    environment=environment, label=label, request_id=Output("request_id"))),
    ))


def setenv_plan(*, application: str, environment: str, diff: tuple[str, ...],
                option_settings: tuple[dict[str, str], ...], options_to_remove: tuple[dict[str, str], ...],
                label: str, secrets: Any = None) -> Plan:
    """Store the secret values, update the environment's properties (and secrets), wait until it settles.

    ``secrets`` (:class:`~dockyard.eb.secrets.SecretsChange`): the values to store, never shown, and the
    environment secrets options (ARNs). The environment properties hold values from ``.env`` too, so they are
    never shown either: the ``diff`` lines (masked) say what changes.
    """
    steps = secret_steps(secrets)
    shown = diff + (secrets.diff if secrets is not None else ())
    steps.append(Step(f"update the environment properties of {environment} ({len(shown)} change(s))",
                      instruction=update_call(secrets, application=application, name=environment,
                                              option_settings=option_settings, options_to_remove=options_to_remove,
                                              masked=True),
                      details=shown))
    steps.append(Step(f"wait until {environment} is Ready" + (f" with {label} healthy" if label else ""),
                      instruction=ApiCall.of("wait", "settled", output="outcome", application=application,
                                             environment=environment, label=label, request_id=Output("request_id"))))
    return Plan(f"set the environment properties of {environment} [{application}]", tuple(steps))


def swap_plan(*, application: str, live: str, idle: str, live_cname: str, version: str, smoke_url: str,
              timeout: float) -> Plan:
    """Blue/green: deploy to the idle twin, smoke-test it, swap the CNAMEs, wait until the idle one holds live's."""
    return Plan(f"blue/green: {version or 'the latest release'} to {idle} (idle), then swap it with {live} (live)", (
        Step(f"deploy {version or 'the latest release'} to {idle} (no rollback: {live} keeps serving meanwhile)",
             instruction=ApiCall.of("service", "deploy", version=version, environment=idle, timeout=timeout,
                                    no_rollback=True, action="deploy-idle")),
        Step(f"smoke test {smoke_url}", instruction=ApiCall.of("smoke", "check", url=smoke_url, idle=idle, live=live)),
        Step(f"swap CNAMEs of {idle} and {live}",
             instruction=ApiCall.of("eb", "swap_cnames", source=idle, destination=live)),
        Step(f"wait until {idle} holds {live_cname} and is Ready",
             instruction=ApiCall.of("swap", "until_swapped", application=application, now_live=idle,
                                    cname=live_cname)),
    ))


def bundle_dockerrun_diff(live: bytes | None, bundle: Bundle, live_label: str) -> str:
    """Unified diff of the deployed bundle's Dockerrun/compose file against ours."""
    ours = bundle.text("Dockerrun.aws.json") + bundle.text("docker-compose.yml")
    theirs = ""
    if live:
        try:
            with zipfile.ZipFile(io.BytesIO(live)) as archive:
                names = set(archive.namelist())
                for name in ("Dockerrun.aws.json", "docker-compose.yml"):
                    if name in names:
                        theirs += archive.read(name).decode()
        except zipfile.BadZipFile:
            theirs = "(the deployed bundle is not a zip)\n"
    diff = difflib.unified_diff(theirs.splitlines(), ours.splitlines(), fromfile=f"deployed ({live_label or 'none'})",
                                tofile="this deploy", lineterm="")
    return "\n".join(diff) or "(no change to the deployed Dockerrun)"


def dry_run_report(bundle: Bundle, diff: str) -> str:
    return describe(bundle) + "\ndiff against the deployed version:\n" + "\n".join(f"  {line}" for line in
                                                                                    diff.splitlines())


def load_json(text: str) -> Any:
    return json.loads(text)
