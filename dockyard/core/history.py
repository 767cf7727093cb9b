"""The audit history of every target: one record shape, three stores behind one interface, one "previous good
release" finder.

Each deploy, rollback or swap writes one :class:`AuditRecord` (who, what, where, when, how it ended). The stores:

* :class:`S3AuditStore`: ``<prefix>/audit/<environment>/<started>-<action>-<label>.json`` objects (EB; ECS with a
  bucket), sorted by time by their keys.
* :class:`SsmAuditStore`: String parameters under ``/<path>/audit/<environment>/`` (ECS without a bucket).
* :class:`HostAuditLog`: one line per record appended to a file on each SSH host (staging), readable with ``cat``.

``eb.rollback``, ``ecs.rollback`` and ``staging.rollback`` pick their default target with
:func:`previous_good_release`.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Callable, Iterable, Protocol

from ..runner import Command
from .actor import utc_now

SUCCEEDED = "succeeded"
# How staging's host logs said "succeeded" before the shared record (older lines stay readable).
LEGACY_RESULTS = {"ok": SUCCEEDED}
RELEASE_ACTIONS = ("deploy", "rollback")  # what puts a release live (not swap's deploy-idle, nor setenv)


@dataclass(frozen=True)
class AuditRecord:
    action: str  # deploy | rollback | deploy-idle | swap
    environment: str  # dockyard's environment name
    target: str  # where: the EB environment, ``ecs:<cluster>/<service>``, the SSH host
    version: str  # the release version
    label: str  # what the platform calls what went live: EB version label, ECS revision, the staging version
    who: str  # user@host (dockyard.core.actor)
    started: str  # ISO 8601, UTC
    finished: str = ""
    result: str = ""  # succeeded | failed | rolled back | timed out | started (not waited for) | health-failed
    previous_label: str = ""  # what was live before
    previous_version: str = ""
    image: str = ""
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.result == SUCCEEDED

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AuditRecord":
        """A stored record; keys this dockyard does not know are dropped, missing ones left empty."""
        known = {f.name for f in fields(cls)}
        values = {f.name: "" for f in fields(cls) if f.name != "extra"}
        values.update({k: v for k, v in data.items() if k in known})
        values["result"] = LEGACY_RESULTS.get(str(values["result"]), values["result"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def previous_good_release(records_newest_first: Iterable[AuditRecord], live: str,
                          available: Iterable[str] | None = None) -> AuditRecord | None:
    """The record of the last successful deploy (or rollback) before the live release, or None.

    ``live`` is the label live now. Records newer than the one that made it live are not "before" it; when no
    record names it (it was set outside dockyard) every record counts. Failed, rolled-back and unwaited records never
    qualify. With ``available``, only those labels do (ECS: revisions still ACTIVE; staging: versions every host
    retained).
    """
    records = [r for r in records_newest_first if r.action in RELEASE_ACTIONS]
    live_at = next((n for n, r in enumerate(records) if r.label == live), -1)
    allowed = None if available is None else set(available)
    for record in records[live_at + 1:]:
        if record.succeeded and record.label and record.label != live and (allowed is None or record.label in allowed):
            return record
    return None


def as_written(record: AuditRecord) -> AuditRecord:
    """The record a store writes: one written while Ctrl-C, SIGTERM or SIGHUP unwinds the deploy says so.

    Every target writes its record in a ``finally`` or an ``except`` on the way out, with whatever result it had
    reached (often none yet); this one check makes all of them tell the truth (:mod:`dockyard.core.signals`).
    """
    from .signals import INTERRUPTED, interrupted_now

    if interrupted_now() and record.result != INTERRUPTED:
        noted = f"was {record.result}" if record.result else ""
        return replace(record, result=INTERRUPTED, detail="; ".join(x for x in (record.detail, noted) if x))
    return record


class AuditStore(Protocol):
    def write(self, record: AuditRecord) -> str:
        """Store the record; returns where it went (for the deploy's last line)."""
        ...

    def records(self, environment: str, *, limit: int = 200) -> list[AuditRecord]:
        """The environment's records, newest first."""
        ...


class S3AuditStore:
    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3 = s3  # a dockyard.clients.s3.S3Client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def write(self, record: AuditRecord) -> str:
        record = as_written(record)
        stamp = record.started.replace(":", "").replace("+0000", "Z")
        key = f"{self.prefix}/audit/{record.environment}/{stamp}-{record.action}-{record.label or 'none'}.json"
        self.s3.write(self.bucket, key, json.dumps(record.to_dict(), indent=2).encode())
        return f"s3://{self.bucket}/{key}"

    def records(self, environment: str, *, limit: int = 200) -> list[AuditRecord]:
        keys = self.s3.keys(self.bucket, f"{self.prefix}/audit/{environment}/")
        out = []
        for key in sorted(keys, reverse=True)[:limit]:
            body = self.s3.read(self.bucket, key)
            if body is not None:
                out.append(AuditRecord.from_dict(json.loads(body)))
        return out


class SsmAuditStore:
    """Records as parameters ``<path>/audit/<environment>/<time, microseconds>-<action>-<label>``.

    A record is a few hundred bytes (the standard tier takes 4 KB).
    """

    def __init__(self, ssm: Any, path: str, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.ssm = ssm  # a dockyard.clients.ssm.SsmClient
        self.path = "/" + path.strip("/")
        self.clock = clock

    def write(self, record: AuditRecord) -> str:
        from ..clients.ssm import parameter_name

        record = as_written(record)
        stamp = self.clock().strftime("%Y%m%dT%H%M%S%fZ")  # sorts by time, even two records in one second
        name = parameter_name(self.path, "audit", record.environment,
                              f"{stamp}-{record.action}-{record.label or 'none'}")
        self.ssm.create(name, json.dumps(record.to_dict()), description=f"dockyard {record.action} record")
        return f"SSM parameter {name}"

    def records(self, environment: str, *, limit: int = 200) -> list[AuditRecord]:
        from ..clients.ssm import parameter_name

        found = self.ssm.by_path(parameter_name(self.path, "audit", environment))
        out = []
        for name in sorted(found, reverse=True)[:limit]:
            try:
                out.append(AuditRecord.from_dict(json.loads(found[name])))
            except (ValueError, TypeError, AttributeError):
                continue  # not one of ours
        return out


# --- the log on an SSH host -----------------------------------------------------------------------------------------

# The line's ``key=value`` fields, in order; the record's field each comes from.
LINE_FIELDS = (("version", "version"), ("previous", "previous_label"), ("by", "who"), ("outcome", "result"),
               ("image", "image"), ("started", "started"), ("target", "target"), ("env", "environment"))
LINE_KEYS = {key for key, _ in LINE_FIELDS} | {"detail"}


def audit_line(record: AuditRecord) -> str:
    """``<finished> <action> version=v2 previous=v1 by=me@laptop outcome=succeeded ...`` (values shell-quoted)."""
    parts = [record.finished or record.started, record.action]
    for key, name in LINE_FIELDS:
        value = getattr(record, name) or ("-" if key == "previous" else "")
        if value:
            parts.append(f"{key}={shlex.quote(value)}")  # unchanged unless it holds spaces or quotes
    if record.detail:
        parts.append(f"detail={shlex.quote(record.detail)}")
    for key, value in sorted(record.extra.items()):  # e.g. release_command=... (dockyard.core.release_command)
        if key not in LINE_KEYS and value:
            parts.append(f"{key}={shlex.quote(str(value))}")
    return " ".join(parts)


def parse_audit(text: str, environment: str = "") -> list[AuditRecord]:
    """The records of a host's audit log, in its order: oldest first (unreadable lines are skipped)."""
    out = []
    for line in text.splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        if len(words) < 2:
            continue
        values = dict(w.split("=", 1) for w in words[2:] if "=" in w)
        data: dict[str, Any] = {"finished": words[0], "action": words[1], "environment": environment}
        data.update({name: values[key] for key, name in LINE_FIELDS if key in values})
        data["detail"] = values.get("detail", "")
        data["extra"] = {k: v for k, v in values.items() if k not in LINE_KEYS}
        if data.get("previous_label") == "-":
            data["previous_label"] = ""
        data.setdefault("started", words[0])
        data["label"] = data.get("version", "")  # what goes live on a host is the version itself
        out.append(AuditRecord.from_dict(data))
    return out


def append_line(path: str, line: str) -> Command:
    return Command(("sh", "-c", 'printf "%s\\n" "$1" >> "$2"', "sh", line, path))


def read_log(path: str) -> Command:
    return Command(("sh", "-c", 'cat "$1" 2>/dev/null || true', "sh", path))


class HostAuditLog:
    """The audit log file on one host (``host`` runs :class:`~dockyard.runner.Command` values, e.g. an SSH host)."""

    def __init__(self, host: Any, path: str) -> None:
        self.host = host
        self.path = path

    def write(self, record: AuditRecord) -> str:
        from ..errors import CommandFailed

        record = as_written(record)
        where = f"{self.path} on {getattr(self.host, 'name', '') or 'the host'}"
        result = self.host.run(append_line(self.path, audit_line(record)), check=False)
        if not result.ok:  # a read-only or full disk: the record is lost, and the deploy must not say all is well
            said = " ".join((result.stderr or result.stdout).split()) or f"exit {result.returncode}"
            raise CommandFailed(f"cannot append to the audit log {where} ({said[-200:]})")
        return where

    def records(self, environment: str, *, limit: int = 200) -> list[AuditRecord]:
        text = self.host.run(read_log(self.path), check=False).stdout
        return parse_audit(text, environment)[::-1][:limit]
