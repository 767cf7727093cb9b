"""The staging deploy journal, settled from what nginx serves; the audit and unlock error paths; the .env pre-flight."""
from __future__ import annotations

from dataclasses import replace

import pytest

from dockyard.core.history import AuditRecord, HostAuditLog
from dockyard.core.locks import DeployLock, HostDirLockStore
from dockyard.errors import CommandFailed, EnvFileError, Unreachable
from dockyard.runner import Result
from dockyard.staging.deploy import Container, HostPlan, HostState
from dockyard.staging.journal import (
    STARTED,
    SWITCHED,
    SWITCHING,
    HostJournal,
    JournalEntry,
    aside_name,
    begin,
    plan_recovery,
    release,
    run_recovery,
)
from dockyard.staging.model import HostSpec, Layout, SshAddress
from dockyard.staging.proxy import render_upstream
from dockyard.staging.service import ENV_LINE_LIMIT, check_env_lines

LAYOUT = Layout("shop-staging", "/home/deploy/.dockyard/shop-staging")
V1, V2 = "shop-staging-app-v1", "shop-staging-app-v2"


def app(version: str, state: str, created: str) -> Container:
    return Container(f"shop-staging-app-{version}", state, version, "app", created, f"reg/shop:{version}")


def state_of(*containers: Container, served: str | None, written: str | None) -> HostState:
    return HostState(containers, served, render_upstream(f"shop-staging-app-{written}" if written else None, 8000,
                                                         written), written=written, asked=True)


def entry(step: str = STARTED, *, rollback: bool = False) -> JournalEntry:
    plan = HostPlan("h", "v2", "reg/shop:v2", V2, "v1", rollback=rollback)
    return begin(plan, previous="v1").at(step)


def test_a_deploy_cut_short_before_the_reload_is_undone_and_upstream_conf_written_back():
    # The connection dropped after upstream.conf named v2, before nginx reloaded: nginx still serves v1.
    state = state_of(app("v2", "running", "2"), app("v1", "running", "1"), served="v1", written="v2")
    assert state.switch_pending
    recovery = plan_recovery(entry(SWITCHING), state, LAYOUT, 8000)
    assert not recovery.finish and recovery.remove == (V2,) and recovery.stop == ()
    assert recovery.upstream == render_upstream(V1, 8000, "v1")
    settled = recovery.settled(state)
    assert [c.name for c in settled.containers] == [V1] and settled.live == "v1" and not settled.switch_pending
    assert "undo it first" in recovery.lines("h")[0] and "remove shop-staging-app-v2 (never served)" in \
        "\n".join(recovery.lines("h"))


def test_a_deploy_cut_short_after_the_reload_is_finished():
    state = state_of(app("v2", "running", "2"), app("v1", "running", "1"), served="v2", written="v2")
    recovery = plan_recovery(entry(SWITCHING), state, LAYOUT, 8000)
    assert recovery.finish and recovery.stop == (V1,) and recovery.remove == () and recovery.upstream is None
    assert [c.state for c in recovery.settled(state).containers] == ["running", "exited"]


def test_an_interrupted_rollback_stops_the_retained_container_it_started_and_never_removes_it():
    state = state_of(app("v2", "running", "2"), app("v1", "running", "1"), served="v1", written="v1")
    recovery = plan_recovery(entry(STARTED, rollback=True), state, LAYOUT, 8000)
    assert recovery.remove == () and recovery.stop == (V2,) and not recovery.finish


def test_the_journal_round_trips_and_ignores_what_is_not_ours():
    e = entry(SWITCHED)
    assert JournalEntry.parse(e.to_json()) == e
    assert JournalEntry.parse("not json") is None and JournalEntry.parse("[1]") is None


class RecordingHost:
    """Runs nothing; answers each command with ``fail`` (exit 1) when its text holds one of ``failing``."""

    name = "deploy@h:22"

    def __init__(self, *failing: str, lose: int = 0) -> None:
        self.failing = failing
        self.lose = lose  # the first ``lose`` commands find the connection broken
        self.ran: list[str] = []
        self.files: dict[str, str] = {}

    def run(self, command, check=True, **_):
        text = " ".join(command.argv)
        if self.lose:
            self.lose -= 1
            raise Unreachable(f"{self.name}: the SSH connection broke")
        self.ran.append(text)
        failed = any(f in text for f in self.failing)
        return Result(command, 1 if failed else 0, "", "Read-only file system" if failed else "")

    def write_file(self, path, text, mode=0o600):
        self.files[path] = text

    def read_file(self, path):
        return self.files.get(path)


def test_an_audit_line_that_cannot_be_appended_is_an_error():
    record = AuditRecord("deploy", "staging", "h", "v2", "v2", "me@laptop", "2026-12-02T05:00:00+0000",
                         result="succeeded")
    with pytest.raises(CommandFailed, match="cannot append to the audit log /x/audit.log on deploy@h:22 "
                                            r"\(Read-only file system\)"):
        HostAuditLog(RecordingHost("printf"), "/x/audit.log").write(record)


