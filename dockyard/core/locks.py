"""The deploy lock: one interface, :class:`DeployLock`, over three stores that each create a name atomically.

* :class:`S3LockStore`: an S3 object written with a conditional put (``If-None-Match: *``): EB, and ECS with a bucket.
* :class:`SsmLockStore`: an SSM parameter created with ``Overwrite=False``: ECS without a bucket.
* :class:`HostDirLockStore`: a directory made with ``mkdir`` (atomic on POSIX) on the first SSH host: staging.

Whichever store, of two deploys starting together exactly one gets the lock; the other is refused with the same
:class:`~dockyard.errors.LockHeld` (exit 9) naming the holder (:class:`LockRecord`), the version and since when.
A deploy takes the lock before it reads the state it plans from, so no plan is made from state another deploy is
changing. While it holds the lock a :class:`Heartbeat` thread refreshes the record's ``heartbeat`` stamp, only while
the stored record is still its own (S3 ``If-Match`` on the ETag; a read-compare-write on SSM and the host), so a lock
someone cleared is never written back. A refused deploy whose holder looks dead (its pid is gone from this machine,
or it has missed :data:`STALE_AFTER_BEATS` heartbeats) says so, with the command that clears it; the lock is never
taken over without ``force_unlock``. Waiting for a lock (``wait=``) is done here once, for every store.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Callable, Protocol

from ..errors import CommandFailed, LockHeld, Unreachable
from ..runner import Command
from .actor import actor, stamp, utc_now

Say = Callable[[str], None]

#: What a dry run says after its plan: it read the state without the lock a real run takes first.
DRY_RUN_LOCK_NOTE = ("(a dry run takes no lock: it planned from the state as read just now; a real run takes the "
                     "lock first, then reads the state)")
HEARTBEAT_SECONDS = 30  # how often a holder refreshes its record's heartbeat
STALE_AFTER_BEATS = 3  # a holder that missed this many heartbeats looks dead


@dataclass(frozen=True)
class LockRecord:
    """Who holds an environment's lock, for what, since when, which process on which machine, and when it last
    said it was alive (``heartbeat``, every ``interval`` seconds; both empty in records of older dockyards)."""

    holder: str
    environment: str
    version: str
    acquired: str  # ISO 8601, UTC
    pid: int = 0
    host: str = ""  # the machine the deploy runs on (where ``pid`` lives)
    action: str = "deploy"  # deploy | rollback
    heartbeat: str = ""  # ISO 8601, UTC: the holder's last refresh
    interval: int = 0  # seconds between heartbeats (0: this holder does not beat)
    #: why the holder looks dead, judged when the record was read (never stored; see :func:`dead_reason`)
    stale: str = field(default="", compare=False)

    def describe(self) -> str:
        doing = "rolling back to" if self.action == "rollback" else "deploying"
        where = f", pid {self.pid} on {self.host}" if self.pid and self.host else ""
        dead = f"; STALE: {self.stale}" if self.stale else ""
        return f"{self.holder} ({doing} {self.version} since {self.acquired}{where}{dead})"

    def same_holding(self, other: "LockRecord | None") -> bool:
        """Whether ``other`` is this same taking of the lock (whatever its heartbeat says)."""
        return other is not None and replace(self, heartbeat="", stale="") == replace(other, heartbeat="", stale="")

    @classmethod
    def new(cls, *, holder: str, environment: str, version: str, now: datetime,
            action: str = "deploy", interval: float = 0) -> "LockRecord":
        return cls(holder=holder, environment=environment, version=version, acquired=stamp(now), pid=os.getpid(),
                   host=socket.gethostname(), action=action, heartbeat=stamp(now), interval=int(interval))

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
        known = {f.name for f in fields(cls)} - {"stale"}
        values: dict[str, Any] = {"environment": environment, "version": "?", "acquired": "?",
                                  **{k: v for k, v in data.items() if k in known}}
        for number in ("pid", "interval"):
            try:
                values[number] = int(values.get(number) or 0)
            except (TypeError, ValueError):
                values[number] = 0
        return cls(**{k: v if k in ("pid", "interval") else str(v) for k, v in values.items()})

    def to_json(self) -> str:
        data = asdict(self)
        del data["stale"]
        return json.dumps(data)


def pid_running(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    except OSError:
        return True  # cannot tell: assume alive
    return True


def dead_reason(record: LockRecord, *, now: datetime, this_host: str,
                running: Callable[[int], bool] = pid_running) -> str:
    """Why the record's holder looks dead ("": it may be alive): its pid is gone from this machine, or it has not
    refreshed its heartbeat for more than :data:`STALE_AFTER_BEATS` intervals. Records without a heartbeat (older
    dockyards) are judged by the pid alone."""
    if record.pid and record.host and record.host == this_host and not running(record.pid):
        return f"pid {record.pid} is not running on {record.host}"
    if record.interval > 0 and record.heartbeat:
        try:
            age = (now - datetime.fromisoformat(record.heartbeat)).total_seconds()
        except (TypeError, ValueError):
            return ""
        if age > STALE_AFTER_BEATS * record.interval:
            return f"no heartbeat for {age:.0f}s (it beats every {record.interval}s)"
    return ""


def lock_held(environment: str, held: LockRecord | None, *, waited: float = 0, clear: str = "") -> LockHeld:
    """The refusal of a deploy whose environment is locked, whichever store holds the lock.

    A holder that looks dead (``held.stale``) is named as such, with its last heartbeat and ``clear``, the command
    that clears the lock for this target; the lock is still not taken.
    """
    after = f" (waited {waited:g}s)" if waited else ""
    if held is not None and held.stale:
        where = f"pid {held.pid} on {held.host}" if held.pid and held.host else "no pid recorded"
        doing = "rolling back to" if held.action == "rollback" else "deploying"
        command = f"`{clear}`" if clear else "--force-unlock"
        return LockHeld(f"{environment} is locked by a deploy that looks dead: {held.holder} ({doing} "
                        f"{held.version} since {held.acquired}, {where}, last heartbeat {held.heartbeat or 'never'}):"
                        f" {held.stale}{after}; if it is dead, clear the lock with {command}")
    by = held.describe() if held else "another deploy"
    return LockHeld(f"{environment} is locked by {by}{after}: wait for it, or run with --force-unlock if that "
                    "deploy is dead")


def lock_lost(environment: str, stored: LockRecord | None) -> LockHeld:
    """The refusal of a deploy whose lock was cleared (or cleared and taken by another deploy) while it held it."""
    whose = f"is now held by {stored.describe()}" if stored else "was cleared"
    return LockHeld(f"the deploy lock of {environment} that this deploy took {whose}; this deploy stops here: run "
                    "it again")


class LockStore(Protocol):
    """Where one environment's lock lives. ``create`` is the atomic test-and-set: True for exactly one caller.

    ``refresh`` rewrites the record (its heartbeat) and ``delete_if`` removes it, each only while the stored record
    is still ``held`` (this holder's); both answer False when it is not, and then change nothing.
    """

    @property
    def where(self) -> str: ...

    def create(self, record: LockRecord) -> bool: ...

    def read(self, environment: str) -> LockRecord | None: ...

    def refresh(self, held: LockRecord, new: LockRecord) -> bool: ...

    def delete_if(self, held: LockRecord) -> bool: ...

    def delete(self) -> None: ...


class Heartbeat:
    """Calls ``beat`` every ``interval`` seconds on a daemon thread, until :meth:`stop` or ``beat`` answers False.

    ``sleep`` paces it in tests; by default it waits on an event, so :meth:`stop` ends it at once. An error in one
    beat (the network) is kept in ``error`` and the next beat tries again.
    """

    def __init__(self, beat: Callable[[], bool], interval: float, *,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.beat = beat
        self.interval = interval
        self.sleep = sleep
        self.beats = 0
        self.error = ""
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dockyard-lock-heartbeat", daemon=True)
        self._thread.start()

    def _pause(self) -> bool:
        """Wait one interval; True when stopped meanwhile."""
        if self.sleep is None:
            return self._stopped.wait(self.interval)
        self.sleep(self.interval)
        return self._stopped.is_set()

    def _run(self) -> None:
        while not self._pause():
            try:
                if not self.beat():
                    return
                self.beats += 1
            except Exception as exc:  # noqa: BLE001 - a beat lost to the network: the next one tries again
                self.error = str(exc) or type(exc).__name__

    def stop(self) -> None:
        self._stopped.set()
        if self.sleep is None and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)  # a beat in flight finishes before the lock is given back

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


class DeployLock:
    """An environment's deploy lock in a :class:`LockStore`.

    ``heartbeat``: seconds between the holder's refreshes (0: none); ``beat_sleep`` paces them in tests. ``clear``
    is the command that clears this target's lock, named when a refused deploy's holder looks dead.
    """

    def __init__(self, store: LockStore, *, environment: str, holder: str | None = None,
                 clock: Callable[[], datetime] = utc_now, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, heartbeat: float = HEARTBEAT_SECONDS,
                 beat_sleep: Callable[[float], None] | None = None, clear: str = "",
                 this_host: str = "", running: Callable[[int], bool] = pid_running) -> None:
        self.store = store
        self.environment = environment
        self.holder = holder or actor()
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        self.heartbeat_interval = heartbeat
        self.beat_sleep = beat_sleep
        self.clear = clear
        self.this_host = this_host or socket.gethostname()
        self.running = running
        self.held = False
        self.record: LockRecord | None = None  # what the store holds for us while ``held``
        self.lost = False  # the record was cleared or replaced by someone else while we held it
        self.heartbeat: Heartbeat | None = None

    @property
    def where(self) -> str:
        return self.store.where

    def current(self) -> LockRecord | None:
        """Who holds the lock now (None: free), with ``stale`` saying why that holder looks dead, if it does."""
        record = self.store.read(self.environment)
        if record is None:
            return None
        reason = dead_reason(record, now=self.clock(), this_host=self.this_host, running=self.running)
        return replace(record, stale=reason) if reason else record

    def acquire(self, version: str, *, action: str = "deploy", wait: float = 0, force_unlock: bool = False,
                say: Say | None = None) -> LockRecord:
        """Take the lock, waiting up to ``wait`` seconds for a held one; :class:`LockHeld` (exit 9) if it stays held.

        ``force_unlock`` first clears a lock whoever holds it (a dead deploy's), saying whose it was. A deploy
        takes its lock before it reads state, so the plan's own lock step finds it held already: it then checks
        the store still holds this deploy's record (:meth:`confirm`) and takes nothing again.
        """
        if self.held and self.record is not None:
            return self.confirm(say)
        if force_unlock:
            cleared = self.force_unlock()
            if cleared is not None and say:
                say(f"cleared the lock of {cleared.describe()}")
        deadline = self.monotonic() + wait
        slept = 0.0  # time spent waiting for the holder (what a refusal says it waited)
        told = False
        vanished = 0
        while True:
            record = LockRecord.new(holder=self.holder, environment=self.environment, version=version,
                                    now=self.clock(), action=action, interval=self.heartbeat_interval)
            if self.store.create(record):
                self._hold(record)
                return record
            holder = self.current()
            if holder is None and vanished < 3:
                vanished += 1
                continue  # released between our attempt and the look: try again at once
            if self.monotonic() >= deadline or (holder is not None and holder.stale):  # a dead one: no wait
                waited = wait if self.monotonic() >= deadline else round(slept)
                raise lock_held(self.environment, holder, waited=waited, clear=self.clear)
            if say and not told:
                say(f"waiting up to {wait:g}s for the lock of {self.environment}, held by {holder.describe()}")
                told = True
            pause = min(1.0, max(0.0, deadline - self.monotonic()))
            self.sleep(pause)
            slept += pause

    def _hold(self, record: LockRecord) -> None:
        self.held, self.record, self.lost = True, record, False
        if self.heartbeat_interval > 0:
            self.heartbeat = Heartbeat(self.beat, self.heartbeat_interval, sleep=self.beat_sleep)
            self.heartbeat.start()

    def beat(self) -> bool:
        """Refresh the heartbeat while the store holds our record; False (and ``lost``) once it does not."""
        held = self.record
        if not self.held or held is None:
            return False
        fresh = replace(held, heartbeat=stamp(self.clock()))
        if self.store.refresh(held, fresh):
            self.record = fresh
            return True
        self.lost = True
        return False

    def relabel(self, version: str) -> LockRecord:
        """Name what the held lock is for once it is decided (a rollback's target, chosen from state read under the
        lock); :class:`LockHeld` when the store no longer holds this deploy's record."""
        held = self.confirm()
        if held.version == version:
            return held
        named = replace(held, version=version, heartbeat=stamp(self.clock()))
        if not self.store.refresh(held, named):
            self.lost = True
            raise lock_lost(self.environment, self.store.read(self.environment))
        self.record = named
        return named

    def confirm(self, say: Say | None = None) -> LockRecord:
        """The record this deploy holds, checked against the store: :class:`LockHeld` when it was cleared or taken."""
        assert self.record is not None
        stored = self.current()
        if not self.record.same_holding(stored):
            self.lost = True
            raise lock_lost(self.environment, stored)
        if say:
            say(f"held since {self.record.acquired}: taken before the state this plan was made from was read")
        return self.record

    def release(self) -> None:
        """Give the lock back if this deploy holds it (safe to call twice, and after a failure); a lock someone
        cleared and another deploy took meanwhile is left alone.

        A store that cannot be reached leaves the lock in place: the line says so, and how to clear it.
        """
        if not self.held:
            return
        if self.heartbeat is not None:
            self.heartbeat.stop()
        try:
            deleted = self.record is None or self.store.delete_if(self.record)
        except Unreachable as exc:
            raise type(exc)(f"{exc.message}; the deploy lock of {self.environment} ({self.where}) may still be "
                            "held: once it answers, deploy again with --force-unlock") from None
        self.held = False
        if not deleted:
            self.lost = True

    def force_unlock(self) -> LockRecord | None:
        """Delete the lock whoever holds it; returns what it said (None: there was none)."""
        record = self.current()
        if record is not None:
            self.store.delete()
        return record


def lock_status(lock: DeployLock) -> str:
    """One line for a ``status`` task: ``free (where)``, or who holds the lock, ``STALE: …`` when they look dead."""
    from ..errors import DockyardError

    try:
        held = lock.current()
    except DockyardError as exc:
        return f"unknown ({exc.message})"
    return f"held by {held.describe()}" if held else f"free ({lock.where})"


# --- the three stores ---------------------------------------------------------------------------------------------


class S3LockStore:
    """One S3 object per environment (``<prefix>/locks/<environment>.json``), created with a conditional put and
    refreshed and deleted only while its ETag is the one this holder wrote (``If-Match``)."""

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self.s3 = s3  # a dockyard.clients.s3.S3Client
        self.bucket = bucket
        self.key = key
        self.etag = ""  # of the object this store last wrote

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def create(self, record: LockRecord) -> bool:
        self.etag = self.s3.create_tagged(self.bucket, self.key, record.to_json().encode())
        return bool(self.etag)

    def read(self, environment: str) -> LockRecord | None:
        body = self.s3.read(self.bucket, self.key)
        return None if body is None else LockRecord.parse(body, environment)

    def refresh(self, held: LockRecord, new: LockRecord) -> bool:
        if not self.etag:
            return False
        etag = self.s3.replace(self.bucket, self.key, new.to_json().encode(), etag=self.etag)
        if etag:
            self.etag = etag
        return bool(etag)

    def delete_if(self, held: LockRecord) -> bool:
        return bool(self.etag) and self.s3.delete_if(self.bucket, self.key, etag=self.etag)

    def delete(self) -> None:
        self.s3.delete(self.bucket, self.key)


class SsmLockStore:
    """One String parameter per environment, created with ``Overwrite=False`` (SSM creates a name at most once).

    SSM has no conditional overwrite: a refresh reads the parameter, writes only when it is still this holder's
    record, and checks the version it wrote is the next one (a race of milliseconds remains, against someone
    clearing and retaking the lock by hand between that read and that write).
    """

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

    def _ours(self, held: LockRecord) -> int:
        """The parameter's version while it holds ``held`` (0: it does not)."""
        found = self.ssm.get_versioned(self.name)
        if found is None or not held.same_holding(LockRecord.parse(found[0], held.environment)):
            return 0
        return found[1]

    def refresh(self, held: LockRecord, new: LockRecord) -> bool:
        version = self._ours(held)
        return bool(version) and self.ssm.overwrite(self.name, new.to_json()) == version + 1

    def delete_if(self, held: LockRecord) -> bool:
        return bool(self._ours(held)) and self.ssm.delete(self.name)

    def delete(self) -> None:
        self.ssm.delete(self.name)


def make_lock_dir(path: str) -> Command:
    """Atomic: ``mkdir`` fails when the directory (another deploy's lock) exists."""
    return Command(("sh", "-c", 'mkdir "$1"', "sh", path))


def remove_lock_dir(path: str) -> Command:
    return Command(("sh", "-c", 'rm -rf "$1"', "sh", path))


def lock_dir_exists(path: str) -> Command:
    return Command(("sh", "-c", 'test -d "$1"', "sh", path))


def replace_lock_details(path: str, held: str, new: str) -> Command:
    """Write ``new`` over the lock's details only while they say ``held`` (one shell on the host: compare, write
    beside, rename)."""
    script = '[ "$(cat "$1/details" 2>/dev/null)" = "$2" ] && printf "%s\\n" "$3" > "$1/details.new" && ' \
             'mv "$1/details.new" "$1/details"'
    return Command(("sh", "-c", script, "sh", path, held, new))


def remove_lock_dir_if(path: str, held: str) -> Command:
    """Remove the lock directory only while its details say ``held``."""
    return Command(("sh", "-c", '[ "$(cat "$1/details" 2>/dev/null)" = "$2" ] && rm -rf "$1"', "sh", path, held))


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

    def refresh(self, held: LockRecord, new: LockRecord) -> bool:
        return self.host.run(replace_lock_details(self.lock_dir, held.to_json(), new.to_json()), check=False).ok

    def delete_if(self, held: LockRecord) -> bool:
        result = self.host.run(remove_lock_dir_if(self.lock_dir, held.to_json()), check=False)
        if result.ok:
            return True
        if held.same_holding(self.read(held.environment)):  # still ours: the removal itself failed
            said = " ".join((result.stderr or result.stdout).split()) or f"exit {result.returncode}"
            raise CommandFailed(f"{self.host_name}: cannot remove the lock {self.lock_dir} ({said[-200:]}); fix the "
                                "host, then run the unlock task")
        return False

    def delete(self) -> None:
        result = self.host.run(remove_lock_dir(self.lock_dir), check=False)
        if not result.ok and self.host.run(lock_dir_exists(self.lock_dir), check=False).ok:
            said = " ".join((result.stderr or result.stdout).split()) or f"exit {result.returncode}"
            raise CommandFailed(f"{self.host_name}: cannot remove the lock {self.lock_dir} ({said[-200:]}); fix the "
                                "host, then run the unlock task")
