"""The ECS deploy lock and audit trail when there is no bucket: SSM parameters instead of S3 objects.

:class:`SsmDeployLock` is one String parameter per environment, created with ``Overwrite=False``: SSM creates a
name at most once, so of two deploys starting together exactly one gets it (``ParameterAlreadyExists`` = held).
It holds the same JSON as the S3 lock (who, version, since when); release deletes it; ``--force-unlock`` deletes
it whoever holds it.

:class:`SsmAuditLog` writes one String parameter per deploy/rollback under ``/<prefix>/<app>/audit/<env>/``.
Records go to SSM (and not nowhere) because ``ecs.rollback`` reads them back to find the previous good release,
and without a bucket SSM is the one store the ECS deploy already needs. A record is a few hundred bytes (the
standard tier takes 4 KB). Both classes have the interface of :mod:`dockyard.eb.locks`, so the service code does
not care which store it has.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Callable

from ..eb.locks import AuditRecord, LockRecord, lock_held, now_utc, who
from .ssm import ParameterExists, SsmClient


def parameter_name(*parts: str) -> str:
    """``/part/part/...`` with only the characters SSM allows in names (``a-zA-Z0-9_.-/``)."""
    segments = [seg for part in parts for seg in part.split("/") if seg]
    return "/" + "/".join("".join(ch if ch.isalnum() or ch in "_.-" else "." for ch in seg) for seg in segments)


class SsmDeployLock:
    def __init__(self, ssm: SsmClient, name: str, *, environment: str,
                 clock: Callable[[], datetime] = now_utc, holder: str | None = None) -> None:
        self.ssm = ssm
        self.name = name
        self.environment = environment
        self.clock = clock
        self.holder = holder or who()
        self.held = False

    @property
    def where(self) -> str:
        return f"SSM parameter {self.name}"

    def current(self) -> LockRecord | None:
        body = self.ssm.get(self.name)
        if body is None:
            return None
        return LockRecord.parse(body, self.environment)

    def acquire(self, version: str) -> LockRecord:
        record = LockRecord.new(holder=self.holder, environment=self.environment, version=version, now=self.clock())
        try:
            self.ssm.create(self.name, record.to_json(),
                            description=f"dockyard deploy lock of {self.environment}")
        except ParameterExists:
            raise lock_held(self.environment, self.current()) from None
        self.held = True
        return record

    def release(self) -> None:
        if self.held:
            self.ssm.delete(self.name)
            self.held = False

    def force_unlock(self) -> LockRecord | None:
        """Delete the lock whoever holds it; returns what it said."""
        record = self.current()
        if record is not None:
            self.ssm.delete(self.name)
        return record


class SsmAuditLog:
    """Records as parameters ``<path>/audit/<environment>/<finished, microseconds>-<action>-<label>``."""

    def __init__(self, ssm: SsmClient, path: str, *, clock: Callable[[], datetime] = now_utc) -> None:
        self.ssm = ssm
        self.path = "/" + path.strip("/")
        self.clock = clock

    def write(self, record: AuditRecord) -> str:
        stamp = self.clock().strftime("%Y%m%dT%H%M%S%fZ")  # sorts by time, even two records in one second
        name = parameter_name(self.path, "audit", record.environment,
                              f"{stamp}-{record.action}-{record.label or 'none'}")
        self.ssm.create(name, json.dumps(asdict(record)), description=f"dockyard {record.action} record")
        return name

    def records(self, environment: str, *, limit: int = 200) -> list[AuditRecord]:
        """Newest first."""
        found = self.ssm.by_path(parameter_name(self.path, "audit", environment))
        out = []
        for name in sorted(found, reverse=True)[:limit]:
            try:
                out.append(AuditRecord(**json.loads(found[name])))
            except (ValueError, TypeError):
                continue  # not one of ours
        return out
