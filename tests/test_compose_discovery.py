"""Finding Docker Compose wherever a user installed it, whatever DOCKER_CONFIG says.

The Docker CLI looks for plugins in ``$DOCKER_CONFIG/cli-plugins`` (``~/.docker/cli-plugins`` when unset) and the
system plugin directories. These tests put the real Compose binary (the one ``scripts/setup.sh`` installs) or small
stand-ins that report a version in each of those places, and drive the real Docker CLI and real ``inv`` runs.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import library_path, unavailable
from dockyard.clients import compose as compose_module
from dockyard.clients.compose import SYSTEM_PLUGIN_DIRS, ComposeUnavailable, find_compose
from dockyard.runner import Runner

DOCKER = shutil.which("docker")


def real_compose_binary() -> Path:
    """The Compose v2 binary this machine has (setup.sh puts it in a system plugin directory)."""
    for directory in (*SYSTEM_PLUGIN_DIRS, str(Path.home() / ".docker" / "cli-plugins")):
        candidate = Path(directory, "docker-compose")
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    unavailable("no Compose v2 plugin installed (run scripts/setup.sh)")
    raise AssertionError  # unreachable


def place_compose(dest: Path) -> Path:
    """The real Compose binary at ``dest`` (a hard link where possible: a symlink would point into a hidden dir)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = real_compose_binary()
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)
    return dest


def script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """HOME, DOCKER_CONFIG and PATH of a machine with nothing of this one's Compose: only a docker CLI."""
    if not DOCKER:
        unavailable("no docker CLI on PATH")
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # The real Docker CLI, but blind to this machine's system plugin directories.
    script(bin_dir / "docker", shlex.join(hidden_system_plugins([DOCKER])) + ' "$@"\n')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setattr(compose_module, "_announced", set())
    return tmp_path


def test_a_plugin_in_home_is_found_though_docker_config_hides_it(isolated):
    plugin = place_compose(isolated / "home" / ".docker" / "cli-plugins" / "docker-compose")
    # The Docker CLI itself no longer sees it...
    assert subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0
    # ...dockyard does, and runs it directly.
    install = find_compose(Runner(), system_dirs=())
    assert install.prefix == (str(plugin),)
    assert install.is_v2
    assert "DOCKER_CONFIG" in install.why
    out = Runner().run([*install.prefix, "version"]).stdout
    assert install.version in out


def test_a_plugin_in_docker_config_goes_through_the_docker_cli(isolated):
    plugin = place_compose(isolated / "docker-config" / "cli-plugins" / "docker-compose")
    install = find_compose(Runner(), system_dirs=())
    assert install.prefix == ("docker", "compose")
    assert install.path == str(plugin)
    assert install.is_v2


def test_a_plugin_in_a_system_directory_is_run_when_the_cli_does_not_load_it(isolated):
    system = isolated / "system-plugins"
    place_compose(system / "docker-compose")
    install = find_compose(Runner(), system_dirs=(str(system),))
    # The real CLI does not know this directory, so dockyard runs the binary itself.
    assert install.prefix == (str(system / "docker-compose"),)
    assert install.is_v2


def test_a_standalone_v2_binary_named_docker_compose_is_v2_and_not_announced(isolated, capsys):
    script(isolated / "bin" / "docker-compose", 'echo "2.31.0"\n')
    install = find_compose(Runner(), system_dirs=())
    assert install.prefix == ("docker-compose",)
    assert install.is_v2 and install.version == "2.31.0"
    assert "v1" not in capsys.readouterr().err


def test_v1_is_told_by_its_version_and_announced_once(isolated, capsys):
    script(isolated / "bin" / "docker-compose", 'echo "1.29.2"\n')
    assert find_compose(Runner(), system_dirs=()).prefix == ("docker-compose",)
    install = find_compose(Runner(), system_dirs=())
    assert not install.is_v2
    assert capsys.readouterr().err.count("using the v1 `docker-compose` binary 1.29.2") == 1
    with pytest.raises(ComposeUnavailable, match="compose_command is v2 but the only Compose is v1 1.29.2"):
        find_compose(Runner(), "v2", system_dirs=())


