"""An interrupt (SIGTERM, SIGHUP, Ctrl-C) in the middle of SSH work leaves at once, against a real sshd.

A deploy's cleanup (free the lock, write the audit record) runs after the interrupt: it must not first wait for an
interrupted ``docker pull`` to end, nor block on an sftp reply the interrupt cut in half.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from dockyard.clients.ssh import SshHost, SshOptions
from dockyard.core.signals import Interrupted
from dockyard.runner import Command

SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dockyard.clients.ssh import SshHost, SshOptions
    from dockyard.core.signals import INTERRUPTS, exit_code_of, signals_as_interrupts
    from dockyard.runner import Command

    user, port, key, known, marker = sys.argv[1:]
    host = SshHost(user, "127.0.0.1", int(port), SshOptions(key_file=Path(key), use_agent=False,
                                                             known_hosts=Path(known)), name="staging-1")
    with signals_as_interrupts():
        try:
            print("ready", flush=True)
            host.run(Command(("sleep", marker)))
            print("finished", flush=True)
        except INTERRUPTS as exc:
            started = time.monotonic()
            print("after:", host.output(Command(("echo", "cleanup"))), flush=True)  # what a deploy's cleanup does
            print(f"cleanup took {time.monotonic() - started:.1f}", flush=True)
            sys.exit(exit_code_of(exc))
""")


def _options(sshd_host) -> SshOptions:
    return SshOptions(key_file=sshd_host.key_file, use_agent=False, known_hosts=sshd_host.known_hosts)


def _processes(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "python" not in line]


def _sleeps(marker: str) -> list[str]:
    return [line for line in _processes(marker) if line.startswith("sleep")]


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_during_a_long_remote_command_ends_it_within_seconds_and_the_cleanup_runs(sshd_host, signum,
                                                                                          code):
    marker = f"12{os.getpid() % 1000}{time.monotonic_ns() % 100000}"  # a sleep of many seconds, and findable
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, sshd_host.user, str(sshd_host.port),
                                str(sshd_host.key_file), str(sshd_host.known_hosts), marker],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    try:
        assert process.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 20
        while not _sleeps(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _sleeps(marker), "the remote sleep never started"
        sent = time.monotonic()
        process.send_signal(signum)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            out, err = process.communicate(timeout=10)
            pytest.fail(f"still waiting 30 s after {signum.name}:\n{err[-4000:]}")
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == code, (out, err)
    assert "finished" not in out
    assert "after: cleanup" in out, (out, err)  # the cleanup got a working connection
    assert took < 10, (took, out)  # the grace is 2 s; the remote sleep had minutes to go
    assert "Traceback" not in err, err
    # The remote command itself is not signalled: this sshd refuses SSH "signal" requests for a root login
    # ("session signalling requires privilege separation"). A command that writes (a pull's progress) dies of
    # SIGPIPE once its channel is closed; one that does not is ended by the host's `timeout`
    # (dockyard.ssh.command_timeout), and what the deploy started is removed by its own cleanup.
    bounded = [line for line in _processes(marker) if line.startswith("timeout ")]
    subprocess.run(["pkill", "-f", f"sleep {marker}"], check=False)
    assert bounded, "the remote command was not bounded by the host's timeout"


class _CutMidReply:
    """Makes the next sftp reply after ``open`` stop part-way: one byte of its length is read, then an interrupt
    lands, as SIGTERM can between two reads of the main thread."""

    def __init__(self, monkeypatch) -> None:
        import paramiko.sftp
        import paramiko.sftp_client

        self.fired = False
        armed = threading.Event()
        real_read_all = paramiko.sftp.BaseSFTP._read_all
        real_open = paramiko.sftp_client.SFTPClient.open

        def read_all(sftp, n):
            if armed.is_set() and not self.fired and n == 4:
                self.fired = True
                real_read_all(sftp, 1)
                raise Interrupted(signal.SIGTERM)
            return real_read_all(sftp, n)

        def open_then_arm(sftp, *args, **kwargs):
            handle = real_open(sftp, *args, **kwargs)
            armed.set()
            return handle

        monkeypatch.setattr(paramiko.sftp.BaseSFTP, "_read_all", read_all)
        monkeypatch.setattr(paramiko.sftp_client.SFTPClient, "open", open_then_arm)
        monkeypatch.setattr(paramiko.sftp_client.SFTPClient, "file", open_then_arm)


def _in_thread(call, seconds: float):
    """``call()``'s exception (or None), or "hung" when it has not returned within ``seconds``."""
    outcome: list = []

    def target():
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test looks at what it was
            outcome.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    return outcome[0] if outcome else "hung"


@pytest.mark.parametrize("operation", ["write", "read"])
def test_an_interrupt_part_way_through_an_sftp_reply_leaves_and_the_next_step_gets_a_fresh_connection(
        sshd_host, tmp_path, monkeypatch, operation):
    host = SshHost(sshd_host.user, "127.0.0.1", sshd_host.port, _options(sshd_host), name="staging-1")
    path = tmp_path / f"state-{uuid.uuid4().hex[:8]}"
    path.write_text("before\n")
    try:
        assert host.output(Command(("echo", "up"))) == "up"
        cut = _CutMidReply(monkeypatch)
        if operation == "write":
            outcome = _in_thread(lambda: host.write_file(str(path), "after\n"), 20)
        else:
            outcome = _in_thread(lambda: host.read_file(str(path)), 20)
        assert cut.fired
        assert isinstance(outcome, Interrupted), outcome  # not "hung": nothing more was asked of that stream
        monkeypatch.undo()
        assert host.read_file(str(path)) == "before\n"  # a new connection, and the file was not half-replaced
        host.write_file(str(path), "after\n")
        assert path.read_text() == "after\n"
        assert host.output(Command(("echo", "still"))) == "still"
    finally:
        monkeypatch.undo()
        host.close()
