"""What a compose named volume becomes in a task definition: decided by a setting, never guessed.

A named volume keeps its data across ``docker compose up`` runs; the ECS equivalent depends on where the data may
live, so every named volume a converted service mounts needs a decision (``dockyard.eb.volumes`` /
``dockyard.ecs.volumes``):

- ``scratch``: an empty volume per task, gone when the task stops (right for caches and files the image refills);
- ``shared``: a Docker volume on the container instance, kept across tasks (``scope: shared``, ``autoprovision``);
- ``/a/host/path``: that directory of the container instance (``host.sourcePath``);
- ``{efs: fs-..., root: /dir, access_point: fsap-..., encrypted: true}``: an EFS file system.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import ConfigError

KINDS = ("scratch", "shared", "host", "efs")


@dataclass(frozen=True)
class VolumeDecision:
    kind: str  # scratch | shared | host | efs
    path: str = ""  # host: the instance's directory
    file_system: str = ""  # efs
    root: str = ""
    access_point: str = ""
    encrypted: bool = False

    def task_volume(self, name: str) -> dict[str, Any]:
        """The task-definition ``volumes`` entry called ``name``."""
        if self.kind == "shared":
            return {"name": name, "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True,
                                                                "driver": "local"}}
        if self.kind == "host":
            return {"name": name, "host": {"sourcePath": self.path}}
        if self.kind == "efs":
            efs: dict[str, Any] = {"fileSystemId": self.file_system}
            if self.root:
                efs["rootDirectory"] = self.root
            if self.encrypted or self.access_point:
                efs["transitEncryption"] = "ENABLED"  # ECS requires it with an access point
            if self.access_point:
                efs["authorizationConfig"] = {"accessPointId": self.access_point}
            return {"name": name, "efsVolumeConfiguration": efs}
        return {"name": name}


def parse_decisions(value: Any, key: str) -> dict[str, VolumeDecision]:
    """``{volume: scratch | shared | /host/path | {efs: fs-..., ...}}`` from setting ``key``."""
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping of compose volume names to scratch, shared, a host path or "
                          "{efs: fs-...}")
    decisions: dict[str, VolumeDecision] = {}
    for name, decision in value.items():
        decisions[str(name)] = parse_decision(decision, f"{key}.{name}")
    return decisions


def parse_decision(decision: Any, key: str) -> VolumeDecision:
    if isinstance(decision, VolumeDecision):
        return decision
    if decision in ("scratch", "shared"):
        return VolumeDecision(str(decision))
    if isinstance(decision, str) and decision.startswith("/"):
        return VolumeDecision("host", path=decision)
    if isinstance(decision, Mapping) and isinstance(decision.get("efs"), str) and \
            re.fullmatch(r"fs-[0-9a-f]+", decision["efs"]):
        unknown = set(decision) - {"efs", "root", "access_point", "encrypted"}
        if not unknown:
            return VolumeDecision("efs", file_system=decision["efs"], root=str(decision.get("root") or ""),
                                  access_point=str(decision.get("access_point") or ""),
                                  encrypted=bool(decision.get("encrypted")))
    raise ConfigError(f"{key}: expected scratch, shared, an absolute host path or {{efs: fs-..., root, access_point, "
                      f"encrypted}}, got {decision!r}")


def volume_decisions(section: Any) -> dict[str, Any]:
    """``<section>.volumes`` parsed (``eb.volumes``, ``ecs.volumes``); an error names the layer that set it."""
    try:
        return parse_decisions(section.raw("volumes"), section.full("volumes"))
    except ConfigError as exc:
        raise ConfigError(f"{exc.message} (set in {section.origin(section.full('volumes'))})") from None
