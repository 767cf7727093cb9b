"""Static files for any app, by configuration: collected into the image at build, served by a proxy or the app.

``dockyard.static`` says where the image holds the files (``dir``), how they get there when the app's Dockerfile
does not put them there itself (``collect``: run in a layer dockyard builds on top of the app's image, so every
image dockyard builds, releases and publishes carries them), the URL prefix (``url``) and who serves them:

- ``serve: proxy`` -- a local stack listed in ``stacks`` gets a front nginx (a compose override dockyard writes:
  the proxy takes over the app service's published port, serves ``url`` from the files copied out of the image
  with ``docker cp`` into a directory it mounts, and passes everything else to the app). Staging's proxy serves
  them the same way from the host's state directory.
- ``serve: app`` -- the app serves them itself (whitenoise and the like); dockyard only collects them.

Everything here is pure: text and argument lists. :class:`~dockyard.stacks.StackService` runs them.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..section import keys_of

SECTION = "static"

DEFAULTS: dict[str, Any] = {
    "dir": "",  # where the image holds the static files (absolute); "" = dockyard leaves static files alone
    "collect": "",  # run at build, as root, in a layer over the app's image; "" = the Dockerfile already does it
    "url": "/static/",  # the URL prefix the files are served under
    "serve": "proxy",  # proxy: dockyard's front nginx serves them; app: the app does (whitenoise and the like)
    "stacks": ["prod"],  # the local stacks (environments with a compose file) that get the front proxy
    "proxy_image": "",  # the front proxy's image; default: the build arg NGINX_IMAGE, else nginx:1.27
}

SCHEMA = keys_of(DEFAULTS)
#: The tag of the app's own build while dockyard adds the collect layer (removed right after).
UNCOLLECTED_TAG = "dockyard-uncollected"
SERVE = ("proxy", "app")

#: The front proxy's compose service, and where it sees the files and its configuration.
PROXY_SERVICE = "dockyard-static"
FILES_MOUNT = "/srv/dockyard-static"
CONF_MOUNT = "/etc/nginx/conf.d/default.conf"

_URL = re.compile(r"^/([A-Za-z0-9._~-]+/)+$")
_DIR = re.compile(r"^/[A-Za-z0-9._/@+-]*$")


@dataclass(frozen=True)
class StaticSettings:
    dir: str
    collect: str
    url: str
    serve: str
    stacks: tuple[str, ...]
    proxy_image: str

    @property
    def enabled(self) -> bool:
        return bool(self.dir)

    def proxied(self, env_name: str) -> bool:
        """Whether the local stack ``env_name`` runs behind dockyard's front proxy."""
        return self.enabled and self.serve == "proxy" and env_name in self.stacks


def parse(settings: Any) -> StaticSettings:
    """Validate ``dockyard.static``: an absolute ``dir``, a ``url`` like ``/static/``, a one-line ``collect``."""
    section = settings.section.section(SECTION)
    directory = section.str("dir").strip()
    if directory:
        clean = str(PurePosixPath(directory))
        if not _DIR.match(directory) or ".." in PurePosixPath(directory).parts or clean == "/":
            raise section.fail("dir", f"expected an absolute directory inside the image such as /app/staticfiles, "
                                      f"got {directory!r}")
        directory = clean
    collect = section.str("collect").strip()
    if collect:
        if not directory:
            raise section.fail("collect", f"collects into nothing: set {section.full('dir')} to the directory "
                                          "the command writes (Django: STATIC_ROOT)")
        if "\n" in collect:
            raise section.fail("collect", "expected one command line, got several lines")
        try:
            shlex.split(collect)
        except ValueError as exc:
            raise section.fail("collect", f"not a shell-style command line ({exc}): {collect!r}") from None
    url = section.str("url", DEFAULTS["url"], required=True)
    if not _URL.match(url):
        raise section.fail("url", f"expected a URL path that starts and ends with '/', such as /static/, got {url!r}")
    serve = section.str("serve", "proxy", choices=SERVE)
    stacks = section.strings("stacks", tuple(DEFAULTS["stacks"]))
    if directory and serve == "proxy":
        for name in stacks:
            env = settings.environments.get(name)
            if env is None:
                raise section.fail("stacks", f"no environment named {name!r}")
            if env.compose is None:
                raise section.fail("stacks", f"environment {name!r} has no compose file, so no local stack")
    proxy_image = section.str("proxy_image") or settings.build_args.get("NGINX_IMAGE") or "nginx:1.27"
    return StaticSettings(dir=directory, collect=collect, url=url, serve=serve, stacks=stacks,
                          proxy_image=proxy_image)


# --- the collect layer ------------------------------------------------------------------------------------------


def collect_dockerfile(base: str, collect: str, user: str) -> str:
    """A Dockerfile (sent on stdin, no context) that runs ``collect`` over ``base`` as root, then gives the image
    back its own user: the app's ``USER`` may not write where its files are collected."""
    lines = [f"FROM {base}", "USER root", f"RUN {collect}"]
    if user:
        lines.append(f"USER {user}")
    return "\n".join(lines) + "\n"


