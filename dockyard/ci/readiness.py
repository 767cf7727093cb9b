"""Waiting until a service container answers its readiness probe (a real check, never a fixed sleep)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..errors import DockyardError


class ServiceNotReady(DockyardError):
    """A service container did not pass its readiness probe in time (or stopped)."""

    exit_code = 6


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    output: str = ""


@dataclass
class Readiness:
    """Polls ``probe`` until it passes; gives up when the container stops or the deadline passes.

    ``probe`` runs the service's check; ``running`` says whether its container is still up; ``sleep`` and
    ``clock`` are injectable so the decisions are testable without waiting.
    """

    service: str
    probe: Callable[[], ProbeOutcome]
    running: Callable[[], bool]
    expected_output: str = ""
    timeout: float = 120.0
    interval: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def passed(self, outcome: ProbeOutcome) -> bool:
        return outcome.ok and (not self.expected_output or self.expected_output in outcome.output)

    def wait(self) -> int:
        """Return the number of probes it took; raise :class:`ServiceNotReady` otherwise."""
        deadline = self.clock() + self.timeout
        attempts = 0
        last = ProbeOutcome(False, "")
        while True:
            attempts += 1
            last = self.probe()
            if self.passed(last):
                return attempts
            if not self.running():
                raise ServiceNotReady(f"service {self.service!r} stopped before it was ready; its last log lines "
                                      "are above (check its image and environment in dockyard.ci.services)")
            if self.clock() >= deadline:
                said = last.output.strip().splitlines()[-1:] or ["no output"]
                raise ServiceNotReady(
                    f"service {self.service!r} was not ready after {self.timeout:g}s ({attempts} probes; last: "
                    f"{said[0][:120]}); raise dockyard.ci.ready_timeout or fix its probe"
                )
            self.sleep(self.interval)
