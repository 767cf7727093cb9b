"""Commands as data, and the one place that runs them locally.

A :class:`Command` is an argument vector plus what it needs (stdin, extra environment, working directory).
Builders in ``dockyard.clients`` return Commands; :class:`Runner` executes them. Secrets travel on stdin or in
the environment, never in ``argv``, and echoed commands pass through a :class:`Masker`.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Mapping, Sequence

from .errors import CommandFailed, DockyardError

MASK = "********"


class TimedOut(CommandFailed):
    """A command did not finish within its bound and was stopped."""


class Stalled(TimedOut):
    """A watched command printed nothing new for ``seconds`` and was stopped; ``last`` is its last status line."""

    def __init__(self, message: str, *, seconds: float, last: str = "") -> None:
        super().__init__(message)
        self.seconds = seconds
        self.last = last


class Masker:
    """Replaces every registered secret value with ``********`` in text meant for people."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *values: str) -> None:
        # Very short values would mask ordinary words ("1", "no"); they are not secrets worth hiding.
        for value in values:
            if value and len(value) >= 4:
                self._secrets.update(_spellings(value))

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


def _spellings(value: str) -> set[str]:
    """A secret as it is written and as a debug log may spell it: URL-encoded (query and form bodies), JSON, repr."""
    import json
    from urllib.parse import quote, quote_plus

    spelt = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1], repr(value)[1:-1]}
    return {s for s in spelt if len(s) >= 4}


class MaskingFilter:
    """A logging filter that masks secrets in every record it passes (``inv -d`` shows botocore's and paramiko's
    debug logs, which carry API parameters and request bodies: the values of ``eb.setenv``, ``ecs.deploy``...)."""

    def __init__(self, mask: Masker) -> None:
        self.mask = mask

    def filter(self, record: Any) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is shown by its template alone
            text = str(record.msg)
        record.msg, record.args = self.mask(text), None
        if record.exc_info and not record.exc_text:
            import logging

            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        return True


def mask_debug_logs(mask: Masker) -> None:
    """Mask secrets in whatever the logging handlers print (the root's, where ``inv -d`` sends everything)."""
    import logging

    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, MaskingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(MaskingFilter(mask))


class MaskedStream:
    """A text stream that masks secrets before they reach ``target`` (a remote command's streamed output).

    Whole lines are masked (a secret split across two reads is still found); ``per_write`` masks each write as it
    comes instead, for a terminal session where a prompt must show before its line ends.
    """

    def __init__(self, target: IO[str], mask: Masker, *, per_write: bool = False) -> None:
        self.target = target
        self.mask = mask
        self.per_write = per_write
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        if self.per_write:
            self._emit(len(self.pending))
        else:
            self._emit(self.pending.rfind("\n") + 1)
        return len(text)

    def _emit(self, upto: int) -> None:
        if upto > 0:
            chunk, self.pending = self.pending[:upto], self.pending[upto:]
            self.target.write(self.mask(chunk))

    def flush(self) -> None:
        self.target.flush()

    def close(self) -> None:
        """Write what is left of the last line (the stream's target stays open)."""
        self._emit(len(self.pending))
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    stdin: str | None = field(default=None, repr=False)
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))

    def display(self, mask: Masker | None = None) -> str:
        text = shlex.join(self.argv)
        if self.stdin is not None:
            text += " <<stdin"
        return mask(text) if mask else text


@dataclass(frozen=True)
class Result:
    command: Command
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def as_command(cmd: Command | Sequence[str]) -> Command:
    return cmd if isinstance(cmd, Command) else Command(tuple(cmd))


