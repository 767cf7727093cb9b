"""``image.cache`` (none | inline | registry): the layer cache builds import and export.

Units: the setting is validated naming the key and the file, the modes become the right ``--cache-to`` /
``--cache-from`` options, registry mode on a builder whose driver cannot export a cache (the engine's builtin
BuildKit, Buildx's ``docker`` driver) is refused in one line before anything is built, and ``image.builder`` may
name a Buildx builder. End to end (engine, Buildx, the htpasswd registry): a cold build is pushed, the local build
cache is dropped, and a code-only change builds warm from the cache the registry holds (CACHED dependency step).
"""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import private_docker_config, remove_test_artifacts
from minimal_app import make_minimal_project

from dockyard.clients.buildx import (BuildxInstall, builder_driver, cache_arguments, check_cache_driver,
                                     choose_builder)
from dockyard.clients.docker import build_command
from dockyard.config import parse_settings
from dockyard.errors import ConfigError

BUILDX = BuildxInstall(("docker", "buildx"), "0.13.1", "docker buildx", "plugin")


def settings_with(image: dict, root: Path):
    return parse_settings({"app": "shop", "image": {"repository": "r.example/shop", **image},
                           "environments": {"prod": {}}}, root=root)


def test_image_cache_defaults_to_none_and_is_validated_naming_the_key(tmp_path):
    assert settings_with({}, tmp_path).image_cache == "none"
    assert settings_with({"cache": "registry"}, tmp_path).image_cache == "registry"
    with pytest.raises(ConfigError, match=r"^dockyard\.image\.cache: expected one of 'none', 'inline', 'registry', "
                                          r"got 'gha'"):
        settings_with({"cache": "gha"}, tmp_path)
    with pytest.raises(ConfigError, match=r"^dockyard\.image\.cache: image\.cache: inline needs BuildKit, and "
                                          r"image\.builder is legacy"):
        settings_with({"cache": "inline", "builder": "legacy"}, tmp_path)


def test_image_builder_may_name_a_buildx_builder(tmp_path):
    assert settings_with({"builder": "cache-builder"}, tmp_path).builder == "cache-builder"
    with pytest.raises(ConfigError, match=r"^dockyard\.image\.builder: expected auto, buildkit, legacy or the name "
                                          r"of a Buildx builder"):
        settings_with({"builder": "no such!"}, tmp_path)
    named = choose_builder("cache-builder", BUILDX)
    assert named.prefix == ("docker", "buildx", "build", "--builder", "cache-builder", "--load")
    assert named.name == "cache-builder" and named.is_buildkit
    with pytest.raises(ConfigError, match=r"^dockyard\.image\.builder: cache-builder, but Docker Buildx is not "
                                          r"installed"):
        choose_builder("cache-builder", None)


def test_cache_modes_become_cache_options():
    assert cache_arguments("none", "r/shop", ("r/shop:prod",)) == ()
    assert cache_arguments("inline", "r/shop", ("r/shop:prod",)) == (
        "--cache-to", "type=inline", "--cache-from", "r/shop:prod")
    assert cache_arguments("registry", "127.0.0.1:5000/shop") == (
        "--cache-to", "type=registry,ref=127.0.0.1:5000/shop:buildcache,mode=max",
        "--cache-from", "type=registry,ref=127.0.0.1:5000/shop:buildcache")


def test_build_command_uses_the_cache_options_in_place_of_the_default_inline_export(tmp_path):
    builder = choose_builder("auto", BUILDX)
    registry = build_command(context=tmp_path, dockerfile=None, tags=("r:dev",), builder=builder,
                             cache=cache_arguments("registry", "r"))
    assert registry.argv == ("docker", "buildx", "build", "--load", "--tag", "r:dev",
                             "--cache-to", "type=registry,ref=r:buildcache,mode=max",
                             "--cache-from", "type=registry,ref=r:buildcache", str(tmp_path))
    inline = build_command(context=tmp_path, dockerfile=None, tags=("r:dev",), builder=builder,
                           cache=cache_arguments("inline", "r", ("r:dev",)))
    assert inline.argv.count("--cache-to") == 1 and inline.argv[-5:-1] == (
        "--cache-to", "type=inline", "--cache-from", "r:dev")
    with pytest.raises(ConfigError, match=r"^dockyard\.image\.cache: .*legacy builder"):
        build_command(context=tmp_path, dockerfile=None, tags=("r:dev",), builder=choose_builder("legacy", None),
                      cache=("--cache-to", "type=inline"))


