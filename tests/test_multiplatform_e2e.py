"""A two-platform release (linux/amd64 + linux/arm64) of tests/apps/twin, end to end with real parts.

The engine's builtin BuildKit (Buildx 0.13, `docker` driver) builds each platform into the local engine; `publish`
pushes both and joins them by digest into one index; the registry (Debian's docker-registry, htpasswd) is read here
with plain HTTP, not through dockyard's client. The arm64 image's binary is taken out of the registry's layer and
run under qemu-user-static (Debian), and a staging deploy over real sshd pulls this host's platform by the pinned
index digest.
"""
from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from adopt import adopt, docker, http_get
from conftest import unavailable

BUSYBOX_DIRS = (Path("/var/cache/dockyard/busybox-static"), Path.home() / ".cache/dockyard/busybox-static")
INDEX_TYPES = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
ACCEPT = ", ".join((*INDEX_TYPES, "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.oci.image.manifest.v1+json"))
REVISION = "org.opencontainers.image.revision"
ELF_MACHINE = {0x3E: "x86_64", 0xB7: "aarch64"}


def busybox_binaries() -> dict[str, Path]:
    for directory in BUSYBOX_DIRS:
        found = {arch: directory / arch / "busybox" for arch in ("amd64", "arm64")}
        if all(path.is_file() for path in found.values()):
            return found
    unavailable("static busybox for amd64/arm64 missing (bash scripts/multiarch.sh fetches them)")
    raise AssertionError  # unreachable


class RegistryReader:
    """The registry's HTTP API v2, read the way any client would (Basic auth, Accept for indexes)."""

    def __init__(self, registry, path: str) -> None:
        self.base = f"http://{registry.host}/v2/{path}"
        self.auth = "Basic " + base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()

    def get(self, suffix: str, accept: str = ACCEPT) -> tuple[dict[str, str], bytes]:
        request = urllib.request.Request(f"{self.base}/{suffix}", headers={"Accept": accept, "Authorization": self.auth})
        with urllib.request.urlopen(request, timeout=20) as response:
            return {k.lower(): v for k, v in response.headers.items()}, response.read()

    def manifest(self, reference: str) -> tuple[str, dict]:
        headers, body = self.get(f"manifests/{reference}")
        return headers["docker-content-digest"], json.loads(body)

    def config(self, manifest: dict) -> dict:
        return json.loads(self.get(f"blobs/{manifest['config']['digest']}", "*/*")[1])

    def file_in_layers(self, manifest: dict, name: str) -> bytes:
        for layer in reversed(manifest["layers"]):
            blob = self.get(f"blobs/{layer['digest']}", "*/*")[1]
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as archive:
                try:
                    member = archive.extractfile(name)
                except KeyError:
                    continue
                if member is not None:
                    return member.read()
        raise AssertionError(f"{name} is in no layer")


def platforms_of(index: dict) -> dict[str, str]:
    return {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]
            if m.get("platform", {}).get("os") != "unknown"}


@pytest.fixture
def twin(engine, buildx, registry, sshd_host, tmp_path):
    binaries = busybox_binaries()
    qemu = shutil.which("qemu-aarch64-static")
    if qemu is None:
        unavailable("qemu-user-static not installed (apt-get install qemu-user-static)")
    adopted = adopt("twin", tmp_path / "twin", registry=registry, sshd_host=sshd_host, env_values={})
    (adopted.root / "bin").mkdir()
    for arch, path in binaries.items():
        shutil.copy2(path, adopted.root / "bin" / f"busybox-{arch}")
    try:
        yield adopted, qemu
    finally:
        adopted.cleanup()
        for ref in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", adopted.repository).stdout.split():
            docker("image", "rm", "-f", ref)


