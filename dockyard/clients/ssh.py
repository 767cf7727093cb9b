"""SSH hosts through Fabric: one lazily opened :class:`fabric.Connection` per host, commands run as data.

Host keys are checked against the configured ``known_hosts`` (unknown hosts are refused; trust-on-first-use only
when asked for, and never under ``CI=true``). Connection failures become :class:`~dockyard.errors.Unreachable`
with what to fix. HTTP checks of containers go through the SSH connection itself (``direct-tcpip``), so the host
needs no HTTP client and no port has to be published. Fabric and paramiko are imported inside functions.
"""
from __future__ import annotations

import os
import shlex
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..core.signals import INTERRUPTS
from ..errors import CommandFailed, ConfigError, DockyardError, Unreachable
from ..health import Probe
from ..runner import Command, MaskedStream, Masker, Result, failure_message


@dataclass(frozen=True)
class SshOptions:
    key_file: Path | None = None
    use_agent: bool = True
    known_hosts: Path | None = None
    accept_new_host_keys: bool = False
    connect_timeout: float = 10.0
    #: The bound of a command that streams nothing (a pull, a script); streamed and interactive ones are the user's.
    #: ``dockyard.ssh.command_timeout``
    command_timeout: float = 900.0
    #: Seconds between SSH keepalives, so a connection that died is noticed instead of waited on for ever.
    keepalive: int = 15


def bounded_remotely(argv: Sequence[str], seconds: float) -> str:
    """``argv`` as a remote command line that the host itself stops a second after ``seconds``.

    Closing an SSH channel does not end a command that has no terminal (a ``docker pull`` would go on), so the
    host's ``timeout`` ends it; a host without a working ``timeout`` runs the command unbounded there (the client
    still stops waiting).
    """
    script = 'if timeout 1 true 2>/dev/null; then exec timeout "$0" "$@"; fi; exec "$@"'
    return shlex.join(("sh", "-c", script, f"{int(seconds) + 1}", *argv))


#: How long an interrupted remote command may still take to end before its channel is closed under it.
INTERRUPT_GRACE = 2.0


def abandoning_remote() -> type:
    """Fabric's remote runner, but an interrupt (SIGTERM, SIGHUP, Ctrl-C without a pty) leaves at once.

    Invoke joins its output readers before an interrupt leaves ``run``, and they read until the remote command
    ends: an interrupted ``docker pull`` would hold the deploy's cleanup for minutes. The command gets
    :data:`INTERRUPT_GRACE` to end (most take a moment, and then what the cleanup sees is what the host did), then
    its channel is closed. On a pty, Ctrl-C is still forwarded to the remote command, as Invoke does.
    """
    from fabric.runners import Remote

    class AbandoningRemote(Remote):
        def wait(self) -> None:
            try:
                super().wait()
            except INTERRUPTS as exc:
                if isinstance(exc, KeyboardInterrupt) and self.using_pty:
                    raise
                self._close_after_grace()
                raise

        def _close_after_grace(self) -> None:
            deadline = time.monotonic() + INTERRUPT_GRACE
            try:
                while not self.process_is_finished and time.monotonic() < deadline:
                    time.sleep(0.05)
            except INTERRUPTS:  # a second Ctrl-C: no more grace
                pass
            self.kill()

    return AbandoningRemote


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


