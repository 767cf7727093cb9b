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


def post_json(url: str, body: object, *, timeout: float = 10.0) -> int:
    """POST ``body`` as JSON to ``url`` (a webhook); the answer's HTTP status. Network errors raise ``OSError``."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "dockyard"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the project's webhook
            response.read(65536)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
