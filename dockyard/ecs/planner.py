"""What an ECS deploy will do, decided from state (pure): the new task definition, its diff, what to deregister."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.release_command import ReleaseCommand
from ..core.secret_versions import NEW_SECRET, SecretWrite  # noqa: F401 - re-exported
from ..plan import ApiCall, Output, Plan, Step
from .taskdef import TaskDefinition, diff


def with_new_secret_arns(definition: TaskDefinition, arns: Iterable[tuple[str, str]]) -> TaskDefinition:
    """``definition`` with each new secret's placeholder replaced by its ARN (``(name, arn)`` pairs)."""
    found = {f"{NEW_SECRET}{name}": arn for name, arn in arns}
    if not found:
        return definition
    payload = definition.payload
    for container in payload.get("containerDefinitions") or []:
        for secret in container.get("secrets") or []:
            head, sep, tail = secret.get("valueFrom", "").partition(":::")
            if head in found:
                secret["valueFrom"] = f"{found[head]}{sep}{tail}"
    return TaskDefinition.new(payload)


@dataclass(frozen=True)
class DeployIntent:
    """The desired change to a service, before anything is registered."""

    current: TaskDefinition
    desired: TaskDefinition
    changes: tuple[str, ...]
    #: SSM parameters to write before registering: (name, value); repr=False keeps the values out of tracebacks
    ssm_writes: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: Secrets Manager versions to write before registering (the new revision pins them)
    secret_writes: tuple[SecretWrite, ...] = ()

    @property
    def noop(self) -> bool:
        return not self.changes and not self.ssm_writes and not self.secret_writes

    @property
    def lines(self) -> tuple[str, ...]:
        """The task-definition diff, then the secrets that change in SSM (values never shown)."""
        return self.changes + tuple(
            f'Set secret "{name.rsplit("/", 1)[-1]}" in SSM {name} (SecureString) to: "********"'
            for name, _ in self.ssm_writes) + tuple(
            f'Set secret "{w.name.rsplit("/", 1)[-1]}" in Secrets Manager {w.name} to: "********" '
            f'(new {"version" if w.exists else "secret"} {w.version_id})' for w in self.secret_writes)


def plan_task_definition(
    current: TaskDefinition,
    *,
    image: str,
    containers: Iterable[str],
    environment: Mapping[str, str] = {},
    secrets: Mapping[str, str] = {},
) -> DeployIntent:
    """The current definition with the app containers on ``image`` (and env/secrets set on them)."""
    names = tuple(containers)
    desired = current.changed(images={n: image for n in names},
                              environment={n: environment for n in names} if environment else {},
                              secrets={n: secrets for n in names} if secrets else {})
    return DeployIntent(current, desired, tuple(diff(current, desired)))


def with_secret_writes(intent: DeployIntent, wanted: Mapping[str, str], stored: Mapping[str, str]) -> DeployIntent:
    """``intent`` plus the SSM writes that make ``stored`` hold ``wanted`` ({parameter name: value})."""
    writes = tuple((name, value) for name, value in sorted(wanted.items()) if stored.get(name) != value)
    return replace(intent, ssm_writes=writes)


def env_file_split(values: Mapping[str, str], secret_keys: Iterable[str], ssm_prefix: str,
                   ssm_arn_base: str = "") -> tuple[dict[str, str], dict[str, str]]:
    """Env-file values as plain ``environment`` and SSM ``secrets`` references (``valueFrom``), by key."""
    secret = set(secret_keys)
    prefix = ssm_prefix if ssm_prefix.endswith("/") else ssm_prefix + "/"
    plain = {k: v for k, v in values.items() if k not in secret}
    refs = {k: f"{ssm_arn_base}{prefix}{k}" for k in values if k in secret}
    return plain, refs


def revisions_to_deregister(active_newest_first: list[str], keep: int, protected: Iterable[str]) -> list[str]:
    """The ACTIVE revisions beyond the newest ``keep``, never one in ``protected`` (the live and new ones)."""
    keep_set = set(active_newest_first[:keep]) | set(protected)
    return [arn for arn in active_newest_first if arn not in keep_set]


def previous_revision(active_newest_first: list[str], current_arn: str) -> str:
    """The ACTIVE revision just older than ``current_arn`` ("" when there is none)."""
    current = int(current_arn.rsplit(":", 1)[1])
    older = [a for a in active_newest_first if int(a.rsplit(":", 1)[1]) < current]
    return older[0] if older else ""


def render_task_definition(family: str, containers: Any, *, network_mode: str = "bridge") -> dict[str, Any]:
    """A RegisterTaskDefinition payload for a new service, from converted compose services."""
    payload: dict[str, Any] = {
        "family": family,
        "networkMode": network_mode,
        "requiresCompatibilities": ["EC2"],
        "containerDefinitions": [dict(c) for c in containers.containers],
    }
    if containers.volumes:
        payload["volumes"] = [dict(v) for v in containers.volumes]
    return payload


