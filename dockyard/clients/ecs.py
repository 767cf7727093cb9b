"""The only place ECS (and ECR) are called: a typed client over boto3 that speaks dockyard's values and errors."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from ..ecs.taskdef import TaskDefinition  # the value ECS's task-definition calls speak
from ..errors import DockyardError, Refused
from .aws import AwsApi, ExpectedError


@dataclass(frozen=True)
class Deployment:
    id: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    task_definition: str
    desired: int
    running: int
    pending: int
    rollout_state: str
    rollout_reason: str
    created: datetime | None


@dataclass(frozen=True)
class ServiceEvent:
    created: datetime | None
    message: str


@dataclass(frozen=True)
class ServiceState:
    cluster: str
    name: str
    status: str
    task_definition: str
    desired: int
    running: int
    pending: int
    deployments: tuple[Deployment, ...]
    events: tuple[ServiceEvent, ...]  # newest first, as ECS returns them
    #: how the service places its tasks (launchType or capacityProviderStrategy, networkConfiguration,
    #: platformVersion): a one-off task of the service's revision is started the same way
    placement: tuple[tuple[str, Any], ...] = ()

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)


@dataclass(frozen=True)
class TaskState:
    """One task as DescribeTasks reports it, reduced to what a one-off task's outcome needs."""

    arn: str
    status: str  # lastStatus: PROVISIONING ... RUNNING ... STOPPED
    stop_code: str
    stopped_reason: str
    exit_code: int | None  # the container's; None when it never ran (or ECS has not said yet)
    container_reason: str

    @property
    def stopped(self) -> bool:
        return self.status == "STOPPED"


def short_arn(arn: str) -> str:
    """``arn:...:task-definition/web:7`` -> ``web:7``."""
    return arn.rsplit("/", 1)[-1]


