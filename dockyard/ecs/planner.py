"""What an ECS deploy will do, decided from state (pure): the new task definition, its diff, what to deregister."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from .taskdef import TaskDefinition, diff


@dataclass(frozen=True)
class DeployIntent:
    """The desired change to a service, before anything is registered."""

    current: TaskDefinition
    desired: TaskDefinition
    changes: tuple[str, ...]
    #: SSM parameters to write before registering: (name, value); repr=False keeps the values out of tracebacks
    ssm_writes: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def noop(self) -> bool:
        return not self.changes and not self.ssm_writes

    @property
    def lines(self) -> tuple[str, ...]:
        """The task-definition diff, then the secrets that change in SSM (values never shown)."""
        return self.changes + tuple(
            f'Set secret "{name.rsplit("/", 1)[-1]}" in SSM {name} (SecureString) to: "********"'
            for name, _ in self.ssm_writes)


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
