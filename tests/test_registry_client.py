"""dockyard.core.credentials and dockyard.registry: credentials, `docker login` on stdin, digests over the HTTP
API v2 (Basic and Bearer)."""
from __future__ import annotations

import base64
import http.server
import json
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import free_port
from dockyard.clients.docker import DockerClient, login_command
from dockyard.config import parse_settings
from dockyard.core.credentials import MissingPassword, RegistryCredentials, resolve_credentials
from dockyard.errors import Unreachable
from dockyard.registry import (
    RegistryAuthFailed,
    login,
    parse_challenge,
    remote_digest,
    remote_image_id,
    split_repository,
)
from dockyard.runner import Runner


def settings_for(repository: str, **registry) -> object:
    return parse_settings({"app": "t", "image": {"repository": repository}, "registry": registry,
                           "environments": {"prod": {}}}, root=Path("/tmp"))


# --- pure -----------------------------------------------------------------------------------------------------------


def test_split_repository():
    assert split_repository("127.0.0.1:5000/team/app") == ("127.0.0.1:5000", "team/app")
    assert split_repository("quay.io/org/app") == ("quay.io", "org/app")
    assert split_repository("nginx") == ("registry-1.docker.io", "library/nginx")
    assert split_repository("org/app") == ("registry-1.docker.io", "org/app")


def test_parse_challenge():
    params = parse_challenge('Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a/b:pull"')
    assert params == {"realm": "https://auth.example/token", "service": "reg.example", "scope": "repository:a/b:pull"}


def test_login_command_keeps_the_password_off_argv():
    command = login_command("reg.example:5000", "ci-bot", "hunter2-secret")
    assert command.argv == ("docker", "login", "--username", "ci-bot", "--password-stdin", "reg.example:5000")
    assert command.stdin == "hunter2-secret\n"
    assert "hunter2-secret" not in command.display() and "hunter2-secret" not in repr(command)


def test_credentials_repr_hides_the_password():
    assert "pw-12345" not in repr(RegistryCredentials("r", "u", "pw-12345"))


def test_password_from_environment_then_env_file_then_prompt(monkeypatch):
    settings = settings_for("reg.example/app", username="bot", password_env="REG_PW")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("REG_PW", "from-env")
    assert resolve_credentials(settings, env_values={"REG_PW": "from-file"}).password == "from-env"
    monkeypatch.delenv("REG_PW")
    creds = resolve_credentials(settings, env_values={"REG_PW": "from-file"})
    assert (creds.registry, creds.username, creds.password) == ("reg.example", "bot", "from-file")
    asked = []
    creds = resolve_credentials(settings, prompt=lambda text: asked.append(text) or "typed")
    assert creds.password == "typed" and asked == ["Password for bot@reg.example: "]


