"""SIGTERM and SIGHUP as an exception that unwinds the task, and the audit record it leaves."""
from __future__ import annotations

import os
import signal

import pytest

from dockyard.core.history import AuditRecord, as_written
from dockyard.core.signals import Interrupted, exit_code_of, signals_as_interrupts


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_unwinds_the_block_and_runs_its_cleanup_once(signum, code):
    cleaned = []
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as stopped, signals_as_interrupts():
        try:
            os.kill(os.getpid(), signum)
        finally:
            os.kill(os.getpid(), signum)  # a second signal during the cleanup does not cut it short
            cleaned.append(True)
    assert cleaned == [True] and exit_code_of(stopped.value) == code
    assert signal.getsignal(signum) is before


def test_a_record_written_while_an_interrupt_unwinds_says_interrupted():
    record = AuditRecord(action="deploy", environment="prod", target="t", version="1.0.0", label="1.0.0",
                         who="me@here", started="2026-01-01T00:00:00+00:00", result="")
    assert as_written(record) == record
    written = []
    with pytest.raises(KeyboardInterrupt):
        try:
            raise KeyboardInterrupt
        finally:
            written.append(as_written(record))
    assert written[0].result == "interrupted"
    assert exit_code_of(KeyboardInterrupt()) == 130
