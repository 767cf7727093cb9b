"""`inv ci.test` on the real engine: testing image, redis + mariadb on a private network, real readiness probes."""
from __future__ import annotations

import subprocess
import time

import pytest

from conftest import REPO

SERVICE_IMAGES = ("dockyard-base/redis:bookworm", "dockyard-base/mariadb:bookworm")
PYTHONPATH = {"PYTHONPATH": str(REPO)}


@pytest.fixture
def ci_project(engine, sample_project, tmp_path):
    for image in SERVICE_IMAGES:
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            from conftest import unavailable

            unavailable(f"service image {image} missing (run scripts/base-images.sh --only redis mariadb)")
    sample_project.configure({"dockyard": {"ci": {"reports_dir": str(tmp_path / "reports"),
                                                  "cache_dir": str(tmp_path / "cache")}}})
    sample_project.commit("ci settings")
    yield sample_project
    leftovers(sample_project.app, remove=True)


def leftovers(app: str, *, remove: bool = False) -> list[str]:
    """Containers and networks a ci.test run of ``app`` left behind (removed when asked)."""
    containers = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=dev.dockyard.app={app}",
                                 "--filter", "label=dev.dockyard.ci.run"], capture_output=True, text=True).stdout.split()
    networks = subprocess.run(["docker", "network", "ls", "-q", "--filter", f"label=dev.dockyard.app={app}"],
                              capture_output=True, text=True).stdout.split()
    if remove:
        if containers:
            subprocess.run(["docker", "rm", "-f", "-v", *containers], capture_output=True)
        for network in networks:
            subprocess.run(["docker", "network", "rm", network], capture_output=True)
    return containers + networks


def test_passing_suite_exits_0_and_removes_services(ci_project):
    started = time.monotonic()
    cold = ci_project.inv("ci.test", env=PYTHONPATH)
    cold_s = time.monotonic() - started
    assert cold.returncode == 0, cold.stdout + cold.stderr
    assert "Wait until redis is ready" in cold.stdout and "Wait until mariadb is ready" in cold.stdout
    assert "tests passed; reports in" in cold.stdout
    assert leftovers(ci_project.app) == []
    sha = ci_project.git("rev-parse", "--short=7", "HEAD").stdout.strip()
    tag = f"{ci_project.repository}:{sha}-testing"
    inspected = subprocess.run(["docker", "image", "inspect", "--format", "{{.Config.Env}}", tag],
                               capture_output=True, text=True)
    assert inspected.returncode == 0 and "APP_ENV=testing" in inspected.stdout

    started = time.monotonic()
    warm = ci_project.inv("ci.test", env=PYTHONPATH)
    warm_s = time.monotonic() - started
    assert warm.returncode == 0, warm.stderr
    print(f"\nci.test cold {cold_s:.1f}s, warm (layer cache, same commit) {warm_s:.1f}s")
    assert leftovers(ci_project.app) == []


def test_failing_suite_exits_with_its_code_and_removes_services(ci_project):
    ci_project.configure({"dockyard": {"ci": {"test_command": "python -c 'import sys; sys.exit(3)'"}}})
    result = ci_project.inv("ci.test", env=PYTHONPATH)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1].startswith("dockyard: tests failed (exit 3)")
    assert "Traceback" not in result.stderr
    assert leftovers(ci_project.app) == []


def test_keep_leaves_the_services_running(ci_project):
    ci_project.configure({"dockyard": {"ci": {"services": {"mariadb": {"enabled": False}}, "test_command": "true"}}})
    result = ci_project.inv("ci.test", "--keep", env=PYTHONPATH)
    assert result.returncode == 0, result.stderr
    assert "kept (--keep)" in result.stdout
    left = leftovers(ci_project.app)
    assert len(left) == 2  # the redis container and the network
    leftovers(ci_project.app, remove=True)


def test_service_that_never_gets_ready_fails_cleanly(ci_project):
    ci_project.configure({"dockyard": {"ci": {"ready_timeout": 2, "services": {
        "mariadb": {"enabled": False}, "redis": {"ready": ["redis-cli", "-p", "1", "ping"]}}}}})
    result = ci_project.inv("ci.test", env=PYTHONPATH)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("dockyard: service 'redis' was not ready after 2s")
    assert "Traceback" not in result.stderr
    assert leftovers(ci_project.app) == []


def test_dry_run_prints_the_plan_and_starts_nothing(ci_project):
    result = ci_project.inv("ci.test", "--dry-run", env=PYTHONPATH)
    assert result.returncode == 0, result.stderr
    assert "--build-arg APP_ENV" in result.stdout and "-testing" in result.stdout
    assert "mariadb --protocol=tcp" in result.stdout
    assert "(dry run: nothing was changed)" in result.stdout
    assert leftovers(ci_project.app) == []


def test_a_service_image_from_a_stalled_registry_fails_within_the_stall_timeout(ci_project, registry):
    """The pull of a missing service image is bounded by dockyard.registry.stall_timeout, like every pull."""
    from fixtures.tcp_proxy import tcp_proxy

    with tcp_proxy(registry.host) as proxy:
        proxy.freeze()  # the registry accepts the connection and never answers
        image = f"127.0.0.1:{proxy.port}/dockyard-test/never-pulled:1"
        ci_project.configure({"dockyard": {"registry": {"stall_timeout": 3}, "ci": {"test_command": "true", "services": {
            "mariadb": {"enabled": False}, "redis": {"image": image}}}}})
        started = time.monotonic()
        result = ci_project.inv("ci.test", env=PYTHONPATH, timeout=120)
        took = time.monotonic() - started
    assert result.returncode == 7, (result.returncode, result.stdout, result.stderr)
    line = result.stderr.strip().splitlines()[-1]  # (the echoed commands come before it)
    assert line.startswith("dockyard: "), result.stderr
    assert f"service image {image} is not on this engine and could not be pulled" in line, line
    assert "made no progress for 3s" in line and "dockyard.ci.services.redis.image" in line, line
    assert "Traceback" not in result.stderr
    assert leftovers(ci_project.app) == []
    print(f"\na stalled service pull ended after {took:.1f}s (stall timeout 3s)")
