"""Plain HTTP GETs of our own endpoints (health checks, smoke tests): one answer each, never an exception."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    ok: bool
    status: int | None
    detail: str


def probe(url: str, *, timeout: float = 5.0) -> Probe:
    """One GET: 2xx is healthy; anything else says why not."""
    import urllib.error  # here, not at load: the settings import this module and `inv --list` imports them
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own URL
            return Probe(200 <= response.status < 300, response.status, f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        return Probe(False, exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Probe(False, None, str(reason) or type(exc).__name__)
