"""The deploy lock: one interface, :class:`DeployLock`, over three stores that each create a name atomically.

* :class:`S3LockStore`: an S3 object written with a conditional put (``If-None-Match: *``): EB, and ECS with a bucket.
* :class:`SsmLockStore`: an SSM parameter created with ``Overwrite=False``: ECS without a bucket.
* :class:`HostDirLockStore`: a directory made with ``mkdir`` (atomic on POSIX) on the first SSH host: staging.

Whichever store, of two deploys starting together exactly one gets the lock; the other is refused with the same
:class:`~dockyard.errors.LockHeld` (exit 9) naming the holder (:class:`LockRecord`), the version and since when.
``force_unlock`` clears a stale lock. Waiting for a lock (``wait=``) is done here once, for every store.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, Callable, Protocol

from ..errors import CommandFailed, LockHeld
from ..runner import Command
from .actor import actor, stamp, utc_now

Say = Callable[[str], None]


@dataclass(frozen=True)
class LockRecord:
    """Who holds an environment's lock, for what, since when, and which process on which machine."""

    holder: str
    environment: str
    version: str
    acquired: str  # ISO 8601, UTC
    pid: int = 0
    host: str = ""  # the machine the deploy runs on (where ``pid`` lives)
    action: str = "deploy"  # deploy | rollback

    def describe(self) -> str:
        doing = "rolling back to" if self.action == "rollback" else "deploying"
        where = f", pid {self.pid} on {self.host}" if self.pid and self.host else ""
        return f"{self.holder} ({doing} {self.version} since {self.acquired}{where})"

    @classmethod
    def new(cls, *, holder: str, environment: str, version: str, now: datetime,
            action: str = "deploy") -> "LockRecord":
        return cls(holder=holder, environment=environment, version=version, acquired=stamp(now), pid=os.getpid(),
                   host=socket.gethostname(), action=action)

    @classmethod
    def parse(cls, body: str | bytes, environment: str) -> "LockRecord":
        """A stored lock: our JSON, or ``key: value`` lines (written by hand, or by older dockyards on a host).

        An unreadable one still counts as held, by an unknown holder.
        """
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        try:
            data = json.loads(text)
        except ValueError:
            data = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            data = {k.strip(): v.strip() for k, v in data.items()}
            data.setdefault("acquired", data.pop("since", "?"))
        if not isinstance(data, dict) or not data.get("holder"):
            return cls(holder="unknown", environment=environment, version="?", acquired="?")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {"environment": environment, "version": "?", "acquired": "?",
                                  **{k: v for k, v in data.items() if k in known}}
        try:
            values["pid"] = int(values.get("pid") or 0)
        except ValueError:
            values["pid"] = 0
        return cls(**{k: str(v) if k != "pid" else v for k, v in values.items()})

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def lock_held(environment: str, held: LockRecord | None, *, waited: float = 0) -> LockHeld:
    """The refusal of a deploy whose environment is locked, whichever store holds the lock."""
    by = held.describe() if held else "another deploy"
    after = f" (waited {waited:g}s)" if waited else ""
    return LockHeld(f"{environment} is locked by {by}{after}: wait for it, or run with --force-unlock if that "
                    "deploy is dead")


class LockStore(Protocol):
    """Where one environment's lock lives. ``create`` is the atomic test-and-set: True for exactly one caller."""

    @property
    def where(self) -> str: ...

    def create(self, record: LockRecord) -> bool: ...

    def read(self, environment: str) -> LockRecord | None: ...

    def delete(self) -> None: ...


