"""Private registries: ``docker login`` with the password on stdin, and digests read over HTTP.

Two kinds (``dockyard.registry.kind``): ``v2`` is any Docker Registry HTTP API v2 (Docker Hub, Quay.io, GitLab,
Debian's docker-registry...), ``ecr`` is Amazon ECR. Where the login comes from, and how its password is masked,
is :mod:`dockyard.core.credentials`. Nothing here prints or puts a password on a command line: :func:`login`
hands it to ``docker login --password-stdin``.
"""
from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

from .core.credentials import RegistryCredentials
from .core.platforms import IndexEntry
from .errors import CommandFailed, DockyardError, Refused, Unreachable
from .images import LABEL_REVISION as REVISION_LABEL
from .runner import TimedOut

#: What a manifest HEAD accepts: single-platform Docker and OCI manifests, and their multi-platform indexes.
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"


class RegistryAuthFailed(Refused):
    """The registry rejected the credentials."""


# --- docker login -----------------------------------------------------------------------------------------------


def login(docker: Any, credentials: RegistryCredentials) -> None:
    """``docker login --password-stdin``; a wrong password or an unreachable registry is one clear error."""
    from .clients.docker import login_command

    command = login_command(credentials.registry, credentials.username, credentials.password)
    docker.runner.mask.add(credentials.password)
    bound = getattr(docker, "stall_timeout", 120)
    try:
        result = docker.run(command, check=False, timeout=bound)
    except TimedOut:
        raise Unreachable(f"registry {credentials.registry} did not answer `docker login` within {bound:g}s: check "
                          "that it answers (GET /v2/) and the network, or raise dockyard.registry.stall_timeout") \
            from None
    if result.ok:
        return
    said = docker.runner.mask((result.stderr or result.stdout).strip())
    raise login_error(credentials, said)


def login_error(credentials: RegistryCredentials, said: str) -> DockyardError:
    """Classify what ``docker login`` said into a refused login or an unreachable registry."""
    lowered = said.lower()
    who = f"{credentials.username}@{credentials.registry}"
    if any(s in lowered for s in ("unauthorized", "incorrect username or password", "authentication required",
                                  "access denied")):
        return RegistryAuthFailed(
            f"registry {credentials.registry} rejected the login of {who}: check the password "
            f"(and dockyard.registry.username)"
        )
    if any(s in lowered for s in ("connection refused", "no such host", "timeout", "i/o timeout",
                                  "network is unreachable", "server misbehaving", "connect:", "dial tcp",
                                  "eof", "tls", "x509")):
        last = said.splitlines()[-1] if said else "no answer"
        return Unreachable(f"registry {credentials.registry} is unreachable ({_short(last)}): check dockyard.registry.url and the network")
    last = said.splitlines()[-1] if said else "no output"
    return DockyardError(f"docker login to {credentials.registry} failed: {_short(last)}")


def transfer_error(verb: str, ref: str, said: str) -> DockyardError:
    """What a failed ``docker push``/``pull`` said, as one line: refused connection, unknown host, TLS, rejected
    credentials, or the registry's own last words."""
    from .config import registry_host

    host = registry_host(ref)
    lowered = said.lower()
    last = _short(said.splitlines()[-1]) if said else "no output"
    what = f"docker {verb} of {ref}"
    if "connection refused" in lowered:
        return Unreachable(f"{what}: {host} refused the connection (nothing listens there): check that the registry "
                           "runs, and image.repository / dockyard.registry.url")
    if "no such host" in lowered or "server misbehaving" in lowered or "name resolution" in lowered:
        return Unreachable(f"{what}: the registry host {host.rsplit(':', 1)[0]} is unknown (DNS: no such host): "
                           "check image.repository / dockyard.registry.url")
    if any(s in lowered for s in ("x509", "tls:", "certificate", "http response to https client")):
        return Unreachable(f"{what}: TLS with {host} failed ({last}): give dockerd the registry's CA "
                           f"(/etc/docker/certs.d/{host}/ca.crt), or check dockyard.registry.url")
    if any(s in lowered for s in ("unauthorized", "authentication required", "no basic auth credentials",
                                  "denied", "forbidden")):
        return RegistryAuthFailed(f"{what}: {host} refused it ({last}): log in with the right user "
                                  "(dockyard.registry.username and its password), who must be allowed to "
                                  f"{verb} this repository")
    if verb == "pull" and any(s in lowered for s in ("manifest unknown", "not found")):
        return DockyardError(f"{what}: {host} has no such image ({last}): check the tag")
    if any(s in lowered for s in ("i/o timeout", "timeout", "network is unreachable", "connection reset", "eof",
                                  "broken pipe", "no route to host")):
        return Unreachable(f"{what}: the connection to {host} failed ({last}): check the network and the registry")
    return CommandFailed(f"{what} failed: {last}")


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- the HTTP API v2 ---------------------------------------------------------------------------------------------