@pytest.mark.parametrize("driver", ["docker", ""])
def test_registry_cache_on_a_driver_that_cannot_export_it_is_refused_in_one_line(driver):
    with pytest.raises(ConfigError) as refused:
        check_cache_driver("registry", choose_builder("auto", BUILDX), driver, origin="invoke.yaml")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("dockyard.image.cache: registry needs a Buildx builder that exports a cache to a "
                              "registry, but the current Buildx builder has ")
    assert "(set in invoke.yaml)" in message and "docker buildx create" in message
    assert "set image.builder:" in message and "or set image.cache: inline" in message
    for ok in ("docker-container", "remote"):
        check_cache_driver("registry", choose_builder("auto", BUILDX), ok)
    check_cache_driver("inline", choose_builder("auto", BUILDX), "docker")


def test_builder_driver_reads_buildx_inspect():
    class Runner:
        def __init__(self):
            self.argv = None

        def run(self, argv, **_):
            self.argv = argv
            return _Result(
                "Name:   cache-builder\nDriver: remote\n\nNodes:\nName: cache-builder0\n")

    runner = Runner()
    assert builder_driver(runner, choose_builder("cache-builder", BUILDX)) == "remote"
    assert runner.argv == ["docker", "buildx", "inspect", "cache-builder"]
    assert builder_driver(runner, choose_builder("legacy", None)) == ""


class _Result:
    def __init__(self, stdout: str, ok: bool = True):
        self.stdout, self.ok = stdout, ok


# --- end to end -------------------------------------------------------------------------------------------------

