"""Task definitions as immutable values, and the readable diff between two of them.

A :class:`TaskDefinition` holds the registerable payload as canonical JSON, so "changing" one returns a new value
and the diff is computed by comparing two values, never recorded while mutating.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ConfigError

#: Keys DescribeTaskDefinition returns that RegisterTaskDefinition does not take.
READ_ONLY_KEYS = frozenset({"taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
                            "registeredAt", "registeredBy", "deregisteredAt"})


@dataclass(frozen=True)
class TaskDefinition:
    family: str
    revision: int  # 0 = not registered yet
    arn: str
    body: str  # canonical JSON of the RegisterTaskDefinition payload (tags included)

    @classmethod
    def from_api(cls, task_definition: Mapping[str, Any], tags: list | None = None) -> "TaskDefinition":
        payload = {k: v for k, v in task_definition.items() if k not in READ_ONLY_KEYS}
        if tags:
            payload["tags"] = tags
        return cls(family=task_definition["family"], revision=int(task_definition.get("revision") or 0),
                   arn=task_definition.get("taskDefinitionArn", ""), body=canonical(payload))

    @classmethod
    def new(cls, payload: Mapping[str, Any]) -> "TaskDefinition":
        return cls(family=payload["family"], revision=0, arn="", body=canonical(dict(payload)))

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def label(self) -> str:
        return f"{self.family}:{self.revision}" if self.revision else f"{self.family}:(new)"

    def containers(self) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.payload.get("containerDefinitions") or []}

    def images(self) -> dict[str, str]:
        return {name: c.get("image", "") for name, c in self.containers().items()}

    def changed(self, *, images: Mapping[str, str] = {}, environment: Mapping[str, Mapping[str, str]] = {},
                secrets: Mapping[str, Mapping[str, str]] = {}) -> "TaskDefinition":
        """A new, unregistered value with ``images``/``environment``/``secrets`` set per container name.

        Environment and secrets are merged into what the container has (a key moves from one to the other when it
        changes kind, since ECS refuses a name in both).
        """
        payload = self.payload
        known = self.containers()
        for name in [*images, *environment, *secrets]:
            if name not in known:
                raise UnknownContainer(name, self.label, sorted(known))
        for container in payload.get("containerDefinitions") or []:
            name = container["name"]
            if name in images:
                container["image"] = images[name]
            env = {e["name"]: e.get("value", "") for e in container.get("environment") or []}
            sec = {s["name"]: s.get("valueFrom", "") for s in container.get("secrets") or []}
            for key, value in (environment.get(name) or {}).items():
                env[key] = value
                sec.pop(key, None)
            for key, value in (secrets.get(name) or {}).items():
                sec[key] = value
                env.pop(key, None)
            if env or "environment" in container:
                container["environment"] = [{"name": k, "value": env[k]} for k in sorted(env)]
            if sec or "secrets" in container:
                container["secrets"] = [{"name": k, "valueFrom": sec[k]} for k in sorted(sec)]
        return TaskDefinition(family=self.family, revision=0, arn="", body=canonical(payload))


class UnknownContainer(ConfigError):
    def __init__(self, name: str, where: str, known: list[str]) -> None:
        super().__init__(f"dockyard.ecs.containers: task definition {where} has no container {name!r} "
                         f"(it has: {', '.join(known) or 'none'})")


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def diff(old: TaskDefinition, new: TaskDefinition) -> list[str]:
    """Readable lines, e.g. ``Changed image of container "web" to: "repo:1.2.4" (was: "repo:1.2.3")``."""
    lines: list[str] = []
    before, after = old.payload, new.payload
    for key in sorted(set(before) | set(after)):
        if key == "containerDefinitions" or before.get(key) == after.get(key):
            continue
        if key not in before:
            lines.append(f"Added {key}: {_show(after[key])}")
        elif key not in after:
            lines.append(f"Removed {key} (was: {_show(before[key])})")
        else:
            lines.append(f"Changed {key} to: {_show(after[key])} (was: {_show(before[key])})")
    old_c, new_c = old.containers(), new.containers()
    for name in sorted(set(old_c) | set(new_c)):
        if name not in old_c:
            lines.append(f'Added container "{name}" (image: "{new_c[name].get("image", "")}")')
        elif name not in new_c:
            lines.append(f'Removed container "{name}"')
        else:
            lines += _container_diff(name, old_c[name], new_c[name])
    return lines


def _container_diff(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    if old.get("image") != new.get("image"):
        lines.append(f'Changed image of container "{name}" to: "{new.get("image")}" (was: "{old.get("image")}")')
    for field, value_key, noun in (("environment", "value", "environment"), ("secrets", "valueFrom", "secret")):
        was = {e["name"]: e.get(value_key, "") for e in old.get(field) or []}
        now = {e["name"]: e.get(value_key, "") for e in new.get(field) or []}
        for key in sorted(set(was) | set(now)):
            if key not in was:
                lines.append(f'Added {noun} "{key}" to container "{name}": "{now[key]}"')
            elif key not in now:
                lines.append(f'Removed {noun} "{key}" from container "{name}"')
            elif was[key] != now[key]:
                lines.append(f'Changed {noun} "{key}" of container "{name}" to: "{now[key]}" (was: "{was[key]}")')
    for key in sorted((set(old) | set(new)) - {"name", "image", "environment", "secrets"}):
        if old.get(key) != new.get(key):
            lines.append(f'Changed {key} of container "{name}" to: {_show(new.get(key))} (was: {_show(old.get(key))})')
    return lines