def test_two_platform_release_is_one_verified_index_and_staging_pulls_its_own_platform(twin, registry):
    adopted, qemu = twin
    repo = adopted.repository
    path = repo.split("/", 1)[1]
    reader = RegistryReader(registry, path)

    # --- release: one build per platform, the engine's own platform last (its image gets the local tags) --------
    plan = adopted.ok("release", "1.0.0", "--dry-run").stdout
    arm_step = plan.index("for linux/arm64 and tag it")
    amd_step = plan.index("for linux/amd64 (the local tags' platform) and tag it")
    assert arm_step < amd_step, plan
    adopted.ok("release", "1.0.0")
    commit = adopted.project.git("rev-parse", "v1.0.0^{commit}").stdout.strip()
    local = {}
    for platform, arch in (("linux/amd64", "amd64"), ("linux/arm64", "arm64")):
        info = json.loads(docker("image", "inspect", f"{repo}:1.0.0-linux-{arch}", check=True).stdout)[0]
        assert (info["Os"], info["Architecture"]) == ("linux", arch)
        assert info["Config"]["Labels"][REVISION] == commit
        local[platform] = info["Id"]
    assert json.loads(docker("image", "inspect", f"{repo}:1.0.0").stdout)[0]["Id"] == local["linux/amd64"]
    assert local["linux/amd64"] != local["linux/arm64"]

    # --- publish: both pushed, joined by digest, the index checked -----------------------------------------------
    published = adopted.ok("publish", "1.0.0").stdout
    index_digest, index = reader.manifest("1.0.0")
    assert index["mediaType"] in INDEX_TYPES, index
    manifests = platforms_of(index)
    assert sorted(manifests) == ["linux/amd64", "linux/arm64"]
    assert f"verified: {repo}:1.0.0 = {repo}@{index_digest} (linux/amd64, linux/arm64)" in published
    for platform, digest in manifests.items():
        _, manifest = reader.manifest(digest)
        config = reader.config(manifest)
        assert manifest["config"]["digest"] == local[platform]  # the very image built here
        assert config["config"]["Labels"][REVISION] == commit
        assert f"{config['os']}/{config['architecture']}" == platform
    record = json.loads((adopted.root / ".git/dockyard/releases/1.0.0.json").read_text())
    assert record["digest"] == f"{repo}@{index_digest}" and record["platform_images"] == local

    # The arm64 manifest really holds an arm64 program: its busybox, read from the registry's layer, is an AArch64
    # ELF that qemu runs (and that says it is aarch64).
    _, arm_manifest = reader.manifest(manifests["linux/arm64"])
    program = reader.file_in_layers(arm_manifest, "bin/busybox")
    assert program[:4] == b"\x7fELF" and ELF_MACHINE.get(int.from_bytes(program[18:20], "little")) == "aarch64"
    binary = adopted.root.parent / "busybox-from-registry"
    binary.write_bytes(program)
    binary.chmod(0o755)
    ran = subprocess.run([qemu, str(binary), "uname", "-m"], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and ran.stdout.strip() == "aarch64", ran

    # --- releases shows the platforms; publishing again pushes nothing ------------------------------------------
    listed = json.loads(adopted.ok("releases", "--json").stdout)
    assert listed["releases"][0]["platforms"] == ["linux/amd64", "linux/arm64"]
    assert listed["releases"][0]["digest"] == index_digest
    again = adopted.ok("publish", "1.0.0").stdout
    assert "already published" in again and "docker push" not in again
    assert reader.manifest("1.0.0")[0] == index_digest

    # --- a tampered index (arm64 swapped for another image) is refused in one line ------------------------------
    other = adopted.root.parent / "other"
    (other / "bin").mkdir(parents=True)
    shutil.copy2(adopted.root / "bin/busybox-arm64", other / "bin/busybox")
    (other / "Dockerfile").write_text("FROM scratch\nCOPY bin/busybox /bin/busybox\nLABEL tampered=yes\n")
    env = {**os.environ, "DOCKER_CONFIG": str(adopted.root.parent / "docker-config")}
    login = subprocess.run(["docker", "login", "-u", registry.username, "--password-stdin", registry.host],
                           input=registry.password, capture_output=True, text=True, env=env)
    assert login.returncode == 0, login.stderr
    subprocess.run(["docker", "buildx", "build", "--platform", "linux/arm64", "--load", "-t", f"{repo}:evil",
                    str(other)], check=True, capture_output=True, env=env)
    subprocess.run(["docker", "push", f"{repo}:evil"], check=True, capture_output=True, env=env)
    evil_digest, _ = reader.manifest("evil")

    def make_index(*digests: str) -> None:
        subprocess.run(["docker", "buildx", "imagetools", "create", "--tag", f"{repo}:1.0.0",
                        *[f"{repo}@{d}" for d in digests]], check=True, capture_output=True, env=env)

    make_index(manifests["linux/amd64"], evil_digest)
    refused = adopted.project.inv("publish", "1.0.0")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    message = refused.stderr.strip()
    assert "\n" not in message and "a published version never changes" in message, message
    evil_id = json.loads(docker("image", "inspect", f"{repo}:evil").stdout)[0]["Id"]
    assert f"linux/arm64 holds {evil_id[7:19]} there, {local['linux/arm64'][7:19]} here" in message, message
    make_index(manifests["linux/amd64"], manifests["linux/arm64"])  # put it back as it was published
    assert reader.manifest("1.0.0")[0] == index_digest

    # --- staging: the host pulls its own platform (amd64 here) by the pinned index digest -----------------------
    for ref in (f"{repo}:1.0.0", f"{repo}:1.0.0-linux-amd64", f"{repo}:1.0.0-linux-arm64", f"{repo}:evil"):
        docker("image", "rm", "-f", ref)
    adopted.ok("staging.setup")
    deploy = adopted.ok("staging.ssh-deploy", "--version", "1.0.0").stdout
    assert f"pull {repo}@{index_digest} (the registry's 1.0.0) and tag it {repo}:1.0.0" in deploy, deploy
    code, arch = http_get(adopted.url("staging", "/cgi-bin/arch"))
    assert code == 200 and arch.strip() == "x86_64", (code, arch)
    running = [c for c in adopted.containers(f"label=dev.dockyard.ssh.prefix={adopted.staging_prefix}")
               if c["Image"] == f"{repo}:1.0.0"]
    assert running, adopted.staging_containers()
    image = json.loads(docker("image", "inspect", f"{repo}:1.0.0").stdout)[0]
    assert image["Id"] == local["linux/amd64"] and f"{repo}@{index_digest}" in image["RepoDigests"]

    # --- CI's tag job publishes from a machine without the platform images: it checks the registry's index -----
    ci = adopted.ok("publish", "1.0.0").stdout
    assert "already published" in ci and f"verified: {repo}:1.0.0 = {repo}@{index_digest}" in ci, ci
    assert not adopted.secrets_shown()