def collect_build_argv(docker: str, tags: Sequence[str], *, platform: str = "") -> tuple[str, ...]:
    """``docker build`` of :func:`collect_dockerfile` from stdin; ``--force-rm``: a command that fails leaves no
    container behind. ``platform``: the collected image's (one of a multi-platform release; its ``RUN`` needs
    qemu's binfmt handlers on an engine of another architecture)."""
    argv = [docker, "build", "--force-rm", *(("--platform", platform) if platform else ())]
    for tag in tags:
        argv += ["--tag", tag]
    return (*argv, "-")


# --- copying the files out of an image --------------------------------------------------------------------------


def create_argv(docker: str, image: str, label: str) -> tuple[str, ...]:
    """A container of ``image`` that is never started (any entrypoint will do), only copied from."""
    return (docker, "create", "--label", label, "--entrypoint", "/dockyard-never-started", image)


def copy_out_argv(docker: str, container: str, directory: str, dest: Path) -> tuple[str, ...]:
    """``docker cp`` of the directory's contents (``dir/.``) into ``dest``: no program of the image runs."""
    return (docker, "cp", f"{container}:{directory}/.", f"{dest}/")


# --- the local front proxy --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """One port the app service publishes in the compose file: the front proxy takes it over."""

    target: int
    published: str
    host_ip: str = ""


def published_ports(model: Mapping[str, Any], service: str, compose_file: Path) -> tuple[Published, ...]:
    """The TCP ports ``service`` publishes in a resolved compose model (``compose config --format json``)."""
    spec = (model.get("services") or {}).get(service)
    if spec is None:
        raise ConfigError(f"{compose_file}: no service {service!r} (dockyard.environments.<env>.app_service)")
    ports = []
    for port in spec.get("ports") or []:
        if not isinstance(port, Mapping) or port.get("protocol", "tcp") != "tcp" or not port.get("published"):
            continue
        ports.append(Published(int(port["target"]), str(port["published"]), str(port.get("host_ip") or "")))
    if not ports:
        raise ConfigError(
            f"{compose_file}: service {service!r} publishes no port, so dockyard's static proxy has none to take "
            f"over: publish the app's port there (\"127.0.0.1:${{DOCKYARD_PORT}}:8000\"), or remove the "
            f"environment from dockyard.static.stacks"
        )
    return tuple(ports)


def supports_reset(compose_version: str) -> bool:
    """Whether a Compose of this version reads ``!reset`` in an override file (2.24.0 and later)."""
    match = re.match(r"v?(\d+)\.(\d+)", compose_version)
    return bool(match) and (int(match.group(1)), int(match.group(2))) >= (2, 24)


def render_local_proxy_conf(static: StaticSettings, app_service: str, app_port: int) -> str:
    return f"""# Written by dockyard (dockyard.static): {static.url} from the running image's files, the rest to the app
resolver 127.0.0.11 valid=5s ipv6=off;

server {{
    listen 80 default_server;
    server_tokens off;
    client_max_body_size 25m;

{render_static_location(static.url, FILES_MOUNT)}

    location / {{
        set $dockyard_app http://{app_service}:{app_port};
        proxy_pass $dockyard_app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_read_timeout 60s;
    }}
}}
"""


def render_static_location(url: str, root: str) -> str:
    """The nginx ``location`` serving ``url`` from the directory ``root`` (a file that is missing is a 404 there,
    never passed to the app), with the image's MIME types (the staging proxy's own configuration has none)."""
    return f"""    location {url} {{
        alias {root.rstrip('/')}/;
        include /etc/nginx/mime.types;
        access_log off;
        add_header Cache-Control "public, max-age=3600";
        add_header X-Content-Type-Options "nosniff";
    }}"""


def render_local_override(static: StaticSettings, app_service: str, ports: Sequence[Published], files: Path,
                          conf: Path) -> str:
    """The compose override that puts the front proxy before ``app_service``: the app's published ports move to
    the proxy (``!reset`` needs Compose 2.24 or later), the files and the configuration are mounted read-only."""
    q = json.dumps
    bindings = [f"{p.host_ip + ':' if p.host_ip else ''}{p.published}:80" for p in ports[:1]]
    return "\n".join([
        "# Written by dockyard (dockyard.static); regenerated by every task of this stack.",
        "services:",
        f"  {q(app_service)}:",
        "    ports: !reset []",
        f"  {q(PROXY_SERVICE)}:",
        f"    image: {q(static.proxy_image)}",
        "    volumes:",
        f"      - {q(f'{files}:{FILES_MOUNT}:ro')}",
        f"      - {q(f'{conf}:{CONF_MOUNT}:ro')}",
        "    ports:",
        *[f"      - {q(b)}" for b in bindings],
        "    depends_on:",
        f"      - {q(app_service)}",
        "    mem_limit: 64m",
        "",
    ])