class DeployLock:
    """An environment's deploy lock in a :class:`LockStore`."""

    def __init__(self, store: LockStore, *, environment: str, holder: str | None = None,
                 clock: Callable[[], datetime] = utc_now, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.environment = environment
        self.holder = holder or actor()
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        self.held = False

    @property
    def where(self) -> str:
        return self.store.where

    def current(self) -> LockRecord | None:
        """Who holds the lock now (None: free)."""
        return self.store.read(self.environment)

    def acquire(self, version: str, *, action: str = "deploy", wait: float = 0, force_unlock: bool = False,
                say: Say | None = None) -> LockRecord:
        """Take the lock, waiting up to ``wait`` seconds for a held one; :class:`LockHeld` (exit 9) if it stays held.

        ``force_unlock`` first clears a lock whoever holds it (a dead deploy's), saying whose it was.
        """
        if force_unlock:
            cleared = self.force_unlock()
            if cleared is not None and say:
                say(f"cleared the lock of {cleared.describe()}")
        deadline = self.monotonic() + wait
        told = False
        vanished = 0
        while True:
            record = LockRecord.new(holder=self.holder, environment=self.environment, version=version,
                                    now=self.clock(), action=action)
            if self.store.create(record):
                self.held = True
                return record
            holder = self.current()
            if holder is None and vanished < 3:
                vanished += 1
                continue  # released between our attempt and the look: try again at once
            if self.monotonic() >= deadline:
                raise lock_held(self.environment, holder, waited=wait)
            if say and not told:
                say(f"waiting up to {wait:g}s for the lock of {self.environment}, held by {holder.describe()}")
                told = True
            self.sleep(min(1.0, max(0.0, deadline - self.monotonic())))

    def release(self) -> None:
        """Give the lock back if this deploy holds it (safe to call twice, and after a failure)."""
        if self.held:
            self.store.delete()
            self.held = False

    def force_unlock(self) -> LockRecord | None:
        """Delete the lock whoever holds it; returns what it said (None: there was none)."""
        record = self.current()
        if record is not None:
            self.store.delete()
        return record


# --- the three stores ---------------------------------------------------------------------------------------------


class S3LockStore:
    """One S3 object per environment (``<prefix>/locks/<environment>.json``), created with a conditional put."""

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self.s3 = s3  # a dockyard.clients.s3.S3Client
        self.bucket = bucket
        self.key = key

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def create(self, record: LockRecord) -> bool:
        return self.s3.create(self.bucket, self.key, record.to_json().encode())

    def read(self, environment: str) -> LockRecord | None:
        body = self.s3.read(self.bucket, self.key)
        return None if body is None else LockRecord.parse(body, environment)

    def delete(self) -> None:
        self.s3.delete(self.bucket, self.key)


class SsmLockStore:
    """One String parameter per environment, created with ``Overwrite=False`` (SSM creates a name at most once)."""

    def __init__(self, ssm: Any, name: str) -> None:
        self.ssm = ssm  # a dockyard.clients.ssm.SsmClient
        self.name = name

    @property
    def where(self) -> str:
        return f"SSM parameter {self.name}"

    def create(self, record: LockRecord) -> bool:
        from ..clients.ssm import ParameterExists

        try:
            self.ssm.create(self.name, record.to_json(), description=f"dockyard deploy lock of {record.environment}")
        except ParameterExists:
            return False
        return True

    def read(self, environment: str) -> LockRecord | None:
        body = self.ssm.get(self.name)
        return None if body is None else LockRecord.parse(body, environment)

    def delete(self) -> None:
        self.ssm.delete(self.name)


def make_lock_dir(path: str) -> Command:
    """Atomic: ``mkdir`` fails when the directory (another deploy's lock) exists."""
    return Command(("sh", "-c", 'mkdir "$1"', "sh", path))


def remove_lock_dir(path: str) -> Command:
    return Command(("sh", "-c", 'rm -rf "$1"', "sh", path))


def lock_dir_exists(path: str) -> Command:
    return Command(("sh", "-c", 'test -d "$1"', "sh", path))


class HostDirLockStore:
    """A directory on a host, made with ``mkdir``, holding ``details`` (the :class:`LockRecord` as JSON).

    ``host`` is anything with ``run(Command, check=False)``, ``read_file`` and ``write_file`` (an SSH host).
    """

    def __init__(self, host: Any, lock_dir: str, *, host_name: str = "") -> None:
        self.host = host
        self.lock_dir = lock_dir
        self.host_name = host_name or getattr(host, "name", "") or "the host"

    @property
    def details_path(self) -> str:
        return f"{self.lock_dir}/details"

    @property
    def where(self) -> str:
        return f"{self.lock_dir} on {self.host_name}"

    def create(self, record: LockRecord) -> bool:
        result = self.host.run(make_lock_dir(self.lock_dir), check=False)
        if result.ok:
            self.host.write_file(self.details_path, record.to_json() + "\n", mode=0o644)
            return True
        if self.host.run(lock_dir_exists(self.lock_dir), check=False).ok:
            return False
        said = " ".join((result.stderr or result.stdout).split())
        raise CommandFailed(f"{self.host_name}: cannot create the lock {self.lock_dir}: {said}")

    def read(self, environment: str) -> LockRecord | None:
        text = self.host.read_file(self.details_path)
        if text is None:
            if not self.host.run(lock_dir_exists(self.lock_dir), check=False).ok:
                return None
            # made, its details not written yet (or lost): still held
            return LockRecord(holder="unknown (no details)", environment=environment, version="?", acquired="?")
        return LockRecord.parse(text, environment)

    def delete(self) -> None:
        result = self.host.run(remove_lock_dir(self.lock_dir), check=False)
        if not result.ok and self.host.run(lock_dir_exists(self.lock_dir), check=False).ok:
            said = " ".join((result.stderr or result.stdout).split()) or f"exit {result.returncode}"
            raise CommandFailed(f"{self.host_name}: cannot remove the lock {self.lock_dir} ({said[-200:]}); fix the "
                                "host, then run the unlock task")
