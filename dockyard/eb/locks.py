"""The deploy lock and the audit trail, both S3 objects, shared by every deploy target (EB, ECS).

:class:`DeployLock` is one JSON object written with a conditional put (``If-None-Match: *``): of two deploys
starting together exactly one gets it; the other is refused with who holds it, for what, since when.
``--force-unlock`` deletes a stale one. :class:`AuditLog` writes one record per deploy/rollback/swap (who, what,
where, when, result) and reads them back (``eb.rollback`` picks the previous good version from them).

Both take a plain boto3 S3 client, so the ECS feature reuses them as they are.
"""
from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from ..errors import LockHeld


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def who() -> str:
    """``user@host`` (CI names itself through ``DOCKYARD_ACTOR`` / ``GITHUB_ACTOR`` / ``CIRCLE_USERNAME``)."""
    for variable in ("DOCKYARD_ACTOR", "GITHUB_ACTOR", "CIRCLE_USERNAME", "GITLAB_USER_LOGIN"):
        if os.environ.get(variable):
            return f"{os.environ[variable]}@{socket.gethostname()}"
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class LockRecord:
    holder: str
    environment: str
    version: str
    acquired: str  # ISO 8601, UTC
    pid: int = 0

    def describe(self) -> str:
        return f"{self.holder} (deploying {self.version} since {self.acquired})"

    @classmethod
    def new(cls, *, holder: str, environment: str, version: str, now: datetime) -> "LockRecord":
        return cls(holder=holder, environment=environment, version=version,
                   acquired=now.isoformat(timespec="seconds"), pid=os.getpid())

    @classmethod
    def parse(cls, body: str | bytes, environment: str) -> "LockRecord":
        """A stored lock; an unreadable one still counts as held, by an unknown holder."""
        try:
            return cls(**json.loads(body))
        except (ValueError, TypeError):
            return cls(holder="unknown", environment=environment, version="?", acquired="?")

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def lock_held(environment: str, held: LockRecord | None) -> LockHeld:
    """The refusal of a deploy whose environment is locked, whichever store holds the lock."""
    by = held.describe() if held else "another deploy"
    return LockHeld(f"{environment} is locked by {by}: wait for it, or run with --force-unlock if that deploy is dead")


class DeployLock:
    """One S3 object per environment: ``<prefix>/locks/<environment>.json``."""

    def __init__(self, s3: Any, bucket: str, key: str, *, environment: str,
                 clock: Callable[[], datetime] = now_utc, holder: str | None = None) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.environment = environment
        self.clock = clock
        self.holder = holder or who()
        self.held = False

    def current(self) -> LockRecord | None:
        from botocore.exceptions import ClientError

        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return LockRecord.parse(body, self.environment)

    def acquire(self, version: str) -> LockRecord:
        from botocore.exceptions import ClientError

        record = LockRecord.new(holder=self.holder, environment=self.environment, version=version, now=self.clock())
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=record.to_json().encode(),
                               IfNoneMatch="*", ServerSideEncryption="AES256", ContentType="application/json")
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise lock_held(self.environment, self.current()) from None
            raise
        self.held = True
        return record

    def release(self) -> None:
        if self.held:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key)
            self.held = False

    def force_unlock(self) -> LockRecord | None:
        """Delete the lock whoever holds it; returns what it said."""
        record = self.current()
        if record is not None:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key)
        return record


@dataclass(frozen=True)
class AuditRecord:
    action: str  # deploy | rollback | swap | setenv
    environment: str  # dockyard's environment name
    target: str  # where: the EB environment / ECS service
    version: str
    label: str
    who: str
    started: str
    finished: str = ""
    result: str = ""  # succeeded | failed | rolled back | timed out | refused
    previous_label: str = ""
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class AuditLog:
    """Records under ``<prefix>/audit/<environment>/<started>-<action>.json`` (sorted by time by their keys)."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def write(self, record: AuditRecord) -> str:
        stamp = record.started.replace(":", "").replace("+0000", "Z")
        key = f"{self.prefix}/audit/{record.environment}/{stamp}-{record.action}-{record.label or 'none'}.json"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(asdict(record), indent=2).encode(),
                           ServerSideEncryption="AES256", ContentType="application/json")
        return key

    def records(self, environment: str, *, limit: int = 200) -> list[AuditRecord]:
        """Newest first."""
        keys: list[str] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/audit/{environment}/"):
            keys += [item["Key"] for item in page.get("Contents") or []]
        out = []
        for key in sorted(keys, reverse=True)[:limit]:
            data = json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            out.append(AuditRecord(**data))
        return out


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code", ""))