def test_never_prompts_under_ci(monkeypatch):
    settings = settings_for("reg.example/app", username="bot", password_env="REG_PW")
    monkeypatch.delenv("REG_PW", raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(MissingPassword) as info:
        resolve_credentials(settings, prompt=lambda text: pytest.fail("prompted under CI"))
    assert "REG_PW" in str(info.value)


def test_missing_username_is_named(monkeypatch):
    monkeypatch.setenv("DOCKYARD_REGISTRY_PASSWORD", "x-password")
    with pytest.raises(MissingPassword) as info:
        resolve_credentials(settings_for("reg.example/app"))
    assert "dockyard.registry.username" in str(info.value)


# --- a real registry ------------------------------------------------------------------------------------------------


@pytest.fixture
def docker_client(engine, tmp_path, monkeypatch) -> DockerClient:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return DockerClient(Runner())


def test_login_to_the_registry(docker_client, registry):
    login(docker_client, RegistryCredentials(registry.host, registry.username, registry.password))


def test_login_with_a_wrong_password_is_refused(docker_client, registry):
    with pytest.raises(RegistryAuthFailed) as info:
        login(docker_client, RegistryCredentials(registry.host, registry.username, "wrong-password-1"))
    assert "rejected the login" in str(info.value) and "wrong-password-1" not in str(info.value)


def test_login_to_an_unreachable_registry(docker_client):
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(Unreachable) as info:
        login(docker_client, RegistryCredentials(host, "someone", "pw-unreachable"))
    assert host in str(info.value) and "pw-unreachable" not in str(info.value)


def tiny_image(ref: str, folder: Path) -> None:
    """A one-small-layer image (FROM scratch): pushes in well under a second."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hello.txt").write_text(f"{ref}\n")
    (folder / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    subprocess.run(["docker", "build", "-q", "-t", ref, str(folder)], check=True, capture_output=True)


def test_remote_digest_of_a_pushed_tag(docker_client, registry, tmp_path):
    creds = RegistryCredentials(registry.host, registry.username, registry.password)
    ref = f"{registry.host}/dockyard-test/registry-client:probe"
    login(docker_client, creds)
    tiny_image(ref, tmp_path / "tiny")
    try:
        subprocess.run(["docker", "push", ref], check=True, capture_output=True)
        digest = remote_digest(creds, f"{registry.host}/dockyard-test/registry-client", "probe")
        assert digest == registry.manifest_digest("dockyard-test/registry-client", "probe")
        image_id = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True,
                                  text=True).stdout.strip()
        assert remote_image_id(creds, f"{registry.host}/dockyard-test/registry-client", "probe") == image_id
        assert remote_digest(creds, f"{registry.host}/dockyard-test/registry-client", "absent") is None
        with pytest.raises(RegistryAuthFailed):
            remote_digest(RegistryCredentials(registry.host, registry.username, "nope-nope"),
                          f"{registry.host}/dockyard-test/registry-client", "probe")
    finally:
        subprocess.run(["docker", "image", "rm", ref], capture_output=True)


# --- the Bearer token flow, against a small real HTTP server --------------------------------------------------------


class TokenRegistry(http.server.BaseHTTPRequestHandler):
    """Answers like Docker Hub: 401 + WWW-Authenticate: Bearer, a token endpoint, then the manifest."""

    token = "tok-123"
    seen: list[str] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/token"):
            expected = "Basic " + base64.b64encode(b"bot:pw-bearer").decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            self.seen.append(self.path)
            body = json.dumps({"token": self.token}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)
            return
        self.do_HEAD()

    def do_HEAD(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            host = self.headers["Host"]
            self.send_response(401)
            self.send_header("WWW-Authenticate",
                             f'Bearer realm="http://{host}/token",service="test",scope="repository:org/app:pull"')
            self.end_headers()
            return
        if not self.path.endswith("/manifests/1.0.0"):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Docker-Content-Digest", "sha256:" + "ab" * 32)
        self.end_headers()


def test_bearer_token_flow():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TokenRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        creds = RegistryCredentials(host, "bot", "pw-bearer")
        assert remote_digest(creds, f"{host}/org/app", "1.0.0") == "sha256:" + "ab" * 32
        assert remote_digest(creds, f"{host}/org/app", "9.9.9") is None
        assert any("scope=repository%3Aorg%2Fapp%3Apull" in p for p in TokenRegistry.seen)
        with pytest.raises(RegistryAuthFailed):
            remote_digest(RegistryCredentials(host, "bot", "wrong"), f"{host}/org/app", "1.0.0")
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_to_another_host_gets_no_registry_credentials():
    """A blob served from presigned storage (ECR: S3) must not receive the registry's Authorization header."""
    import http.server
    import json as _json
    import threading

    from dockyard.registry import RegistryCredentials, remote_image

    seen: dict[str, str | None] = {}

    class Storage(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen["storage"] = self.headers.get("Authorization")
            body = _json.dumps({"config": {"Labels": {"org.opencontainers.image.revision": "abc"}}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    storage = http.server.HTTPServer(("127.0.0.1", 0), Storage)

    class Registry(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.setdefault("registry", self.headers.get("Authorization"))
            if "/manifests/" in self.path:
                body = _json.dumps({"config": {"digest": "sha256:" + "c" * 64}}).encode()
                self.send_response(200)
                self.send_header("Docker-Content-Digest", "sha256:" + "d" * 64)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_response(307)
                self.send_header("Location", f"http://localhost:{storage.server_port}/blob?X-Amz-Signature=x")
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, *args):
            pass

    registry = http.server.HTTPServer(("127.0.0.1", 0), Registry)
    for server in (storage, registry):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"127.0.0.1:{registry.server_port}"
        found = remote_image(RegistryCredentials(host, "user", "pw"), f"{host}/app", "v1")
    finally:
        for server in (storage, registry):
            server.shutdown()
    assert found is not None and found.labels == {"org.opencontainers.image.revision": "abc"}
    assert found.digest == "sha256:" + "d" * 64 and found.image_id == "sha256:" + "c" * 64
    assert seen["registry"].startswith("Basic ") and seen["storage"] is None
