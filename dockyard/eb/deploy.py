"""Deploying a release to an Elastic Beanstalk environment: releases, the plan, the wait, the rollback.

``plan_deploy`` reads remote state and returns a :class:`~dockyard.plan.Plan` whose steps call a
:class:`Deployment`; ``--dry-run`` prints that same plan. :func:`wait_for_update` is the wait that never lies:
events of this update only (by request id), fail fast on ERROR/FATAL and the known failure messages, then Status
``Ready`` *and* our ``VersionLabel``, then the health window, all under one deadline.
"""
from __future__ import annotations

import difflib
import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable

from ..clients.eb import AppVersion, EbClient, EnvironmentState, Event
from ..core.versions import Release
from ..errors import DeployFailed, DeployTimedOut, DockyardError, Refused, RolledBack  # noqa: F401 - re-exported
from ..plan import Plan, Step
from .bundle import Bundle, describe

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


@dataclass
class Deployment:
    """One deploy of ``release`` to ``environment`` (an EB environment name), as the plan's steps run it."""

    client: EbClient
    application: str
    environment: str
    release: Release
    bundle: Bundle
    bucket: str
    key: str
    policy: WaitPolicy
    previous_label: str
    reuse_object: bool
    reuse_version: bool
    say: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    no_rollback: bool = False
    request_id: str = ""
    outcome: WaitOutcome | None = None
    result: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.release.label

    def upload(self) -> None:
        if self.reuse_object:
            self.say(f"  s3://{self.bucket}/{self.key} already holds this bundle; not uploading it again")
            return
        data = self.bundle.zip_bytes()
        self.client.upload(self.bucket, self.key, data, sha256=self.bundle.digest)

    def create_version(self) -> None:
        if self.reuse_version:
            self.say(f"  application version {self.label} already points at this bundle; reusing it")
            return
        self.client.create_version(self.application, self.label, bucket=self.bucket, key=self.key,
                                   description=self.release.description)

    def update(self) -> None:
        self.request_id = self.client.update_environment(self.application, self.environment, label=self.label)

    def wait(self) -> None:
        outcome = wait_for_update(self.client, self.application, self.environment, self.label, self.request_id,
                                  self.policy, say=self.say, sleep=self.sleep, clock=self.clock)
        self.outcome = outcome
        if outcome.ok:
            self.result = "succeeded"
            return
        if outcome.result == "timeout":
            self.result = "timed out"
            raise DeployTimedOut(f"deploy of {self.label} to {self.environment} timed out: {outcome.detail}; "
                                 "watch `inv eb.events --follow`, then `inv eb.rollback` if it does not recover")
        self.rollback(outcome.detail)

    def rollback(self, why: str) -> None:
        previous = self.previous_label
        if self.no_rollback or not previous or previous == self.label:
            self.result = "failed"
            hint = "--no-rollback was given" if self.no_rollback else "there is no previous version to return to"
            raise DeployFailed(f"deploy of {self.label} to {self.environment} failed: {why} ({hint})")
        self.say(f"deploy of {self.label} failed: {why}")
        self.say(f"rolling back {self.environment} to {previous}")
        self.wait_until_ready()
        request_id = self.client.update_environment(self.application, self.environment, label=previous)
        back = wait_for_update(self.client, self.application, self.environment, previous, request_id, self.policy,
                               say=self.say, sleep=self.sleep, clock=self.clock)
        if not back.ok:
            self.result = "failed"
            raise DeployFailed(f"deploy of {self.label} to {self.environment} failed ({why}) and the rollback to "
                               f"{previous} failed too: {back.detail}")
        self.result = "rolled back"
        raise RolledBack(f"deploy of {self.label} to {self.environment} failed ({why}); rolled back to {previous}, "
                         "which is live and healthy")

    def wait_until_ready(self) -> None:
        """A failed update may leave the environment Updating a moment; EB refuses another update until Ready."""
        deadline = self.clock() + self.policy.timeout
        while True:
            state = self.client.environment(self.application, self.environment)
            if state is None or state.status == "Ready" or self.clock() >= deadline:
                return
            self.sleep(self.policy.poll_interval)


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


def deploy_plan(deployment: Deployment, *, lock_step: Step, state: EnvironmentState) -> Plan:
    d = deployment
    calls = []
    if not d.reuse_object:
        calls.append(f"s3:PutObject s3://{d.bucket}/{d.key} (SSE AES256, private, "
                     f"{len(d.bundle.zip_bytes())} bytes, sha256 {d.bundle.digest[:12]})")
    steps = [
        lock_step,
        Step(f"upload the bundle to s3://{d.bucket}/{d.key}" + (" (already there: reused)" if d.reuse_object else ""),
             action=d.upload, details=tuple(calls)),
        Step(f"create application version {d.label}" + (" (exists with this bundle: reused)" if d.reuse_version
                                                           else ""),
             action=d.create_version,
             details=() if d.reuse_version else (
                 f"elasticbeanstalk:CreateApplicationVersion ApplicationName={d.application} VersionLabel={d.label} "
                 f"Description={d.release.description!r}",)),
        Step(f"update {d.environment} from {state.version_label or 'nothing'} to {d.label}", action=d.update,
             details=(f"elasticbeanstalk:UpdateEnvironment EnvironmentName={d.environment} VersionLabel={d.label}",)),
        Step(f"wait for Ready, {d.label} live and health {'/'.join(d.policy.healthy_states)} for "
             f"{d.policy.health_window:g}s (deadline {d.policy.timeout:g}s)"
             + ("" if d.no_rollback else f"; on failure roll back to {d.previous_label or 'nothing'}"),
             action=d.wait),
    ]
    return Plan(f"deploy {d.release.version} ({d.label}) to {d.environment} [{d.application}]", tuple(steps))


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
