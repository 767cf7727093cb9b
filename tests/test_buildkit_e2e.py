"""BuildKit builds (``image.builder``) and build secrets (``image.build_secrets``), against the real engine.

Under BuildKit a Dockerfile may use ``RUN --mount=type=cache`` and ``--mount=type=secret``; a secret reaches the
``RUN`` that mounts it and nothing else: not the output, not ``docker history``, not any file of any layer. The
legacy builder still builds when asked (``image.builder: legacy``) and refuses build secrets in one line.
"""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from conftest import remove_test_artifacts
from minimal_app import make_minimal_project

from dockyard.clients.buildx import BuildxInstall, choose_builder
from dockyard.clients.docker import build_command
from dockyard.config import parse_settings
from dockyard.errors import ConfigError

SECRET_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
WORKDIR /srv
RUN --mount=type=cache,target=/var/cache/dy echo warm >> /var/cache/dy/runs && wc -l < /var/cache/dy/runs > /srv/runs
# The secret's hash proves the RUN read it; the hash is not the secret. BuildKit's cache key leaves secrets out, so
# the step is made unique per test ({nonce}), or it would come from an earlier run's cache.
RUN --mount=type=secret,id=token echo {nonce} > /dev/null && sha256sum /run/secrets/token | cut -c1-64 > /srv/token.sha256
COPY site/ /srv/
ENTRYPOINT ["python3"]
CMD ["-m", "http.server", "8000"]
"""


@pytest.fixture
def secret_project(tmp_path, engine, buildx):
    project = make_minimal_project(tmp_path / "project",
                                   dockerfile=SECRET_DOCKERFILE.replace("{nonce}", uuid.uuid4().hex))
    project.configure({"dockyard": {"image": {"build_secrets": [{"id": "token", "env": "DY_TEST_BUILD_TOKEN"}]}}})
    project.commit("build secret")
    yield project
    remove_test_artifacts(project.app)


def image_ref(project) -> str:
    return f"{project.repository}:dev"


def layer_files(image: str) -> dict[str, bytes]:
    """Every file of the image as ``docker save`` writes it: each layer's files, the config, the manifest."""
    archive = subprocess.run(["docker", "save", image], capture_output=True, timeout=120, check=True).stdout
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()
            files[member.name] = data
            if member.name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for entry in layer.getmembers():
                        if entry.isfile():
                            files[f"{member.name}:{entry.name}"] = layer.extractfile(entry).read()
    return files


def test_buildkit_build_uses_the_secret_and_keeps_it_out_of_every_layer(secret_project):
    token = f"tok-{uuid.uuid4().hex}"
    result = secret_project.inv("image.build", "dev", env={"DY_TEST_BUILD_TOKEN": token})
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "(buildkit)" in output and " build --load " in output
    assert "--secret id=token,env=DY_TEST_BUILD_TOKEN" in output
    assert token not in output

    ref = image_ref(secret_project)
    read = subprocess.run(["docker", "run", "--rm", "--entrypoint", "cat", ref, "/srv/token.sha256", "/srv/runs"],
                          capture_output=True, text=True, timeout=60)
    digest, runs = read.stdout.split()
    assert digest == hashlib.sha256(token.encode()).hexdigest()  # the RUN read the secret
    assert runs.isdigit()  # the RUN with the cache mount ran

    history = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", ref],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    assert "sha256sum /run/secrets/token" in history and token not in history
    files = layer_files(ref)
    assert any(name.endswith("srv/token.sha256") for name in files)
    assert not [name for name, data in files.items() if token.encode() in data]
    inspect = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True, timeout=60).stdout
    labels = json.loads(inspect)[0]["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == secret_project.git("rev-parse", "HEAD").stdout.strip()
    assert token not in inspect
    # The inline cache metadata a later `--cache-from` of this image (pushed) needs is in its config.
    assert any(b"moby.buildkit.cache.v0" in data for name, data in files.items() if name.endswith(".json"))


def test_a_secret_whose_variable_is_unset_is_refused_before_building(secret_project):
    result = secret_project.inv("image.build", "dev", env={"DY_TEST_BUILD_TOKEN": ""})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "dockyard: dockyard.image.build_secrets[1]: secret 'token' is read from the environment variable "
        "DY_TEST_BUILD_TOKEN, which is not set: export DY_TEST_BUILD_TOKEN before building"]
    assert "Traceback" not in result.stdout + result.stderr
    assert subprocess.run(["docker", "image", "inspect", image_ref(secret_project)],
                          capture_output=True).returncode != 0