class EcsClient:
    """ECS calls with dockyard's errors. Takes a boto3 session (and endpoint) plus an injectable ``sleep``."""

    def __init__(self, session: Any, *, endpoint_url: str = "", sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session
        self.endpoint_url = endpoint_url or None
        self.sleep = sleep
        self._ecs: AwsApi | None = None
        self._ecr: AwsApi | None = None

    @property
    def ecs(self) -> AwsApi:
        if self._ecs is None:
            self._ecs = AwsApi(self.session.client("ecs", endpoint_url=self.endpoint_url), service="ecs")
        return self._ecs

    @property
    def ecr(self) -> AwsApi:
        if self._ecr is None:
            self._ecr = AwsApi(self.session.client("ecr", endpoint_url=self.endpoint_url), service="ecr")
        return self._ecr

    def _call(self, operation: str, resource: str, **kwargs: Any) -> Any:
        """An ECS call; a missing cluster is the user's setting, so it is refused rather than failed."""
        try:
            return self.ecs.call(operation, resource, expected=("ClusterNotFoundException",), **kwargs)
        except ExpectedError:
            raise Refused(f"ECS cluster {kwargs.get('cluster')!r} not found in this account/region: check "
                          "dockyard.ecs.cluster and dockyard.aws.region") from None

    # --- services -------------------------------------------------------------------------------------------------
    def service(self, cluster: str, service: str) -> ServiceState:
        data = self._call("describe_services", f"service {cluster}/{service}", cluster=cluster, services=[service])
        found = [s for s in data.get("services") or [] if s.get("status") != "INACTIVE"]
        if not found:
            raise Refused(f"ECS service {service!r} not found in cluster {cluster!r}: check dockyard.ecs.service "
                          "(create the service first; `inv ecs.render` writes a task definition for it)")
        return _service_state(cluster, found[0])

    def update_service(self, cluster: str, service: str, task_definition_arn: str) -> None:
        self._call("update_service", f"service {cluster}/{service}", cluster=cluster, service=service,
                   taskDefinition=task_definition_arn)

    # --- one-off tasks ------------------------------------------------------------------------------------------
    def run_task(self, cluster: str, task_definition_arn: str, *, container: str, command: tuple[str, ...],
                 placement: tuple[tuple[str, Any], ...] = (), started_by: str = "dockyard") -> str:
        """Start one task of ``task_definition_arn`` with ``container``'s command overridden; returns its ARN."""
        data = self._call("run_task", f"task of {short_arn(task_definition_arn)} in cluster {cluster}",
                          cluster=cluster, taskDefinition=task_definition_arn, count=1, startedBy=started_by,
                          overrides={"containerOverrides": [{"name": container, "command": list(command)}]},
                          **dict(placement))
        tasks = data.get("tasks") or []
        if not tasks:
            failures = "; ".join(f"{f.get('arn', '')} {f.get('reason', '')} {f.get('detail', '')}".strip()
                                 for f in data.get("failures") or []) or "no task and no failure given"
            raise TaskNotStarted(failures)
        return tasks[0]["taskArn"]

    def task(self, cluster: str, task_arn: str, container: str) -> TaskState:
        data = self._call("describe_tasks", f"task {task_arn}", cluster=cluster, tasks=[task_arn])
        found = data.get("tasks") or []
        if not found:
            return TaskState(task_arn, "MISSING", "", "ECS no longer knows the task", None, "")
        task = found[0]
        mine = next((c for c in task.get("containers") or [] if c.get("name") == container), {})
        code = mine.get("exitCode")
        return TaskState(arn=task_arn, status=task.get("lastStatus", ""), stop_code=task.get("stopCode") or "",
                         stopped_reason=task.get("stoppedReason") or "",
                         exit_code=int(code) if code is not None else None, container_reason=mine.get("reason") or "")

    def stop_task(self, cluster: str, task_arn: str, reason: str) -> None:
        self._call("stop_task", f"task {task_arn}", cluster=cluster, task=task_arn, reason=reason[:255])

    def log_tail(self, group: str, stream: str, *, region: str = "", limit: int = 20) -> list[str]:
        """The last ``limit`` lines of a CloudWatch Logs stream ([] when the stream does not exist (yet))."""
        client = self.session.client("logs", endpoint_url=self.endpoint_url, region_name=region or None)
        api = AwsApi(client, service="logs")
        try:
            data = api.call("get_log_events", f"log stream {group}/{stream}", expected=("ResourceNotFoundException",),
                            logGroupName=group, logStreamName=stream, startFromHead=False, limit=limit)
        except ExpectedError:
            return []
        return [str(e.get("message", "")).rstrip("\n") for e in data.get("events") or []]

    # --- task definitions ----------------------------------------------------------------------------------------
    def task_definition(self, ref: str) -> TaskDefinition:
        data = self._call("describe_task_definition", f"task definition {ref}", taskDefinition=ref,
                          include=["TAGS"])
        return TaskDefinition.from_api(data["taskDefinition"], data.get("tags") or None)

    def register(self, definition: TaskDefinition) -> TaskDefinition:
        payload = definition.payload
        if not payload.get("tags"):
            payload.pop("tags", None)
        data = self._call("register_task_definition", f"task definition family {payload.get('family')}", **payload)
        return TaskDefinition.from_api(data["taskDefinition"], payload.get("tags"))

    def active_revisions(self, family: str) -> list[str]:
        """ACTIVE revision ARNs of exactly ``family`` (the API matches prefixes), newest first."""
        arns: list[str] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"familyPrefix": family, "status": "ACTIVE", "sort": "DESC"}
            if token:
                kwargs["nextToken"] = token
            data = self._call("list_task_definitions", f"task definition family {family}", **kwargs)
            arns += [a for a in data.get("taskDefinitionArns") or [] if short_arn(a).rsplit(":", 1)[0] == family]
            token = data.get("nextToken")
            if not token:
                break
        return sorted(arns, key=lambda a: int(a.rsplit(":", 1)[1]), reverse=True)

    def deregister(self, arn: str) -> None:
        self._call("deregister_task_definition", f"task definition {arn}", taskDefinition=arn)

    # --- images ------------------------------------------------------------------------------------------------------
    def ecr_has_image(self, repository_name: str, tag: str) -> bool:
        try:
            self.ecr.call("describe_images", f"repository {repository_name}",
                          expected=("ImageNotFoundException", "RepositoryNotFoundException"),
                          repositoryName=repository_name, imageIds=[{"imageTag": tag}])
        except ExpectedError:
            return False
        return True


class TaskNotStarted(DockyardError):
    """RunTask started no task (the failures say why: no capacity, a bad network configuration...)."""


#: the DescribeServices fields that say how the service's tasks are placed, as RunTask takes them
PLACEMENT_KEYS = ("launchType", "capacityProviderStrategy", "networkConfiguration", "platformVersion")


def _placement(data: dict) -> tuple[tuple[str, Any], ...]:
    picked = {k: data[k] for k in PLACEMENT_KEYS if data.get(k)}
    if "capacityProviderStrategy" in picked:
        picked.pop("launchType", None)  # RunTask takes one or the other
    if picked.get("launchType") != "FARGATE":
        picked.pop("platformVersion", None)
    return tuple(picked.items())


def _service_state(cluster: str, data: dict) -> ServiceState:
    deployments = tuple(
        Deployment(id=d.get("id", ""), status=d.get("status", ""), task_definition=d.get("taskDefinition", ""),
                   desired=int(d.get("desiredCount") or 0), running=int(d.get("runningCount") or 0),
                   pending=int(d.get("pendingCount") or 0), rollout_state=d.get("rolloutState") or "",
                   rollout_reason=d.get("rolloutStateReason") or "", created=d.get("createdAt"))
        for d in data.get("deployments") or [])
    events = tuple(ServiceEvent(e.get("createdAt"), e.get("message", "")) for e in data.get("events") or [])
    return ServiceState(cluster=cluster, name=data.get("serviceName", ""), status=data.get("status", ""),
                        task_definition=data.get("taskDefinition", ""), desired=int(data.get("desiredCount") or 0),
                        running=int(data.get("runningCount") or 0), pending=int(data.get("pendingCount") or 0),
                        deployments=deployments, events=events, placement=_placement(data))
