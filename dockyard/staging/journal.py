"""A host's deploy journal: which step a deploy reached, kept on the host, so that the next command can finish or
undo a deploy that was cut short (a dropped connection, a killed laptop), and what the proxy really serves.

A deploy writes ``<state dir>/journal`` before it starts anything (``started``), again before it touches the proxy
(``switching``) and once the proxy answered with the new version (``switched``); it removes the file when it has
written its audit record. A journal left behind means the deploy did not end: the next deploy or rollback (under
the lock) settles it first, from what nginx answers, not from what ``upstream.conf`` says:

* the new version is not served: *undo*: the containers the deploy created are removed, those it started are
  stopped, ``upstream.conf`` is written back to the served version (a later reload must not switch unproven);
* the new version is served: *finish*: the other versions' containers are stopped (kept for rollback).

Either way the audit log gets the record the cut-short deploy could not write. Each step is data
(:class:`Recovery`), so ``--dry-run`` shows it and the plan is made from the state it leaves (:meth:`settled`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..core.actor import actor, stamp, utc_now
from ..core.history import SUCCEEDED, AuditRecord, HostAuditLog
from ..errors import DockyardError
from . import commands as cmd
from .model import Layout
from .proxy import VERSION_PATH, render_upstream

STARTED = "started"  # nothing switched yet: the new containers may be running
SWITCHING = "switching"  # upstream.conf may name the new version; nginx may or may not have reloaded
SWITCHED = "switched"  # the proxy answered with the new version
FAILED = "failed"


def journal_path(layout: Layout) -> str:
    return f"{layout.root}/journal"


@dataclass(frozen=True)
class JournalEntry:
    """What a deploy on one host is doing: enough to undo it or finish it without its process."""

    action: str  # deploy | rollback
    version: str
    container: str
    previous: str  # the version the proxy served when it began ("" when none)
    step: str = STARTED
    created: tuple[str, ...] = ()  # containers it creates (removed on undo)
    restarted: tuple[str, ...] = ()  # retained containers it starts (stopped on undo)
    who: str = ""
    started: str = ""
    image: str = ""
    set_aside: tuple[str, ...] = ()  # earlier containers of this version, renamed (aside_name) until it serves

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def parse(cls, text: str) -> JournalEntry | None:
        try:
            data = json.loads(text)
            data["created"] = tuple(data.get("created") or ())
            data["restarted"] = tuple(data.get("restarted") or ())
            data["set_aside"] = tuple(data.get("set_aside") or ())
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # not ours (or cut in half): nothing can be settled from it

    def at(self, step: str) -> JournalEntry:
        return replace(self, step=step)


class HostJournal:
    """The journal file on one host (written atomically: an sftp write, then a rename)."""

    def __init__(self, host: Any, layout: Layout) -> None:
        self.host = host
        self.path = journal_path(layout)

    def read(self) -> JournalEntry | None:
        text = self.host.read_file(self.path)
        return JournalEntry.parse(text) if text else None

    def write(self, entry: JournalEntry) -> None:
        self.host.write_file(self.path, entry.to_json() + "\n", mode=0o600)

    def clear(self) -> None:
        self.host.run(cmd.shell('rm -f "$1"', self.path))


def aside_name(container: str) -> str:
    """Where a container replaced by a deploy of its own version waits until the new one serves."""
    return f"{container}-replaced"


def begin(plan: Any, *, previous: str | None) -> JournalEntry:
    """The journal of a host plan (:class:`dockyard.staging.deploy.HostPlan`) about to run."""
    # A container of this version that is already there is set aside before its name is reused: not ours to remove.
    created = () if plan.rollback else tuple(n for n in (plan.container, *plan.workers) if n not in plan.remove_first)
    restarted = (plan.container, *plan.workers) if plan.rollback else ()
    return JournalEntry("rollback" if plan.rollback else "deploy", plan.version, plan.container, previous or "",
                        created=created, restarted=restarted, who=actor(), started=stamp(utc_now()),
                        image="" if plan.rollback else plan.image)


# --- what the proxy serves -----------------------------------------------------------------------------------------


def ask_proxy(host: Any, layout: Layout, *, timeout: float = 3.0) -> tuple[bool, str | None]:
    """``(answered, version)``: the version nginx itself routes to (its loaded configuration's), or
    ``(False, None)`` when the proxy does not answer."""
    said = host.run(cmd.container_address(layout, layout.proxy), check=False).stdout.strip()
    state, _, ip = said.partition(" ")
    if state != "running" or not ip.strip():
        return False, None
    probe, body = host.http_get(ip.strip(), 80, VERSION_PATH, timeout=timeout)
    if not probe.ok:
        return False, None
    version = body.strip()
    return True, (None if version in ("", "-") else version)


# --- settling a journal left behind --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """How the next command settles a deploy that did not end (pure data: shown by --dry-run, then run)."""

    entry: JournalEntry
    finish: bool  # the new version is served: finish it; else undo it
    remove: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    upstream: str | None = None  # the text upstream.conf is written back to (None: it is right)
    restore: tuple[str, ...] = ()  # containers set aside, renamed back (undo) or removed (finish)

    def lines(self, who: str) -> list[str]:
        e = self.entry
        out = [(f"{who}: an earlier {e.action} of {e.version} by {e.who or 'someone'} did not end (it reached "
                f"'{e.step}'); {'finish' if self.finish else 'undo'} it first")]
        if self.remove:
            out.append(f"  remove {', '.join(self.remove)} (never served)")
        if self.stop:
            out.append(f"  stop {', '.join(self.stop)} (kept for rollback)")
        if self.restore:
            verb = "remove the set-aside" if self.finish else "put back the set-aside"
            out.append(f"  {verb} {', '.join(self.restore)}")
        if self.upstream is not None:
            out.append("  write upstream.conf back to what the proxy serves")
        out.append(f"  append its record ({SUCCEEDED if self.finish else FAILED}) to the audit log")
        return out

    def settled(self, state: Any) -> Any:
        """The host's state once this has run (a :class:`dockyard.staging.deploy.HostState`)."""
        gone = set(self.remove)
        stopped = set(self.stop)
        back = {aside_name(n): n for n in self.restore}
        if self.finish:
            gone |= set(back)
            back = {}
        else:
            gone |= set(self.restore)  # the new holders of those names
        containers = tuple(replace(c, name=back.get(c.name, c.name), state="exited" if c.name in stopped else c.state)
                           for c in state.containers if c.name not in gone)
        return replace(state, containers=containers, upstream_text=self.upstream or state.upstream_text,
                       written=state.live)


def plan_recovery(entry: JournalEntry, state: Any, layout: Layout, app_port: int) -> Recovery:
    """From the journal and the host's state (its ``live`` asked of nginx)."""
    served = state.live
    upstream = None
    if state.written != served:
        upstream = render_upstream(layout.app_container(served) if served else None, app_port, served)
    if served == entry.version:
        running = {c.name for c in state.containers if c.running}
        stop = tuple(c.name for c in [*state.apps(), *state.workers()]
                     if c.name in running and c.version != entry.version)
        present = {c.name for c in state.containers}
        restore = tuple(n for n in entry.set_aside if aside_name(n) in present)
        return Recovery(entry, True, stop=stop, upstream=upstream, restore=restore)
    present = {c.name for c in state.containers}
    remove = tuple(n for n in entry.created if n in present)
    stop = tuple(n for n in entry.restarted if n in present and state.container(n).running)
    restore = tuple(n for n in entry.set_aside if aside_name(n) in present)
    return Recovery(entry, False, remove=remove, stop=stop, upstream=upstream, restore=restore)


def run_recovery(recovery: Recovery, session: Any, *, env_name: str, stop_timeout: int,
                 result: str | None = None, audit: bool = True) -> None:
    """Do what ``recovery`` says on ``session``'s host, write the audit record, clear the journal.

    ``result`` overrides the record's outcome (``interrupted`` when the deploy's own process settles it); without
    ``audit`` the record is left to the caller (a failed health gate writes its own)."""
    host, layout = session.host, session.layout
    if recovery.upstream is not None:
        host.write_file(layout.upstream_conf, recovery.upstream, mode=0o644)
    if recovery.remove:
        host.run(cmd.remove(layout, recovery.remove), check=False)
    if recovery.stop:
        host.run(cmd.stop(layout, recovery.stop, stop_timeout), check=False)
    if recovery.restore and recovery.finish:
        host.run(cmd.remove(layout, [aside_name(n) for n in recovery.restore]), check=False)
    for name in recovery.restore if not recovery.finish else ():
        host.run(cmd.remove(layout, [name]), check=False)  # the new one of that name, if it got that far
        host.run(cmd.rename(layout, aside_name(name), name))
    if not audit:
        HostJournal(host, layout).clear()
        return
    e = recovery.entry
    outcome = result or (SUCCEEDED if recovery.finish else FAILED)
    if recovery.finish and result:
        outcome = SUCCEEDED  # it is live: an interrupt after the switch does not make it less so
    record = AuditRecord(action=e.action, environment=env_name, target=session.name, version=e.version,
                         label=e.version, who=e.who or actor(), started=e.started or stamp(utc_now()),
                         finished=stamp(utc_now()), result=outcome, previous_label=e.previous,
                         previous_version=e.previous, image=e.image,
                         detail=f"settled after it stopped at '{e.step}'")
    HostAuditLog(host, layout.audit_log).write(record)
    HostJournal(host, layout).clear()


def pending(session: Any, state: Any, app_port: int) -> Recovery | None:
    """The recovery a host's journal asks for (None: the last deploy there ended)."""
    entry = HostJournal(session.host, session.layout).read()
    return None if entry is None else plan_recovery(entry, state, session.layout, app_port)


def settle_hosts(sessions: list[Any], states: dict[str, Any], target: Any, lock: Any, *, say: Any,
                 force_unlock: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Settle every host's unfinished deploy before a new plan is made; returns the states to plan from.

    Only under the lock: a journal is another deploy's work in progress while that deploy holds it. When the lock
    is held (and not being forced) nothing is settled here; the deploy is then refused by the lock, or waits for it
    and finds the plan changed.
    """
    recoveries = {s.name: r for s in sessions if (r := pending(s, states[s.name], target.app_port)) is not None}
    if not recoveries:
        return states
    for session in sessions:
        if session.name in recoveries:
            for line in recoveries[session.name].lines(session.name):
                say(line)
    if dry_run:
        return {name: recoveries[name].settled(state) if name in recoveries else state
                for name, state in states.items()}
    if lock.current() is not None and not force_unlock:
        return states
    lock.acquire("settle", action="deploy", force_unlock=force_unlock)
    try:
        for session in sessions:
            if session.name in recoveries:
                run_recovery(recoveries[session.name], session, env_name=target.env_name,
                             stop_timeout=target.stop_timeout)
    finally:
        release(lock)
    return {s.name: s.state() for s in sessions}


def release(lock: Any, pending_error: BaseException | None = None) -> None:
    """Free the deploy lock; a broken connection gets one more try (the SSH host reconnects).

    When it stays held, the deploy must not end as if all were well: with no other error, that is the error; with
    one, it is added to its message (an interrupt keeps its own exit code, and the lock's fate is said on stderr).
    """
    try:
        try:
            lock.release()
        except DockyardError:
            lock.release()  # still held: once more, on a new connection
    except DockyardError as exc:
        where = getattr(lock, "where", "the host")
        note = f"the deploy lock {where} is still held ({exc.message}); run the unlock task once the host answers"
        if pending_error is None:
            raise type(exc)(note, exit_code=exc.exit_code) from None
        if isinstance(pending_error, DockyardError):
            pending_error.args = (f"{pending_error.message}; {note}",)
            return
        import sys

        print(f"dockyard: {note}", file=sys.stderr)