def test_legacy_builder_refuses_build_secrets_naming_image_builder(secret_project):
    secret_project.configure({"dockyard": {"image": {"builder": "legacy"}}})
    result = secret_project.inv("image.build", "dev", env={"DY_TEST_BUILD_TOKEN": "x" * 12})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dockyard: dockyard.image.build_secrets: ")
    assert "image.builder is legacy" in lines[0] and "invoke.yaml" in lines[0]


def test_legacy_and_buildkit_builds_have_the_same_tags_and_labels(tmp_path, engine, buildx):
    project = make_minimal_project(tmp_path / "project")
    project.configure({"dockyard": {"image": {"builder": "legacy"}}})
    sha = project.commit("legacy")
    ref = f"{project.repository}:dev"

    def built() -> dict:
        return json.loads(subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True,
                                         timeout=60).stdout)[0]

    try:
        result = project.inv("image.build", "dev")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "(legacy)" in result.stdout
        assert "Successfully built" in result.stdout  # the legacy builder's own output, though Buildx is installed
        legacy = built()
        assert sorted(legacy["RepoTags"]) == sorted([f"{project.repository}:{sha[:7]}", ref])  # dev is the release env
        assert legacy["Config"]["Labels"]["org.opencontainers.image.revision"] == sha
        doctor = project.inv("doctor", "--no-aws", "--no-ssh", "--no-registry")
        assert "legacy builder (docker build; image.builder: legacy)" in doctor.stdout

        project.configure({"dockyard": {"image": {"builder": "buildkit"}}})
        project.commit("buildkit")
        sha = project.git("rev-parse", "HEAD").stdout.strip()
        result = project.inv("image.build", "dev")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "(buildkit)" in result.stdout
        buildkit = built()
        assert sorted(buildkit["RepoTags"]) == sorted([f"{project.repository}:{sha[:7]}", ref])
        assert buildkit["Config"]["Labels"]["org.opencontainers.image.revision"] == sha
        assert sorted(buildkit["Config"]["Labels"]) == sorted(legacy["Config"]["Labels"])
        assert buildkit["Config"]["Entrypoint"] == legacy["Config"]["Entrypoint"] == ["python3"]
    finally:
        remove_test_artifacts(project.app)


def test_doctor_reports_buildkit_and_buildx_version(tmp_path, engine, buildx):
    project = make_minimal_project(tmp_path / "project")
    result = project.inv("doctor", "--no-aws", "--no-ssh", "--no-registry")
    row = next(line for line in result.stdout.splitlines() if line.startswith("image builder"))
    assert "OK" in row and f"Buildx {buildx.version}" in row and "engine BuildKit v" in row


# --- the pure parts: the build command and the settings ----------------------------------------------------------


def settings_with(image: dict, root: Path):
    return parse_settings({"app": "shop", "image": image, "environments": {"prod": {}}}, root=root)


def test_image_builder_is_validated_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^dockyard\.image\.builder: expected auto, buildkit, legacy or the name "
                                          r"of a Buildx builder \(`docker buildx ls`\), got 'kan iko'"):
        settings_with({"builder": "kan iko"}, tmp_path)


@pytest.mark.parametrize("entry, problem", [
    ({"id": "token"}, r"build_secrets\[1\]\.id: secret 'token' needs exactly one source"),
    ({"id": "token", "env": "A", "src": "f"}, r"build_secrets\[1\]\.id: secret 'token' needs exactly one source"),
    ({"id": "to ken", "env": "A"}, r"build_secrets\[1\]\.id: expected letters"),
    ({"id": "token", "env": "NOT-A-NAME"}, r"build_secrets\[1\]\.env: expected an environment variable name"),
    ({"id": "token", "value": "x"}, r"build_secrets\[1\]\.value: unknown setting"),
    ("token", r"build_secrets\[1\]: expected a mapping"),
])
def test_build_secrets_are_validated_naming_the_entry(tmp_path, entry, problem):
    with pytest.raises(ConfigError, match=r"^dockyard\.image\." + problem):
        settings_with({"build_secrets": [entry]}, tmp_path)