CACHE_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
WORKDIR /srv
# The dependency install stand-in: slow, and unique to this test ({nonce}) so no earlier run's cache has it.
RUN echo deps {nonce} > /srv/deps.txt && sleep 6
COPY site/ /srv/
ENTRYPOINT ["python3"]
CMD ["-m", "http.server", "8000"]
"""


def test_registry_mode_on_the_engines_builtin_buildkit_refuses_before_building(tmp_path, engine, buildx):
    project = make_minimal_project(tmp_path / "project")
    project.configure({"dockyard": {"image": {"cache": "registry"}}})
    project.commit("registry cache")
    try:
        driver = builder_driver(_LocalRunner(), choose_builder("auto", buildx))
        if driver in ("docker-container", "remote", "kubernetes"):
            pytest.skip(f"the current Buildx builder has the {driver} driver, which exports a registry cache")
        result = project.inv("image.build", "dev")
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("dockyard: dockyard.image.cache: registry needs a Buildx builder"), lines
        assert "Building" not in result.stdout
    finally:
        remove_test_artifacts(project.app)


def drop_build_cache(marker: str) -> None:
    """Remove the local build-cache records of the steps whose description has ``marker`` (this test's own), by
    id: a whole `docker builder prune` on a shared engine races other builds (dockerd 20.10 can then leave a record
    whose snapshot is gone: "failed to prepare ... committed: no such file or directory")."""
    listing = subprocess.run(["docker", "buildx", "du", "--verbose"], capture_output=True, text=True, timeout=120)
    ids, current = [], ""
    for line in listing.stdout.splitlines():
        key, _, value = line.partition(":")
        if key == "ID":
            current = value.strip()
        elif key == "Description" and marker in value and current:
            ids.append(current)
    assert ids, f"no build-cache record mentions {marker}: {listing.stdout[-2000:]}"
    for record in ids:
        subprocess.run(["docker", "builder", "prune", "-af", "--filter", f"id={record}"], capture_output=True,
                       timeout=120, check=True)


class _LocalRunner:
    def run(self, argv, **_):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return _Result(done.stdout, done.returncode == 0)


def test_inline_cache_warm_build_from_the_registry_hits_the_dependency_step(tmp_path, engine, buildx, registry):
    """Cold build, pushed as the environment's image; the local image and build cache go; a code-only change then
    builds with --cache-from the registry's image and its dependency step is CACHED."""
    nonce = uuid.uuid4().hex
    project = make_minimal_project(tmp_path / "project", dockerfile=CACHE_DOCKERFILE.replace("{nonce}", nonce))
    project.configure({"dockyard": {"image": {"repository": registry.repository(f"dockyard-test/{project.app}"),
                                              "cache": "inline"},
                                    "registry": {"username": registry.username}}})
    project.commit("inline cache")
    config = private_docker_config(tmp_path / "docker-config")
    env = {"DOCKER_CONFIG": config, "DOCKYARD_REGISTRY_PASSWORD": registry.password}
    docker = ["docker", "--config", config]
    ref = f"{project.repository}:dev"
    try:
        login = subprocess.run([*docker, "login", "-u", registry.username, "--password-stdin", registry.host],
                               input=registry.password, capture_output=True, text=True, timeout=60)
        assert login.returncode == 0, login.stderr
        cold = project.inv("image.build", "dev", env=env)
        output = cold.stdout + cold.stderr
        assert cold.returncode == 0, output
        # The registry has no image to import yet: it is not asked for (Buildx would print "ERROR: ... not found").
        assert "--cache-to type=inline" in output and f"--cache-from {ref}" not in output
        assert f"no cache image {ref} in the registry yet" in output and "ERROR" not in output
        pushed = subprocess.run([*docker, "push", ref], capture_output=True, text=True, timeout=300)
        assert pushed.returncode == 0, pushed.stderr
        remove_test_artifacts(project.app)  # the local images of the app
        drop_build_cache(nonce)

        (project.root / "site" / "index.html").write_text("<p>a code-only change</p>\n")
        project.commit("code only")
        warm = project.inv("image.build", "dev", env=env)
        output = warm.stdout + warm.stderr
        assert warm.returncode == 0, output
        assert f"--cache-from {ref}" in output and f"importing cache manifest from {ref}" in output
        step = next(line.split()[0] for line in output.splitlines() if "RUN echo deps" in line)  # "#9"
        assert f"{step} CACHED" in output.splitlines(), output
        assert "ERROR" not in output
    finally:
        remove_test_artifacts(project.app)


def test_image_platforms_is_validated(tmp_path):
    assert settings_with({}, tmp_path).image_platforms == ()
    assert settings_with({"platforms": ["linux/arm64"]}, tmp_path).image_platforms == ("linux/arm64",)
    with pytest.raises(ConfigError, match=r"^dockyard\.image\.platforms: expected os/arch\[/variant\] entries"):
        settings_with({"platforms": ["amd64"]}, tmp_path)
    both = settings_with({"platforms": ["linux/amd64", "linux/arm64", "linux/amd64"]}, tmp_path)
    assert both.image_platforms == ("linux/amd64", "linux/arm64")  # a multi-platform release (test_multiplatform_e2e)
    builder = choose_builder("auto", BUILDX)
    one = build_command(context=tmp_path, dockerfile=None, tags=("r:dev",), builder=builder, platform="linux/arm64")
    assert one.argv[-5:-1] == ("--platform", "linux/arm64", "--cache-to", "type=inline")
    with pytest.raises(ConfigError, match=r"^dockyard\.image\.platforms: building for linux/arm64 needs BuildKit"):
        build_command(context=tmp_path, dockerfile=None, tags=("r:dev",), builder=choose_builder("legacy", None),
                      platform="linux/arm64")


def test_doctor_warns_of_registry_cache_on_the_builtin_buildkit(tmp_path, engine, buildx):
    driver = builder_driver(_LocalRunner(), choose_builder("auto", buildx))
    if driver in ("docker-container", "remote", "kubernetes"):
        pytest.skip(f"the current Buildx builder has the {driver} driver, which exports a registry cache")
    project = make_minimal_project(tmp_path / "project")
    project.configure({"dockyard": {"image": {"cache": "registry"}}})
    project.commit("registry cache")
    result = project.inv("doctor", "--no-aws", "--no-ssh", "--no-registry")
    line = next(line for line in result.stdout.splitlines() if "image builder" in line)
    assert "image.cache: registry needs a Buildx builder" in line, result.stdout
    assert "docker buildx create" in result.stdout
