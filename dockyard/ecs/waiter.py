"""Deciding whether an ECS deployment succeeded: pure verdicts over :class:`ServiceState` snapshots, and the loop.

Failure: the circuit breaker's ``rolloutState`` FAILED, a service event saying ECS was "unable" to place or start
tasks, the PRIMARY deployment not being our revision, or the deadline. Success: the PRIMARY deployment is ours and
``runningCount == desiredCount`` (old tasks still draining do not count against the deploy).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from ..clients.ecs import ServiceState, short_arn
from ..errors import DeployFailed, DeployTimedOut


class DeploymentFailed(DeployFailed):
    """The deployment did not become steady (the message says why)."""


class DeploymentTimedOut(DeploymentFailed):
    """The deadline passed before the deployment became steady."""

    exit_code = DeployTimedOut.exit_code


@dataclass(frozen=True)
class Verdict:
    done: bool = False
    failure: str = ""
    progress: str = ""


def assess(state: ServiceState, target_arn: str, since: datetime | None = None) -> Verdict:
    primary = state.primary
    if primary is None:
        return Verdict(progress="no PRIMARY deployment yet")
    if primary.task_definition != target_arn:
        return Verdict(failure=f"the PRIMARY deployment runs {short_arn(primary.task_definition)}, not "
                               f"{short_arn(target_arn)} (rolled back by ECS, or another deploy replaced ours)")
    if primary.rollout_state == "FAILED":
        reason = primary.rollout_reason or "no reason given"
        return Verdict(failure=f"the deployment circuit breaker failed the rollout: {reason}")
    for event in state.events:
        if since is not None and event.created is not None and _aware(event.created) < _aware(since):
            continue
        if "unable" in event.message.lower():
            return Verdict(failure=f"ECS says: {event.message}")
    progress = f"{short_arn(target_arn)}: {primary.running}/{primary.desired} running, {primary.pending} pending"
    if primary.running == primary.desired:
        return Verdict(done=True, progress=progress)
    return Verdict(progress=progress)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.astimezone()


def wait_for_deployment(
    describe: Callable[[], ServiceState],
    target_arn: str,
    *,
    timeout: float,
    interval: float = 5.0,
    since: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    report: Callable[[str], None] = lambda line: None,
) -> Verdict:
    """Poll until a verdict; raise :class:`DeploymentFailed` on failure or at the deadline."""
    deadline = clock() + timeout
    last_progress = ""
    while True:
        verdict = assess(describe(), target_arn, since)
        if verdict.failure:
            raise DeploymentFailed(verdict.failure)
        if verdict.progress != last_progress:
            report(verdict.progress)
            last_progress = verdict.progress
        if verdict.done:
            return verdict
        if clock() >= deadline:
            raise DeploymentTimedOut(f"not steady after {timeout:g}s ({verdict.progress}); raise --timeout or "
                                   "dockyard.ecs.timeout if deploys are just slow")
        sleep(interval)
