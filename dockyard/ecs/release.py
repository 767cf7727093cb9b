"""The release command on ECS: one ``RunTask`` of the new revision with the app container's command overridden,
waited for until STOPPED, its exit code, stop reason and CloudWatch log lines read back.

The task is started the way the service starts its own (launch type or capacity provider strategy, network
configuration, platform version, read from DescribeServices), so it reaches what the service reaches (the database).
It runs before ``UpdateService``: when it fails, the service was never touched and keeps its live revision. The new
revision stays registered (revisions are immutable; ACTIVE beyond ``ecs.keep`` are pruned by later deploys) but
nothing runs it.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..clients.ecs import TaskNotStarted, TaskState, short_arn
from ..core.release_command import TAIL_LINES, ReleaseCommand, ReleaseCommandFailed
from ..errors import DockyardError
from .taskdef import TaskDefinition

#: the one-off task's startedBy (DescribeTasks and ListTasks show it)
STARTED_BY = "dockyard-release-command"
#: seconds to wait for a task told to stop (StopTask) to report STOPPED
STOP_GRACE = 60.0


@dataclass(frozen=True)
class LogStream:
    """Where a container of a task definition logs (``awslogs``): group, region and stream prefix."""

    group: str
    region: str
    prefix: str

    def display_value(self) -> str:
        return f"awslogs:{self.group}/{self.prefix}"

    def stream(self, container: str, task_arn: str) -> str:
        # awslogs names the stream prefix/container-name/task-id (ECS developer guide, "Using the awslogs driver")
        return f"{self.prefix}/{container}/{task_arn.rsplit('/', 1)[-1]}"


def log_stream_of(definition: TaskDefinition, container: str) -> LogStream | None:
    """The container's ``awslogs`` settings, or ``None`` when it logs elsewhere or the stream name is unknowable
    (without ``awslogs-stream-prefix`` on EC2 the stream is named after the Docker container id)."""
    config = (definition.containers().get(container) or {}).get("logConfiguration") or {}
    options = config.get("options") or {}
    if config.get("logDriver") != "awslogs" or not options.get("awslogs-group") or \
            not options.get("awslogs-stream-prefix"):
        return None
    return LogStream(options["awslogs-group"], options.get("awslogs-region", ""), options["awslogs-stream-prefix"])


def failure_reason(state: TaskState) -> str:
    """Why a STOPPED one-off task failed ("" when its container exited 0)."""
    if state.exit_code == 0:
        return ""
    why = "; ".join(p for p in (state.stop_code, state.stopped_reason, state.container_reason) if p)
    head = f"exited {state.exit_code}" if state.exit_code is not None else "stopped without an exit code"
    return f"{head} (task {short_arn(state.arn)}{': ' + why if why else ''})"


class EcsReleaseRunner:
    """The performer of a deploy plan's ``release.run`` step."""

    def __init__(self, client: Any, *, cluster: str, say: Callable[[str], None], interval: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.cluster = cluster
        self.say = say
        self.interval = interval
        self.sleep = sleep
        self.clock = clock
        self.started: list[str] = []  # the task ARNs this runner started (one per deploy)

    def run(self, *, arn: str, container: str, command: tuple[str, ...], timeout: int, live: str,
            placement: tuple[tuple[str, Any], ...] = (), logs: LogStream | None = None) -> TaskState:
        release = ReleaseCommand(tuple(command), int(timeout))
        serving = short_arn(live)
        try:
            task_arn = self.client.run_task(self.cluster, arn, container=container, command=release.argv,
                                            placement=placement, started_by=STARTED_BY)
        except TaskNotStarted as exc:
            raise ReleaseCommandFailed(release, f"could not be started as a task of {short_arn(arn)} ({exc.message})",
                                       serving=serving) from None
        self.started.append(task_arn)
        self.say(f"      task {short_arn(task_arn)} started")
        state = self._until_stopped(task_arn, container, float(timeout))
        timed_out = state is None
        if timed_out:
            self.client.stop_task(self.cluster, task_arn, f"dockyard: release command ran longer than {timeout}s")
            state = self._until_stopped(task_arn, container, STOP_GRACE)
        lines = self._log_lines(logs, container, task_arn)
        for line in lines:
            self.say(f"      | {line}")
        if timed_out:
            raise ReleaseCommandFailed(release, f"did not finish within {timeout}s (release_command_timeout); task "
                                       f"{short_arn(task_arn)} was stopped", lines, serving=serving)
        assert state is not None
        reason = failure_reason(state)
        if reason:
            raise ReleaseCommandFailed(release, reason, lines, serving=serving)
        self.say(f"      release command exited 0 (task {short_arn(task_arn)})")
        return state

    def _until_stopped(self, task_arn: str, container: str, timeout: float) -> TaskState | None:
        """Poll DescribeTasks until the task is STOPPED (its state), or ``None`` at the deadline."""
        deadline = self.clock() + timeout
        last = ""
        while True:
            state = self.client.task(self.cluster, task_arn, container)
            if state.status != last:
                self.say(f"      {short_arn(task_arn)}: {state.status}")
                last = state.status
            if state.stopped or state.status == "MISSING":
                return state
            if self.clock() >= deadline:
                return None
            self.sleep(self.interval)

    def _log_lines(self, logs: LogStream | None, container: str, task_arn: str) -> list[str]:
        if logs is None:
            self.say(f"      (container {container} does not log to CloudWatch with awslogs-stream-prefix: no output "
                     "to show)")
            return []
        try:
            return self.client.log_tail(logs.group, logs.stream(container, task_arn), region=logs.region,
                                        limit=TAIL_LINES)
        except DockyardError as exc:  # the output is for people; the exit code decides the deploy
            self.say(f"      (its output could not be read: {exc.message})")
            return []