def test_no_compose_anywhere_names_every_place_it_looked(isolated):
    system = isolated / "system-plugins"
    system.mkdir()
    script(isolated / "home" / ".docker" / "cli-plugins" / "docker-compose", "exit 1\n")  # broken: not a Compose
    with pytest.raises(ComposeUnavailable) as caught:
        find_compose(Runner(), system_dirs=(str(system),))
    message = caught.value.message
    assert caught.value.exit_code == 4
    assert "\n" not in message
    for place in ("`docker compose`", str(isolated / "home" / ".docker" / "cli-plugins"), str(system),
                  "docker-compose on PATH", "scripts/setup.sh"):
        assert place in message, message


# --- real inv runs with every system plugin directory hidden --------------------------------------------------


def hidden_system_plugins(argv: list[str]) -> list[str]:
    """``argv`` in a private mount namespace where each system plugin directory is an empty tmpfs."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        unavailable("hiding the system plugin directories needs root and unshare(1)")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        unavailable(f"unshare -m is not permitted here: {probe.stderr.decode().strip()}")
    mounts = "; ".join(f'[ -d {d} ] && mount -t tmpfs none {d}' for d in SYSTEM_PLUGIN_DIRS)
    return ["unshare", "-m", "sh", "-c", f'{mounts}; exec "$@"', "sh", *argv]


def inv_with(project, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        hidden_system_plugins([sys.executable, "-m", "invoke", *args]), cwd=project.root, capture_output=True,
        text=True, timeout=600, stdin=subprocess.DEVNULL,
        env={**env, "PYTHONPATH": library_path()},
    )


def plain_env(tmp_path: Path, with_home_plugin: bool) -> dict[str, str]:
    home = tmp_path / "home"
    if with_home_plugin:
        place_compose(home / ".docker" / "cli-plugins" / "docker-compose")
    home.mkdir(exist_ok=True)
    return {
        "HOME": str(home), "DOCKER_CONFIG": str(tmp_path / "empty-docker-config"), "CI": "true",
        "PATH": f"{Path(DOCKER).parent}{os.pathsep}/usr/bin{os.pathsep}/bin", "LANG": "C.UTF-8",
        "GIT_AUTHOR_NAME": "Compose Tester", "GIT_AUTHOR_EMAIL": "compose@example.invalid",
        "GIT_COMMITTER_NAME": "Compose Tester", "GIT_COMMITTER_EMAIL": "compose@example.invalid",
    }


def test_build_and_release_work_with_compose_only_in_home_and_docker_config_set(engine, sample_project, tmp_path):
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(origin)], check=True)
    sample_project.git("remote", "add", "origin", str(origin))
    sample_project.git("push", "-q", "origin", "main")
    env = plain_env(tmp_path, with_home_plugin=True)

    # Under these conditions the Docker CLI cannot run Compose at all.
    plain = subprocess.run(hidden_system_plugins(["docker", "compose", "version"]), env=env, capture_output=True)
    assert plain.returncode != 0

    built = inv_with(sample_project, env, "image.build", "prod")
    assert built.returncode == 0, built.stdout + built.stderr
    sha = sample_project.git("rev-parse", "--short=7", "HEAD").stdout.strip()
    inspect = subprocess.run(["docker", "image", "inspect", f"{sample_project.repository}:{sha}"],
                             capture_output=True, text=True)
    assert inspect.returncode == 0, inspect.stderr

    released = inv_with(sample_project, env, "release", "1.0.0")
    assert released.returncode == 0, released.stdout + released.stderr
    assert sample_project.git("tag", "--list", "v1.0.0").stdout.strip() == "v1.0.0"
    assert subprocess.run(["docker", "image", "inspect", f"{sample_project.repository}:1.0.0"],
                          capture_output=True).returncode == 0


def test_no_compose_anywhere_is_one_line_and_exit_4(engine, sample_project, tmp_path):
    env = plain_env(tmp_path, with_home_plugin=False)
    result = inv_with(sample_project, env, "image.build", "prod")
    assert result.returncode == 4, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dockyard: Docker Compose not found (looked for `docker compose` (plugins in "
                               f"{tmp_path / 'empty-docker-config' / 'cli-plugins'} and the system directories), ")
    assert str(tmp_path / "home" / ".docker" / "cli-plugins") in lines[0]
    assert "/usr/local/lib/docker/cli-plugins" in lines[0]
    assert "Traceback" not in result.stderr
