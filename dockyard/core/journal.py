"""The step a deploy on an AWS target (ECS, Elastic Beanstalk) has reached, kept beside its lock.

The platform itself says what is served; what only dockyard knows is that a deploy began and how far it got. A
deploy writes a :class:`JournalEntry` when it starts and again as each plan step starts, and removes it once its
audit record is written. A process that is killed outright (SIGKILL, a lost machine) writes no audit record, so
its entry stays behind: ``status`` shows it, and the next deploy or rollback of the environment, holding the lock
(so the entry's deploy cannot still be running), *settles* it: writes the missing audit record with result
``interrupted`` and the step it stopped at, removes the entry, says so in one line, and then deploys from the
platform's real state, which supersedes whatever the interrupted deploy left half-done.

Staging keeps its own, richer journal on the hosts (:mod:`dockyard.staging.journal`): a host's state is only what
dockyard made it, so staging must also undo; ECS and EB converge on their own once told the next version.

Stores: an S3 object ``<prefix>/journal/<environment>.json`` (EB; ECS with a bucket) or an SSM String parameter
``<path>/journal/<environment>`` (ECS without a bucket).
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable, Protocol

from .actor import stamp, utc_now
from .history import AuditRecord, AuditStore

INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class JournalEntry:
    deploy: str  # who@host:pid@started, unique per deploy process
    action: str  # deploy | rollback
    environment: str
    target: str  # as the audit record names it
    version: str
    previous_label: str
    started: str
    who: str
    image: str = ""
    step: int = 0  # the plan step that started last (1-based); 0 = planning
    total: int = 0
    description: str = ""
    updated: str = ""

    @classmethod
    def from_json(cls, text: str) -> "JournalEntry | None":
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:  # a required field is missing: not one of ours
            return None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @property
    def reached(self) -> str:
        if not self.step:
            return "before its first step"
        return f"at step {self.step}/{self.total} ({self.description})"

    def summary(self) -> str:
        return (f"{self.action} of {self.version} by {self.who}, started {self.started}, stopped {self.reached}"
                + (f", last heard of {self.updated}" if self.updated else ""))


class JournalStore(Protocol):
    where: str

    def read(self) -> JournalEntry | None: ...

    def write(self, entry: JournalEntry) -> None: ...

    def remove(self) -> None: ...


class S3JournalStore:
    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self.s3 = s3  # a dockyard.clients.s3.S3Client
        self.bucket = bucket
        self.key = key
        self.where = f"s3://{bucket}/{key}"

    def read(self) -> JournalEntry | None:
        body = self.s3.read(self.bucket, self.key)
        return JournalEntry.from_json(body.decode("utf-8", "replace")) if body is not None else None

    def write(self, entry: JournalEntry) -> None:
        self.s3.write(self.bucket, self.key, entry.to_json().encode())

    def remove(self) -> None:
        self.s3.delete(self.bucket, self.key)


class SsmJournalStore:
    def __init__(self, ssm: Any, name: str) -> None:
        self.ssm = ssm  # a dockyard.clients.ssm.SsmClient
        self.name = name
        self.where = f"SSM parameter {name}"

    def read(self) -> JournalEntry | None:
        text = self.ssm.get(self.name)
        return JournalEntry.from_json(text) if text is not None else None

    def write(self, entry: JournalEntry) -> None:
        self.ssm.overwrite(self.name, entry.to_json())

    def remove(self) -> None:
        self.ssm.delete(self.name)


def deploy_id(who: str, started: str) -> str:
    return f"{who}:{socket.gethostname()}:{os.getpid()}@{started}"


class DeployJournal:
    """This deploy's entry: begun after the lock is taken, advanced per step, closed after the audit record."""

    def __init__(self, store: JournalStore, entry: JournalEntry, *, clock: Callable[[], Any] = utc_now) -> None:
        self.store = store
        self.entry = entry
        self.clock = clock
        self.open = False

    def _stamp(self) -> str:
        return stamp(self.clock())

    def begin(self) -> None:
        self.entry = replace(self.entry, updated=self._stamp())
        self.store.write(self.entry)
        self.open = True

    def reached(self, number: int, total: int, description: str) -> None:
        """The executor's ``on_step``: record the step about to run."""
        if not self.open:
            return
        self.entry = replace(self.entry, step=number, total=total, description=description, updated=self._stamp())
        self.store.write(self.entry)

    def close(self) -> None:
        """Remove the entry, if it is still this deploy's (a ``--force-unlock`` by another may have replaced it)."""
        if not self.open:
            return
        self.open = False
        found = self.store.read()
        if found is not None and found.deploy == self.entry.deploy:
            self.store.remove()


def interrupted_record(entry: JournalEntry, *, finished: str) -> AuditRecord:
    return AuditRecord(
        action=entry.action, environment=entry.environment, target=entry.target, version=entry.version,
        label="", who=entry.who, started=entry.started, finished=finished, result=INTERRUPTED,
        previous_label=entry.previous_label, image=entry.image,
        detail=f"the deploying process ended {entry.reached} without finishing; settled by the next command",
        extra={"step": str(entry.step), "steps": str(entry.total)})


def settle(store: JournalStore, audit: AuditStore, *, say: Callable[[str], None],
           clock: Callable[[], Any] = utc_now) -> AuditRecord | None:
    """Settle an entry an earlier deploy left (call it holding the lock): its audit record, then its removal."""
    entry = store.read()
    if entry is None:
        return None
    record = interrupted_record(entry, finished=stamp(clock()))
    where = audit.write(record)
    store.remove()
    say(f"an earlier {entry.summary()}; recorded it as interrupted ({where}); deploying from what the platform "
        "serves now")
    return record


def journal_line(store: JournalStore, lock_state: str) -> str:
    """``status``'s line: nothing, the step a deploy in progress is at, or the deploy that never finished."""
    entry = store.read()
    if entry is None:
        return ""
    if lock_state.startswith("free") or "STALE" in lock_state:
        return (f"INTERRUPTED: {entry.summary()}; the next deploy or rollback records it and deploys from what "
                "is served now")
    return f"in progress: {entry.action} of {entry.version} {entry.reached}"
