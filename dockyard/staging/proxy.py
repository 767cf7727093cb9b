"""The front proxy's configuration (nginx), rendered as text.

The proxy is the stock nginx image running dockyard's ``nginx.conf`` from the host's state directory (mounted
read-only at :data:`MOUNT`). Switching versions rewrites ``upstream.conf`` and reloads nginx: the master starts
new workers with the new upstream and the old workers finish their in-flight requests before they exit, so no
request is dropped. ``/.dockyard/version`` answers the version the proxy serves, which is how a switch is
confirmed before the old container is stopped.
"""
from __future__ import annotations

from ..core.static import render_static_location

MOUNT = "/etc/dockyard-proxy"
VERSION_PATH = "/.dockyard/version"
NO_APP = "-"


def render_proxy_conf(*, shutdown_timeout: int = 30, static_url: str = "") -> str:
    """The proxy's main configuration (the same for every version); with ``static_url`` it serves that prefix
    from the live version's static files (``static/`` beside it, copied out of the app container at each switch)."""
    static = f"\n{render_static_location(static_url, MOUNT + '/static')}\n" if static_url else ""
    return f"""# Written by dockyard (inv staging.setup); the upstream lives in upstream.conf.
worker_processes 2;
pid /tmp/dockyard-proxy.pid;
worker_shutdown_timeout {shutdown_timeout}s;
error_log stderr warn;

events {{
    worker_connections 2048;
}}

http {{
    access_log off;
    server_tokens off;
    client_max_body_size 25m;

    include {MOUNT}/upstream.conf;

    server {{
        listen 80 default_server;

        location = {VERSION_PATH} {{
            default_type text/plain;
            return 200 "$dockyard_version\\n";
        }}
{static}
        location / {{
            proxy_pass http://dockyard_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 5s;
            proxy_read_timeout 60s;
            # An app that closed an idle keep-alive connection is retried on a fresh one.
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


def render_upstream(container: str | None, port: int, version: str | None) -> str:
    """Where the proxy sends requests: the live app container, or nowhere (502) before the first deploy."""
    if container is None:
        server = "server 127.0.0.1:9 down;"
        shown = NO_APP
    else:
        server = f"server {container}:{port} max_fails=0;"
        shown = version or NO_APP
    return (
        f"# Written by dockyard: the live version is {shown}\n"
        f"upstream dockyard_app {{\n    {server}\n    keepalive 16;\n}}\n"
        f'map "" $dockyard_version {{\n    default "{shown}";\n}}\n'
    )


def live_version(upstream_text: str | None) -> str | None:
    """The version an ``upstream.conf`` routes to (None when no app is live)."""
    if not upstream_text:
        return None
    for line in upstream_text.splitlines():
        if line.startswith("# Written by dockyard: the live version is "):
            version = line.rsplit(" ", 1)[-1].strip()
            return None if version == NO_APP else version
    return None