# --- the plans ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EcsDeploy:
    """What one ``ecs.deploy`` will do, decided from the state read before it."""

    version: str
    image: str
    where: str  # cluster/service
    cluster: str
    service: str
    environment: str
    lock_where: str
    live: str  # the live task definition's ARN: rolled back to on failure, never deregistered
    intent: DeployIntent
    timeout: float
    keep: int
    force_unlock: bool = False
    no_wait: bool = False
    no_rollback: bool = False
    release: ReleaseCommand | None = None  # the environment's release command (None: it has none)
    skip_release: bool = False  # --skip-release-command
    container: str = ""  # the app container the release command runs in (the first of ecs.containers)
    placement: tuple[tuple[str, Any], ...] = ()  # how the service starts its tasks (launch type, network...)
    logs: Any = None  # the container's awslogs stream settings (dockyard.ecs.release.LogStream), if any


def release_step(d: EcsDeploy, new_arn: Output) -> Step:
    """Run the release command once, as a one-off task of the new revision, before the service is touched."""
    from ..clients.ecs import short_arn

    assert d.release is not None
    how = ", ".join(f"{k}={v}" for k, v in d.placement if isinstance(v, str)) or "the cluster's default"
    details = [f"command override of container {d.container}: {d.release.text}", f"placed like the service ({how})"]
    details.append(f"then its last log lines from {d.logs.group}" if d.logs else
                   "its output is not shown: the container has no awslogs log configuration with a stream prefix")
    return Step(
        f"Run the release command once as a one-off task of the new revision and wait until it STOPPED (at most "
        f"{d.release.timeout}s; on failure the service stays on {short_arn(d.live)})",
        instruction=ApiCall.of("release", "run", output="release", arn=new_arn, container=d.container,
                               command=d.release.argv, timeout=d.release.timeout, live=d.live, placement=d.placement,
                               logs=d.logs),
        details=tuple(details))


def deploy_plan(d: EcsDeploy) -> Plan:
    from ..clients.ecs import short_arn
    from ..core.release_command import SKIPPED

    new_arn = Output("revision", "arn")
    steps = [Step(f"Take the deploy lock of {d.environment}: {d.lock_where}",
                  instruction=ApiCall.of("lock", "acquire", version=d.version, force_unlock=d.force_unlock),
                  details=("clear any held one first (--force-unlock)",) if d.force_unlock else ())]
    for name, value in d.intent.ssm_writes:
        steps.append(Step(f"Write secret {name} to SSM as SecureString (value masked)",
                          instruction=ApiCall.of("ssm", "put_secure", secret=("value",), name=name, value=value)))
    for write in d.intent.secret_writes:
        steps.append(Step(f"Write secret {write.name} to Secrets Manager as version {write.version_id} "
                          f"({'a new version' if write.exists else 'a new secret'}; value masked)",
                          instruction=ApiCall.of("secrets", "write", output=f"secret:{write.name}", secret=("value",),
                                                 name=write.name, value=write.value, version_id=write.version_id,
                                                 exists=write.exists)))
    new_arns = tuple((w.name, Output(f"secret:{w.name}")) for w in d.intent.secret_writes if not w.exists)
    steps.append(Step(f"Register a new revision of {d.intent.desired.family} with {d.image}",
                      instruction=ApiCall.of("revisions", "register", output="revision", definition=d.intent.desired,
                                             **({"new_secret_arns": new_arns} if new_arns else {}))))
    notes: tuple[str, ...] = ()
    if d.release is not None and d.skip_release:
        notes = (f"release command {d.release.text!r} {SKIPPED}",)
    elif d.release is not None:
        steps.append(release_step(d, new_arn))
    steps.append(Step(f"Update service {d.where} to it",
                      instruction=ApiCall.of("ecs", "update_service", cluster=d.cluster, service=d.service,
                                             task_definition_arn=new_arn)))
    if not d.no_wait:
        steps.append(Step(
            "Wait until the PRIMARY deployment runs it with runningCount == desiredCount"
            f" (at most {d.timeout:g}s; " + ("left in place on failure (--no-rollback))" if d.no_rollback else
                                             f"on failure roll back to {short_arn(d.live)})"),
            instruction=ApiCall.of("wait", "deployed", version=d.version, arn=new_arn, timeout=d.timeout, live=d.live,
                                   no_rollback=d.no_rollback)))
    steps.append(Step(f"Deregister ACTIVE revisions beyond the newest {d.keep} (never {short_arn(d.live)})",
                      instruction=ApiCall.of("revisions", "prune", protected=(d.live, new_arn))))
    return Plan(f"ecs.deploy {d.version} to {d.where} ({d.environment})", tuple(steps), notes)


def rollback_plan(*, where: str, cluster: str, service: str, environment: str, lock_where: str,
                  target: TaskDefinition, timeout: float) -> Plan:
    return Plan(f"ecs.rollback {where} to {target.label}", (
        Step(f"Take the deploy lock of {environment}: {lock_where}",
             instruction=ApiCall.of("lock", "acquire", version=target.label, action="rollback")),
        Step(f"Update service {where} to {target.label}",
             instruction=ApiCall.of("ecs", "update_service", cluster=cluster, service=service,
                                    task_definition_arn=target.arn)),
        Step("Wait until the PRIMARY deployment runs it",
             instruction=ApiCall.of("wait", "rolled_to", arn=target.arn, timeout=timeout)),
    ))