class Runner:
    """Runs Commands on this machine.

    With ``echo`` on, a command whose output reaches the terminal (``capture=False``: builds, logs) is printed,
    masked, to ``stream`` before it runs; ``echo=True`` on a call prints a captured one too. ``interactive=True``
    also hands over stdin (shells).
    """

    def __init__(self, *, echo: bool = False, mask: Masker | None = None, stream: IO[str] | None = None) -> None:
        self.echo = echo
        self.mask = mask or Masker()
        self.stream = stream

    def say(self, text: str) -> None:
        print(self.mask(text), file=self.stream or sys.stderr, flush=True)

    def run(
        self,
        cmd: Command | Sequence[str],
        *,
        capture: bool = True,
        check: bool = True,
        interactive: bool = False,
        timeout: float | None = None,
        echo: bool | None = None,
    ) -> Result:
        command = as_command(cmd)
        # By default a command is shown when its output is (it is doing something the user watches);
        # captured queries stay quiet unless asked.
        if self.echo and (echo if echo is not None else not capture):
            self.say(f"$ {command.display(self.mask)}")
        env = {**os.environ, **command.env} if command.env else None
        stdin: int | None
        if command.stdin is not None:
            stdin = None
        elif interactive:
            stdin = None  # inherit the terminal
        else:
            stdin = subprocess.DEVNULL
        try:
            proc = subprocess.run(
                command.argv,
                input=command.stdin,
                stdin=stdin,
                capture_output=capture,
                text=True,
                env=env,
                cwd=command.cwd,
                timeout=timeout,
            )
        except FileNotFoundError:
            raise DockyardError(f"{command.argv[0]}: command not found; install it (see `inv doctor`)") from None
        except subprocess.TimeoutExpired:
            raise TimedOut(f"`{command.display(self.mask)}` did not finish within {timeout:g}s") from None
        result = Result(command, proc.returncode, proc.stdout or "", proc.stderr or "")
        if check and not result.ok:
            raise CommandFailed(failure_message(result, self.mask))
        return result


    def watch(self, cmd: Command | Sequence[str], *, stall_timeout: float, stream: IO[str] | None = None) -> Result:
        """Run a command that reports progress (``docker push``/``pull``), showing its status lines, and stop it
        when it prints nothing new for ``stall_timeout`` seconds (:class:`Stalled`).

        Its stdout is a terminal, so it prints progress as bytes move (a layer's upload bar: without a terminal
        Docker prints nothing until the layer is done, and a slow upload would look stalled). A terminal of ours
        shows that display as it is; other output (CI logs) gets the status lines without the bars.
        ``Result.stdout`` holds those lines, ``Result.stderr`` what the command said there.
        """
        import time

        command = as_command(cmd)
        if self.echo:
            self.say(f"$ {command.display(self.mask)}")
        lines = StatusLines(stream or sys.stdout, self.mask)
        master, terminal = _terminal()
        env = {**os.environ, **command.env} if command.env else None
        try:
            proc = subprocess.Popen(command.argv, stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE,
                                    env=env, cwd=command.cwd, start_new_session=True)
        except FileNotFoundError:
            os.close(master)
            raise DockyardError(f"{command.argv[0]}: command not found; install it (see `inv doctor`)") from None
        finally:
            os.close(terminal)
        assert proc.stderr is not None
        said: list[bytes] = []
        try:
            open_ends = {master: lines.feed, proc.stderr.fileno(): said.append}
            last = time.monotonic()
            while open_ends:
                left = stall_timeout - (time.monotonic() - last)
                if left <= 0:
                    _stop(proc)
                    raise Stalled(f"`{command.display(self.mask)}` made no progress for {stall_timeout:g}s",
                                  seconds=stall_timeout, last=lines.last)
                ready = _readable(list(open_ends), min(left, 1.0))
                for end in ready:
                    try:
                        data = os.read(end, 65536)
                    except OSError:  # EIO: the terminal's other side is closed, the command is done
                        data = b""
                    if not data:
                        del open_ends[end]
                        continue
                    last = time.monotonic()
                    open_ends[end](data)
            returncode = proc.wait()
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C, SIGTERM) or stalled: the command must not outlive us
                _stop(proc)
            lines.close()
            os.close(master)
            proc.stderr.close()
        return Result(command, returncode, "\n".join(lines.shown), b"".join(said).decode(errors="replace"))


class StatusLines:
    """A progress display's text as status lines: ANSI cursor moves and progress bars dropped, each layer's status
    shown once per change (``abc123: Pushed``), masked."""

    _ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]")
    _BAR = re.compile(r"\[[=> ]*\]|\d+(\.\d+)?\s?[kMGT]?B/\d+(\.\d+)?\s?[kMGT]?B")

    def __init__(self, target: IO[str], mask: Masker) -> None:
        self.target = target
        self.mask = mask
        self.pending = ""
        self.shown: list[str] = []
        self.last = ""
        self._by_layer: dict[str, str] = {}
        self.raw = _isatty(target)

    def feed(self, data: bytes) -> None:
        text = data.decode(errors="replace")
        if self.raw:  # a person at a terminal sees Docker's own display, bars included
            self.target.write(self.mask(text))
            self.target.flush()
        self.pending += text
        *records, self.pending = re.split(r"[\r\n]", self.pending)
        for record in records:
            self._record(record)

    def close(self) -> None:
        if self.pending:
            self._record(self.pending)
            self.pending = ""

    def _record(self, record: str) -> None:
        text = self._ANSI.sub("", record).strip()
        if not text:
            return
        layer, _, status = text.partition(": ")
        self.last = text
        if self._BAR.search(text):
            return  # a progress bar: proof of progress, not worth a line
        if status and " " not in layer:
            if self._by_layer.get(layer) == status:
                return
            self._by_layer[layer] = status
        self.shown.append(text)
        if not self.raw:
            self.target.write(self.mask(text) + "\n")
            self.target.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _terminal() -> tuple[int, int]:
    """A pseudo-terminal (master, the command's side), wide enough that progress lines are not wrapped."""
    import fcntl
    import pty
    import struct
    import termios

    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
    return master, terminal


def _readable(ends: list[int], timeout: float) -> list[int]:
    import select

    ready, _, _ = select.select(ends, [], [], timeout)
    return ready


def _stop(proc: subprocess.Popen) -> None:
    """End a command started in its own session, and whatever it started: TERM, then KILL after 5 s."""
    import signal

    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def failure_message(result: Result, mask: Masker | None = None, *, lines: int = 5) -> str:
    """One readable paragraph: the command, its exit code, and the last lines of what it said."""
    said = (result.stderr or result.stdout).strip().splitlines()
    tail = " | ".join(line.strip() for line in said[-lines:] if line.strip())
    text = f"`{result.command.display()}` failed (exit {result.returncode})" + (f": {tail}" if tail else "")
    return mask(text) if mask else text