def test_a_lock_that_cannot_be_removed_is_an_error_and_a_lost_connection_gets_a_second_try():
    from datetime import datetime, timezone

    from dockyard.core.locks import LockRecord

    held = LockRecord.new(holder="me@laptop", environment="staging", version="v2",
                          now=datetime(2026, 12, 2, 5, 0, tzinfo=timezone.utc))
    stuck_host = RecordingHost("rm -rf")
    stuck = DeployLock(HostDirLockStore(stuck_host, "/x/lock"), environment="staging")
    stuck_host.files[stuck.store.details_path] = held.to_json()  # the lock directory stays, with our record
    stuck.held, stuck.record = True, held
    with pytest.raises(CommandFailed, match="the deploy lock /x/lock on deploy@h:22 is still held"):
        release(stuck)
    assert stuck.held

    dropped = DeployLock(HostDirLockStore(RecordingHost(lose=1), "/x/lock"), environment="staging")
    dropped.held, dropped.record = True, held
    release(dropped)  # the second try runs on a new connection
    assert not dropped.held

    failure = CommandFailed("h: docker pull failed")
    release(stuck, failure)  # an error on the way out keeps its exit code and says the lock is held
    assert failure.message.startswith("h: docker pull failed; the deploy lock /x/lock") and failure.exit_code == 3


def test_settling_writes_upstream_back_removes_the_unserved_container_audits_and_clears_the_journal():
    from dockyard.staging.deploy import HostSession

    host = RecordingHost()
    session = HostSession(host, HostSpec(SshAddress("deploy", "h", 22), "shop-staging", 80, ".dockyard"), LAYOUT)
    HostJournal(host, LAYOUT).write(entry(SWITCHING))
    state = state_of(app("v2", "running", "2"), app("v1", "running", "1"), served="v1", written="v2")
    run_recovery(plan_recovery(HostJournal(host, LAYOUT).read(), state, LAYOUT, 8000), session, env_name="staging",
                 stop_timeout=10)
    assert host.files[LAYOUT.upstream_conf] == render_upstream(V1, 8000, "v1")
    assert any(line.endswith(f"rm --force {V2}") for line in host.ran)
    audit = next(line for line in host.ran if "audit.log" in line)
    assert "deploy version=v2 previous=v1" in audit and "outcome=failed" in audit
    assert any(line.startswith("sh -c rm -f") and line.endswith("/journal") for line in host.ran)


def test_an_env_line_docker_cannot_read_is_refused_before_anything():
    check_env_lines("A=1\nB=" + "x" * (ENV_LINE_LIMIT - 2) + "\n", {}, {})
    with pytest.raises(EnvFileError, match=r"BIG in the env file of the app is 1048580 bytes long: docker reads env "
                                           r"file lines of at most 65535 bytes"):
        check_env_lines("A=1\nBIG=" + "x" * (1 << 20) + "\n", {}, {})
    with pytest.raises(EnvFileError, match="the accessory db"):
        check_env_lines(None, {}, {"db": {"P": "y" * 70000}})


def test_a_redeploy_of_a_retained_version_sets_it_aside_and_an_undo_puts_it_back():
    # v1 retained (stopped), redeployed: its container is renamed aside before the new v1 takes the name.
    plan = HostPlan("h", "v1", "reg/shop:v1", V1, "v2", remove_first=(V1,))
    started = begin(plan, previous="v2")
    assert started.created == ()  # the name is not ours to remove: the container behind it is the retained one
    aside = app("v1", "exited", "1")
    aside = Container(aside_name(V1), aside.state, aside.version, aside.role, aside.created, aside.image)
    cut = state_of(app("v1", "running", "3"), aside, app("v2", "running", "2"), served="v2", written="v2")

    # Cut short before the rename: nothing is set aside yet, and the retained v1 is left alone.
    before = plan_recovery(started, state_of(app("v1", "exited", "1"), app("v2", "running", "2"), served="v2",
                                             written="v2"), LAYOUT, 8000)
    assert before.remove == () and before.restore == ()

    undo = plan_recovery(replace(started, set_aside=(V1,)), cut, LAYOUT, 8000)
    assert not undo.finish and undo.restore == (V1,)
    settled = undo.settled(cut)
    assert sorted((c.name, c.state, c.created) for c in settled.containers) == [(V1, "exited", "1"),
                                                                                (V2, "running", "2")]
    assert "put back the set-aside shop-staging-app-v1" in "\n".join(undo.lines("h"))

    done = plan_recovery(replace(started, set_aside=(V1,), step=SWITCHED),
                         replace(cut, live="v1", written="v1"), LAYOUT, 8000)
    assert done.finish and done.restore == (V1,) and done.stop == (V2,)
    assert sorted(c.name for c in done.settled(replace(cut, live="v1")).containers) == [V1, V2]
