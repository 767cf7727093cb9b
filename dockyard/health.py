"""HTTP health checks with a deadline; the clock and ``sleep`` are injectable so waits are testable."""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable

from .errors import HealthCheckFailed


@dataclass(frozen=True)
class Probe:
    ok: bool
    status: int | None
    detail: str


def probe(url: str, *, timeout: float = 5.0) -> Probe:
    """One GET: 2xx is healthy; anything else says why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own URL
            return Probe(200 <= response.status < 300, response.status, f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        return Probe(False, exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Probe(False, None, str(reason) or type(exc).__name__)


@dataclass
class HealthCheck:
    url: str
    timeout: float
    interval: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    check: Callable[[str], Probe] = probe

    def wait(self) -> Probe:
        """Poll until healthy; :class:`HealthCheckFailed` with the last answer after ``timeout`` seconds."""
        deadline = self.clock() + self.timeout
        last = Probe(False, None, "not checked")
        while True:
            last = self.check(self.url)
            if last.ok:
                return last
            if self.clock() >= deadline:
                raise HealthCheckFailed(
                    f"{self.url} not healthy after {self.timeout:g}s (last answer: {last.detail})"
                )
            self.sleep(self.interval)