class SshHost:
    """One host: ``run`` a :class:`Command`, upload text, probe HTTP through the tunnel. Opens on first use."""

    def __init__(self, user: str, host: str, port: int, options: SshOptions, *, mask: Masker | None = None,
                 name: str = "") -> None:
        self.user = user
        self.host = host
        self.port = port
        self.options = options
        self.mask = mask or Masker()
        self.name = name or f"{user}@{host}:{port}"
        self._connection: Any = None

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    # --- connecting -------------------------------------------------------------------------------------------

    @property
    def connection(self) -> Any:
        if self._connection is None:
            self._connection = self._open()
        return self._connection

    def _open(self) -> Any:
        import logging

        import paramiko

        # paramiko logs refused tunnels and failed logins itself; we report them as one clear error instead.
        logging.getLogger("paramiko").addHandler(logging.NullHandler())
        logging.getLogger("paramiko").propagate = False
        from fabric import Config, Connection

        options = self.options
        connect_kwargs: dict[str, Any] = {"allow_agent": options.use_agent, "look_for_keys": False,
                                          "banner_timeout": options.connect_timeout,
                                          "auth_timeout": options.connect_timeout}
        if options.key_file is not None:
            if not options.key_file.is_file():
                raise Unreachable(f"ssh key file {options.key_file} not found: fix dockyard.ssh.key_file")
            connect_kwargs["key_filename"] = str(options.key_file)
        config = Config(overrides={"load_ssh_configs": False, "runners": {"remote": abandoning_remote()}})
        cxn = Connection(self.host, user=self.user, port=self.port, config=config,
                         connect_timeout=options.connect_timeout, connect_kwargs=connect_kwargs)
        client = cxn.client
        client._host_keys.clear()  # Fabric preloads ~/.ssh/known_hosts: only the configured file counts
        known = options.known_hosts
        if known is not None and known.is_file():
            try:
                client.load_host_keys(str(known))
            except (paramiko.hostkeys.InvalidHostKey, UnicodeDecodeError, ValueError) as exc:
                line = getattr(exc, "line", "")
                shown = f" ({line.strip()[:40]!r})" if isinstance(line, str) and line.strip() else ""
                raise ConfigError(f"dockyard.ssh.known_hosts: {known} holds a line that is not a host key{shown}; "
                                  "fix or remove it (ssh-keygen -R <host> -f <file> rewrites the file)") from None
        if options.accept_new_host_keys and not in_ci():
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            cxn.open()
        except paramiko.BadHostKeyException:
            raise Unreachable(
                f"{self.address}: its host key does not match the one in {known}; if the host was rebuilt, "
                f"check its fingerprint and update that file"
            ) from None
        except paramiko.AuthenticationException:
            key = f"key {options.key_file}" if options.key_file else "the SSH agent's keys"
            raise Unreachable(
                f"{self.address}: authentication failed with {key}: check dockyard.ssh.key_file and the host's "
                f"authorized_keys for {self.user}"
            ) from None
        except paramiko.SSHException as exc:
            text = str(exc)
            if "not found in known_hosts" in text or "known_hosts" in text:
                where = known or "dockyard.ssh.known_hosts"
                raise Unreachable(
                    f"{self.address}: host key unknown (not in {where}); add it after checking its fingerprint: "
                    f"ssh-keyscan -p {self.port} {self.host} >> {where}"
                ) from None
            raise Unreachable(f"{self.address}: SSH failed ({text}); check that sshd runs there") from None
        except (socket.timeout, TimeoutError):
            raise Unreachable(
                f"{self.address}: no answer within {options.connect_timeout:g}s; check the address and firewall"
            ) from None
        except OSError as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            if hasattr(exc, "errors") and exc.errors:  # NoValidConnectionsError: one error per address
                first = next(iter(exc.errors.values()))
                reason = getattr(first, "strerror", None) or str(first)
            raise Unreachable(f"{self.address} is unreachable ({reason}); check dockyard.ssh.hosts and that sshd "
                              f"runs there") from None
        if cxn.transport is not None and options.keepalive:
            cxn.transport.set_keepalive(options.keepalive)
        return cxn

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None

    # --- commands ----------------------------------------------------------------------------------------------

    def run(self, command: Command, *, check: bool = True, stream: bool = False, pty: bool = False,
            timeout: float | None = None) -> Result:
        """Run ``command`` (``shlex.join`` of its argv); its stdin is fed, then closed. ``stream`` shows output."""
        import io

        from invoke.exceptions import CommandTimedOut

        from invoke.exceptions import ThreadException

        if timeout is None and not stream and not pty:
            timeout = self.options.command_timeout
        kwargs: dict[str, Any] = {"hide": not stream, "warn": True, "pty": pty, "timeout": timeout}
        if command.stdin is not None:
            kwargs["in_stream"] = io.StringIO(command.stdin)
        else:
            kwargs["in_stream"] = False if not pty else None
        shown: list[MaskedStream] = []
        if stream:  # what a container prints (`env`, logs) may hold the secrets it was given
            shown = [MaskedStream(sys.stdout, self.mask, per_write=pty), MaskedStream(sys.stderr, self.mask,
                                                                                     per_write=pty)]
            kwargs["out_stream"], kwargs["err_stream"] = shown
        line = shlex.join(command.argv) if timeout is None else bounded_remotely(command.argv, timeout)
        started = time.monotonic()
        try:
            outcome = self.connection.run(line, **kwargs)
        except CommandTimedOut:
            raise self._timed_out(command, timeout) from None
        except INTERRUPTS:
            self._forget()  # the cleanup that follows gets a connection no half-read reply is left on
            raise
        except (OSError, EOFError) as exc:
            self._forget()
            raise Unreachable(f"{self.name}: the SSH connection broke ({exc}); check the host") from None
        except ThreadException as exc:  # Invoke's I/O threads died with the connection
            self._forget()
            reason = "; ".join(str(e.value) for e in exc.exceptions) or "connection lost"
            raise Unreachable(f"{self.name}: the SSH connection broke during `{command.display(self.mask)}` "
                              f"({reason[:200]}); check the host, then run the task again") from None
        finally:
            for each in shown:
                each.close()
        if timeout is not None and outcome.exited in (None, -1, 124) and time.monotonic() - started >= timeout:
            # The host's own `timeout` (a second later) ended it before the client's timer fired: the same stop.
            raise self._timed_out(command, timeout)
        if outcome.exited in (None, -1) and not self._connected():  # the channel closed with no exit status
            self._forget()
            raise Unreachable(f"{self.name}: the SSH connection broke during `{command.display(self.mask)}`; "
                              "check the host, then run the task again")
        result = Result(command, outcome.exited if outcome.exited is not None else -1,
                        outcome.stdout or "", outcome.stderr or "")
        if check and not result.ok:
            raise CommandFailed(f"{self.name}: {failure_message(result, self.mask)}")
        return result

    def _timed_out(self, command: Command, timeout: float) -> Unreachable:
        return Unreachable(f"{self.name}: `{command.display(self.mask)}` did not finish within {timeout:g}s and was "
                           "stopped: check the host (its network, disk, the registry it pulls from), or raise "
                           "dockyard.ssh.command_timeout")

    @contextmanager
    def _dropped_on_interrupt(self) -> Iterator[None]:
        """An interrupt can land while the main thread is part-way through an sftp reply; the next request on that
        stream (closing the file, say) would wait for ever. So nothing more is sent on it: the connection is dropped
        and the cleanup that follows opens a new one."""
        try:
            yield
        except INTERRUPTS:
            self._forget()
            raise

    @staticmethod
    def _close_quietly(handle: Any) -> None:
        try:
            handle.close()
        except (OSError, EOFError):
            pass

    def _forget(self) -> None:
        """Drop a connection that broke: the next command opens a new one (to free the lock, say), or says why not."""
        try:
            self.close()
        except Exception:  # noqa: BLE001 - it is already dead
            self._connection = None

    def _sftp(self) -> Any:
        import paramiko

        try:
            return self.connection.sftp()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._forget()
            raise Unreachable(f"{self.name}: the SSH connection broke opening sftp ({exc or type(exc).__name__}); "
                              "check the host, then run the task again") from None

    def _connected(self) -> bool:
        transport = self.connection.transport
        for _ in range(10):  # the transport notices the closed socket a moment after the channel does
            if transport is None or not transport.is_active():
                return False
            time.sleep(0.05)
        return True

    def follow(self, command: Command, on_line: Callable[[str], None], *, stop: Any,
               seconds: float | None = None) -> int | None:
        """Run ``command`` on a pty and hand each output line (masked) to ``on_line``, until it ends, ``stop``
        (a :class:`threading.Event`) is set, or ``seconds`` pass. Closing the channel hangs the remote command up.

        Returns its exit status, or None when it was cut short.
        """
        import paramiko

        transport = self.connection.transport
        try:
            channel = transport.open_session(timeout=self.options.connect_timeout)
            channel.get_pty(width=500)
            channel.exec_command(shlex.join(command.argv))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise Unreachable(f"{self.name}: could not start `{command.display(self.mask)}` ({exc})") from None
        deadline = None if seconds is None else time.monotonic() + seconds
        pending = b""
        try:
            channel.settimeout(0.2)
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                try:
                    data = channel.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    on_line(self.mask(line.decode(errors="replace").rstrip("\r")))
            else:
                return None
            if pending.strip():
                on_line(self.mask(pending.decode(errors="replace").rstrip("\r")))
            return channel.recv_exit_status()
        finally:
            channel.close()

    def output(self, command: Command) -> str:
        return self.run(command).stdout.strip()

    # --- files -----------------------------------------------------------------------------------------------

    def write_file(self, path: str, text: str, *, mode: int = 0o600) -> None:
        """Write ``text`` to ``path`` atomically, with ``mode`` set before any byte is written."""
        sftp = self._sftp()
        temporary = f"{path}.dockyard-{os.getpid()}-{time.monotonic_ns()}"
        try:
            with self._dropped_on_interrupt():
                handle = sftp.open(temporary, "w")
                try:
                    handle.chmod(mode)
                    handle.write(text.encode())
                except (OSError, EOFError):
                    self._close_quietly(handle)
                    raise
                handle.close()
                sftp.posix_rename(temporary, path)
        except (OSError, EOFError) as exc:  # a full disk or a read-only directory: sftp says "Failure"
            try:
                sftp.remove(temporary)
            except (OSError, EOFError):
                pass
            if not self._connected():
                self._forget()
                raise Unreachable(f"{self.name}: the SSH connection broke writing {path}; check the host, then run "
                                  "the task again") from None
            raise CommandFailed(f"{self.name}: cannot write {path} ({getattr(exc, 'strerror', None) or exc or 'sftp failure'}); "
                                "check the disk space and permissions there") from None

    def read_file(self, path: str) -> str | None:
        sftp = self._sftp()
        try:
            with self._dropped_on_interrupt():
                handle = sftp.open(path, "r")
                try:
                    data = handle.read()
                except (OSError, EOFError):
                    self._close_quietly(handle)
                    raise
                handle.close()
                return data.decode(errors="replace")
        except FileNotFoundError:
            return None
        except (OSError, EOFError) as exc:
            if getattr(exc, "errno", None) == 2:
                return None
            raise CommandFailed(f"{self.name}: cannot read {path} ({getattr(exc, 'strerror', None) or exc or 'sftp failure'}); "
                                "check the permissions there") from None

    # --- HTTP through the tunnel -----------------------------------------------------------------------------

    def http_get(self, ip: str, port: int, path: str, *, timeout: float = 5.0, host: str = "") -> tuple[Probe, str]:
        """GET ``http://ip:port/path`` as seen from the host (a ``direct-tcpip`` channel); the probe and body.

        ``host`` is the Host header (default ``ip:port``): apps that check it (Django's ALLOWED_HOSTS) answer 400
        to a container address.
        """
        import paramiko

        transport = self.connection.transport
        try:
            channel = transport.open_channel("direct-tcpip", (ip, port), ("127.0.0.1", 0), timeout=timeout)
        except (paramiko.ChannelException, paramiko.SSHException, OSError) as exc:
            reason = "connection refused" if isinstance(exc, paramiko.ChannelException) else str(exc)
            return Probe(False, None, reason or "no answer"), ""
        try:
            channel.settimeout(timeout)
            request = f"GET {path} HTTP/1.0\r\nHost: {host or f'{ip}:{port}'}\r\nUser-Agent: dockyard\r\n\r\n"
            channel.sendall(request.encode())
            chunks = []
            while True:
                data = channel.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except (socket.timeout, OSError) as exc:
            return Probe(False, None, f"no answer ({exc or 'timeout'})"), ""
        finally:
            channel.close()
        raw = b"".join(chunks).decode(errors="replace")
        head, _, body = raw.partition("\r\n\r\n")
        parts = head.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return Probe(False, None, "not an HTTP answer"), ""
        status = int(parts[1])
        return Probe(200 <= status < 300, status, f"HTTP {status}"), body