def split_repository(repository: str) -> tuple[str, str]:
    """``host[:port]/path`` -> (API host, path); Docker Hub names get their ``registry-1`` host and ``library/``."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, repository
    if host in (DOCKER_HUB, "index.docker.io"):
        host = DOCKER_HUB_API
        if "/" not in path:
            path = f"library/{path}"
    return host, path


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in ("localhost", "::1", "[::1]") or name.startswith("127.")


def api_base(host: str) -> str:
    # dockerd speaks plain HTTP to loopback registries; everything else is HTTPS.
    return f"{'http' if _is_loopback(host) else 'https'}://{host}"


def remote_digest(
    credentials: RegistryCredentials, repository: str, tag: str, *, timeout: float = 20
) -> str | None:
    """The registry's manifest digest of ``repository:tag`` (``sha256:...``), or None when the tag is absent.

    ``repository`` is the full image name (``host/path``) or just the path on ``credentials.registry``.
    """
    answer = _manifest_request("HEAD", credentials, repository, tag, timeout)
    return None if answer is None else (answer[0].get("docker-content-digest") or None)


def remote_image_id(
    credentials: RegistryCredentials, repository: str, tag: str, *, timeout: float = 20
) -> str | None:
    """The image ID (config digest) the registry holds for ``repository:tag``; None when the tag is absent.

    A local image's ID is the digest of its config, so comparing the two tells whether the registry holds exactly
    this image, whether or not it was pushed from this machine. A multi-platform index has no single config:
    its manifest digest is returned instead.
    """
    answer = _manifest(credentials, repository, tag, timeout)
    if answer is None:
        return None
    headers, manifest = answer
    config = manifest.get("config") or {}
    return config.get("digest") or headers.get("docker-content-digest") or None


def _registry_target(credentials: RegistryCredentials, repository: str) -> tuple[str, str]:
    host, path = split_repository(repository)
    if host == DOCKER_HUB_API and credentials.registry not in ("", DOCKER_HUB, "index.docker.io", DOCKER_HUB_API) \
            and not repository.startswith(("docker.io/", "index.docker.io/")):
        host, path = credentials.registry, repository  # a bare path on the credentials' registry
    return host, path


@dataclass(frozen=True)
class RemoteImage:
    """What the registry holds for ``repository:tag``: its manifest digest, image ID and labels."""

    digest: str
    image_id: str
    labels: Mapping[str, str]
    platform: str = ""  # os/arch[/variant] of the image's config; "" for an index


def remote_image(
    credentials: RegistryCredentials, repository: str, tag: str, *, timeout: float = 20
) -> RemoteImage | None:
    """The manifest digest, image ID, labels and platform (from the image config) of ``repository:tag``; None when
    absent. ``tag`` may be a digest (``sha256:...``). A multi-platform index has no single config: its labels are
    then empty (:func:`remote_index` reads its platforms).
    """
    answer = _manifest(credentials, repository, tag, timeout)
    if answer is None:
        return None
    headers, manifest = answer
    digest = headers.get("docker-content-digest", "")
    config_digest = (manifest.get("config") or {}).get("digest", "")
    if not config_digest:
        return RemoteImage(digest, digest, {})
    blob = _api_request("GET", credentials, repository, f"blobs/{config_digest}", f"@{config_digest}",
                        {"Accept": "*/*"}, timeout)
    try:
        config = json.loads(blob[1].decode() or "{}") if blob else {}
    except ValueError:
        config = {}
    labels = (config.get("config") or {}).get("Labels") or {}
    platform = "/".join(str(part) for part in (config.get("os"), config.get("architecture"), config.get("variant"))
                        if part)
    return RemoteImage(digest, config_digest, {str(k): str(v) for k, v in labels.items()}, platform)


INDEX_TYPES = MANIFEST_TYPES[2:]


@dataclass(frozen=True)
class RemoteIndex:
    """What ``repository:tag`` is in the registry: its digest, whether it is a multi-platform index, and one entry
    per platform image (a single image: one entry, its platform read from its config)."""

    digest: str
    is_index: bool
    entries: tuple[IndexEntry, ...]

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(e.platform for e in self.entries)

    def fingerprint(self) -> str:
        """:func:`dockyard.core.platforms.fingerprint` of the platform images (a single image: its image ID)."""
        from .core.platforms import fingerprint

        if not self.is_index:
            return self.entries[0].image_id if self.entries else self.digest
        return fingerprint({e.platform: e.image_id for e in self.entries})


def remote_index(
    credentials: RegistryCredentials, repository: str, tag: str, *, timeout: float = 20
) -> RemoteIndex | None:
    """The registry's index (or single image) for ``repository:tag``, each platform's config read; None when absent.

    BuildKit's attestation manifests (platform ``unknown/unknown``) are not images and are left out.
    """
    from .core.platforms import NOT_IMAGES, IndexEntry

    answer = _manifest(credentials, repository, tag, timeout)
    if answer is None:
        return None
    headers, manifest = answer
    digest = headers.get("docker-content-digest", "")
    media_type = manifest.get("mediaType") or headers.get("content-type", "")
    if media_type not in INDEX_TYPES and "manifests" not in manifest:
        image = remote_image(credentials, repository, tag, timeout=timeout)
        if image is None:
            return None
        return RemoteIndex(digest, False, (IndexEntry(image.platform, image.digest, image.image_id,
                                                      image.labels.get(REVISION_LABEL, "")),))
    entries = []
    for item in manifest.get("manifests") or []:
        spec = item.get("platform") or {}
        platform = "/".join(str(spec[k]) for k in ("os", "architecture", "variant") if spec.get(k))
        if platform in NOT_IMAGES or not item.get("digest"):
            continue
        image = remote_image(credentials, repository, item["digest"], timeout=timeout)
        entries.append(IndexEntry(platform, item["digest"], image.image_id if image else "",
                                  image.labels.get(REVISION_LABEL, "") if image else ""))
    return RemoteIndex(digest, True, tuple(entries))


def _manifest(
    credentials: RegistryCredentials, repository: str, tag: str, timeout: float
) -> tuple[dict[str, str], dict[str, Any]] | None:
    """The response headers and the parsed manifest (or index) of ``repository:tag``; None when absent."""
    answer = _manifest_request("GET", credentials, repository, tag, timeout)
    if answer is None:
        return None
    headers, body = answer
    try:
        return headers, json.loads(body.decode() or "{}")
    except ValueError:
        raise DockyardError(f"registry returned an unreadable manifest for {repository}:{tag}") from None


def _manifest_request(
    method: str, credentials: RegistryCredentials, repository: str, tag: str, timeout: float
) -> tuple[dict[str, str], bytes] | None:
    """HEAD/GET ``/v2/<path>/manifests/<tag>``."""
    reference = f"@{tag}" if tag.startswith("sha256:") else f":{tag}"
    return _api_request(method, credentials, repository, f"manifests/{urllib.parse.quote(tag, safe=':')}",
                        reference, {"Accept": ", ".join(MANIFEST_TYPES)}, timeout)


def _api_request(
    method: str, credentials: RegistryCredentials, repository: str, suffix: str, reference: str,
    headers: Mapping[str, str], timeout: float,
) -> tuple[dict[str, str], bytes] | None:
    """``/v2/<path>/<suffix>`` with Basic auth, or a Bearer token when the registry asks for one; None on 404.

    ``reference`` (``:tag`` or ``@digest``) names what was asked for in errors.
    """
    host, path = _registry_target(credentials, repository)
    url = f"{api_base(host)}/v2/{path}/{suffix}"
    basic = "Basic " + base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    status, answer, body = _request(method, url, {**headers, "Authorization": basic}, timeout, host)
    if status == 401:
        challenge = answer.get("www-authenticate", "")
        if challenge.lower().startswith("bearer"):
            token = bearer_token(challenge, basic, timeout, host)
            status, answer, body = _request(method, url, {**headers, "Authorization": f"Bearer {token}"}, timeout, host)
    if status == 404:
        return None
    if status in (401, 403):
        raise RegistryAuthFailed(
            f"registry {host} refused to show {path}{reference} to {credentials.username}: check the password"
        )
    if status >= 400:
        raise DockyardError(f"registry {host} answered HTTP {status} for {path}{reference}")
    return answer, body


class _NoCredentialsElsewhere(urllib.request.HTTPRedirectHandler):
    """Follow a redirect without our Authorization header when it leaves the registry's host: blobs are often
    served from presigned storage URLs (ECR: S3), which refuse a second credential and must never receive ours."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_NoCredentialsElsewhere)