def test_build_secrets_become_secret_options_never_build_args(tmp_path):
    settings = settings_with({"build_secrets": [{"id": "token", "env": "NPM_TOKEN"},
                                                {"id": "netrc", "src": "secrets/netrc"}]}, tmp_path)
    builder = choose_builder("auto", BuildxInstall(("docker", "buildx"), "0.13.1", "docker buildx", "plugin"))
    cmd = build_command(context=tmp_path, dockerfile=None, tags=("r:dev",), build_args={"BASE": "b"},
                        builder=builder, secrets=[s.argument for s in settings.build_secrets])
    assert cmd.argv == ("docker", "buildx", "build", "--load", "--tag", "r:dev", "--build-arg", "BASE",
                        "--secret", "id=token,env=NPM_TOKEN", "--secret", f"id=netrc,src={tmp_path}/secrets/netrc",
                        "--cache-to", "type=inline", str(tmp_path))
    assert cmd.env == {"BASE": "b"}
    legacy = build_command(context=tmp_path, dockerfile=None, tags=("r:dev",), builder=choose_builder("legacy", None))
    assert legacy.argv == ("docker", "build", "--tag", "r:dev", str(tmp_path))
    assert legacy.env == {"DOCKER_BUILDKIT": "0"}  # a Docker CLI with Buildx would otherwise build with BuildKit


def test_buildkit_without_buildx_is_refused_and_auto_falls_back(tmp_path):
    with pytest.raises(ConfigError, match=r"^dockyard\.image\.builder: buildkit, but Docker Buildx is not installed "
                                          r"\(set in invoke\.yaml\): run `bash scripts/setup.sh`"):
        choose_builder("buildkit", None, origin="invoke.yaml")
    assert choose_builder("auto", None).kind == "legacy"
    with pytest.raises(ConfigError, match=r"image\.builder is legacy"):
        settings_with({"builder": "legacy", "build_secrets": [{"id": "t", "env": "T"}]}, tmp_path)


def test_setup_installs_buildx_once(buildx, tmp_path):
    """scripts/buildx.sh (run by setup.sh) sees the installed Buildx and downloads nothing: quick, and says so."""
    import time

    started = time.monotonic()
    result = subprocess.run(["bash", "scripts/buildx.sh", str(tmp_path / "plugins")], capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert "(already installed)" in result.stdout and buildx.version in result.stdout
    assert time.monotonic() - started < 10
    assert not (tmp_path / "plugins").exists()


def test_ci_test_cache_from_reads_the_inline_cache_of_a_pushed_buildkit_image(tmp_path, engine, buildx, registry):
    """Under BuildKit, --cache-from only reuses images that carry an inline cache: the images dockyard pushes do, and
    ci.test imports the cache of the one it pulls."""
    from conftest import private_docker_config

    project = make_minimal_project(tmp_path / "project")
    project.configure({"dockyard": {
        "image": {"repository": registry.repository(f"dockyard-test/{project.app}")},
        "registry": {"username": registry.username},
        "ci": {"test_command": "python3 -c 'print(6 * 7)'", "reports_dir": str(tmp_path / "reports")}}})
    sha = project.commit("registry")
    env = {"DOCKER_CONFIG": private_docker_config(tmp_path / "docker-config"),
           "DOCKYARD_REGISTRY_PASSWORD": registry.password}
    pushed = f"{project.repository}:{sha[:7]}"
    try:
        result = project.inv("image.push", "dev", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "(buildkit)" in result.stdout
        subprocess.run(["docker", "image", "rm", pushed], capture_output=True, timeout=60)  # ci.test must pull it

        project.configure({"dockyard": {"ci": {"cache_from": [sha[:7]]}}})
        project.commit("cache from the pushed image")
        result = project.inv("ci.test", env=env)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert f"cache images: {pushed}" in output
        assert f"importing cache manifest from {pushed}" in output
        assert "ERROR" not in output
        files = layer_files(pushed)  # as pulled from the registry
        assert any(b"moby.buildkit.cache.v0" in data for name, data in files.items() if name.endswith(".json"))
    finally:
        remove_test_artifacts(project.app)