def open_hosts(hosts: Sequence[SshHost], *, workers: int = 8) -> None:
    """Connect to every host in parallel; the first failure (in host order) is raised, naming the others."""
    outcomes = run_on_hosts(hosts, lambda h: h.connection, workers=workers)
    failures = [o for o in outcomes if o.error is not None]
    if failures:
        first = failures[0].error
        if len(failures) > 1:
            others = "; ".join(f.error.message for f in failures[1:] if isinstance(f.error, DockyardError))
            raise type(first)(f"{first.message}; also: {others}", exit_code=first.exit_code)
        raise first


@dataclass
class HostOutcome:
    host: SshHost
    value: Any = None
    error: BaseException | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.error is None


def run_on_hosts(hosts: Sequence[SshHost], work: Callable[[SshHost], Any], *, workers: int = 8) -> list[HostOutcome]:
    """``work(host)`` on every host at once (Fabric's ThreadingGroup, per-host work); every outcome, in order."""
    if len(hosts) == 1:
        return [_attempt(hosts[0], work)]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(hosts)))) as pool:
        return list(pool.map(lambda h: _attempt(h, work), hosts))


def _attempt(host: SshHost, work: Callable[[SshHost], Any]) -> HostOutcome:
    try:
        return HostOutcome(host, value=work(host))
    except DockyardError as exc:
        return HostOutcome(host, error=exc)