def _request(
    method: str, url: str, headers: Mapping[str, str], timeout: float, host: str
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=dict(headers))
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, b""
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"registry {host} is unreachable ({reason}): check dockyard.registry.url and the network") from None


def ping(host: str, *, timeout: float = 5.0) -> int:
    """The status of the registry's ``GET /v2/`` (200, or 401 asking for a login: both mean it answers);
    :class:`Unreachable` when nothing answers."""
    status, _, _ = _request("GET", f"{api_base(host)}/v2/", {}, timeout, host)
    return status


def parse_challenge(challenge: str) -> dict[str, str]:
    """``Bearer realm="https://auth",service="x",scope="y"`` -> {"realm": ..., "service": ..., "scope": ...}."""
    _, _, params = challenge.partition(" ")
    return {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', params)}


def bearer_token(challenge: str, basic: str, timeout: float, host: str) -> str:
    """The token flow: GET the realm with service and scope, authenticated with the basic credentials."""
    params = parse_challenge(challenge)
    realm = params.pop("realm", "")
    if not realm:
        raise DockyardError(f"registry {host} asked for a bearer token without a realm: {challenge!r}")
    query = urllib.parse.urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
    request = urllib.request.Request(f"{realm}?{query}" if query else realm, headers={"Authorization": basic})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            data = json.loads(response.read().decode() or "{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise RegistryAuthFailed(f"registry {host} rejected the credentials at {realm}: check the password") from None
        raise DockyardError(f"registry token service {realm} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(f"registry token service {realm} is unreachable ({getattr(exc, 'reason', exc)})") from None
    token = data.get("token") or data.get("access_token")
    if not token:
        raise DockyardError(f"registry token service {realm} returned no token")
    return str(token)
