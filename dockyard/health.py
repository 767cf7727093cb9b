"""HTTP health checks with a deadline; the clock and ``sleep`` are injectable so waits are testable."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from .clients.http import Probe, probe  # noqa: F401 - Probe is re-exported
from .errors import HealthCheckFailed

#: A route that answers 404 this many times in a row is not starting up: it does not exist.
NOT_FOUND_LIMIT = 3


@dataclass(frozen=True)
class HealthSetting:
    """Where the probed path and the probe's Host header come from, so a failure names the key to change."""

    path: str
    path_key: str = "health_path"
    host: str = ""
    host_key: str = ""

    def not_found(self, where: str) -> str:
        return (f"{where} answered HTTP 404 on {self.path} ({self.path_key}): "
                "set health_path to a route your app answers")

    def hint(self, last: Probe) -> str:
        """Why the last answer may have come, for the answers whose usual cause is a setting."""
        if last.status == 400:
            sent = f"Host: {self.host}" if self.host else "its Host header"
            key = f" ({self.host_key})" if self.host_key else ""
            return (f"; HTTP 400 usually means the app refused {sent}{key}: allow that host in the app "
                    "(Django's ALLOWED_HOSTS, a framework's trusted hosts) or set health_host to one it allows")
        if last.status == 404:
            return f"; HTTP 404: set {self.path_key} to a route your app answers"
        return ""


@dataclass
class HealthCheck:
    url: str
    timeout: float
    interval: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    check: Callable[[str], Probe] = probe
    setting: HealthSetting | None = None

    def wait(self) -> Probe:
        """Poll until healthy; :class:`HealthCheckFailed` with the last answer after ``timeout`` seconds.

        A route that keeps answering 404 fails at once (the app is up; the path is wrong), naming the setting.
        """
        deadline = self.clock() + self.timeout
        last = Probe(False, None, "not checked")
        not_found = 0
        while True:
            last = self.check(self.url)
            if last.ok:
                return last
            not_found = not_found + 1 if last.status == 404 else 0
            if not_found >= NOT_FOUND_LIMIT and self.setting is not None:
                raise HealthCheckFailed(self.setting.not_found(self.url.removesuffix(self.setting.path)))
            if self.clock() >= deadline:
                named = f" ({self.setting.path_key})" if self.setting else ""
                hint = self.setting.hint(last) if self.setting else ""
                raise HealthCheckFailed(
                    f"{self.url}{named} not healthy after {self.timeout:g}s (last answer: {last.detail}){hint}"
                )
            self.sleep(self.interval)
