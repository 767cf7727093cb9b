"""SIGTERM and SIGHUP end a task the way Ctrl-C does: as an exception that unwinds it.

CI cancel and ``timeout`` send SIGTERM, a closed terminal SIGHUP; Python's default for both is to die at once,
leaving the deploy lock held and no audit record. Inside :func:`signals_as_interrupts` they raise
:class:`Interrupted`, so every ``finally`` that releases a lock or writes the audit record runs for them as for
Ctrl-C. It is not a ``KeyboardInterrupt``: Invoke's runners (local commands, and Fabric's remote ones) catch that
while a command runs, send the command a Ctrl-C and keep waiting, so a signal would be lost in a long ``docker
pull``. A second signal during the cleanup is ignored: the cleanup is what it would cut short. The audit stores mark a record written while an interrupt unwinds as ``interrupted``
(:func:`interrupted_now`).
"""
from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

INTERRUPTED = "interrupted"
#: The signals turned into :class:`Interrupted`, and the exit code of each (128 + the signal's number).
HANDLED = {signal.SIGTERM: 143, signal.SIGHUP: 129}


class Interrupted(BaseException):
    """The task was asked to stop by SIGTERM or SIGHUP (a ``BaseException``: no ``except Exception`` eats it)."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


#: What ends a task early: Ctrl-C, or a signal :func:`signals_as_interrupts` turned into an exception.
INTERRUPTS = (KeyboardInterrupt, Interrupted)


def exit_code_of(interrupt: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return interrupt.exit_code if isinstance(interrupt, Interrupted) else 130


def interrupted_now() -> bool:
    """Whether an interrupt (Ctrl-C or a handled signal) is unwinding the caller's stack right now."""
    return isinstance(sys.exc_info()[1], INTERRUPTS)


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread (once)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum: int, _frame: object) -> None:
        for each in HANDLED:
            signal.signal(each, signal.SIG_IGN)  # let the cleanup that follows finish
        raise Interrupted(signum)

    previous = {each: signal.signal(each, interrupt) for each in HANDLED}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)
