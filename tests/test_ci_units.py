"""Pure parts of the CI feature: readiness decisions, cache plans, command shapes, provider helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.ci import commands
from dockyard.ci.cache import archive_name, cached_images, plan_load, plan_save
from dockyard.ci.providers import glob_to_regex
from dockyard.ci.readiness import ProbeOutcome, Readiness, ServiceNotReady
from dockyard.ci.testrun import cache_refs
from dockyard.ci.testrun import testing_tag as image_tag_for_tests
from dockyard.errors import ConfigError


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def readiness(outcomes, running=lambda: True, expected="", timeout=5.0):
    clock = FakeClock()
    answers = iter(outcomes)
    return Readiness("db", lambda: next(answers), running, expected_output=expected, timeout=timeout,
                     interval=1.0, sleep=clock.sleep, clock=clock), clock


def test_readiness_returns_once_the_probe_passes():
    waiter, clock = readiness([ProbeOutcome(False, "refused"), ProbeOutcome(False, ""), ProbeOutcome(True, "1")])
    assert waiter.wait() == 3
    assert clock.sleeps == [1.0, 1.0]


def test_readiness_needs_the_expected_output():
    waiter, _ = readiness([ProbeOutcome(True, "LOADING"), ProbeOutcome(True, "PONG\n")], expected="PONG")
    assert waiter.wait() == 2


def test_readiness_gives_up_at_the_deadline_naming_the_last_answer():
    waiter, clock = readiness([ProbeOutcome(False, "Access denied")] * 100, timeout=3)
    with pytest.raises(ServiceNotReady, match="not ready after 3s.*Access denied"):
        waiter.wait()
    assert clock.now == 3


def test_readiness_fails_fast_when_the_container_stopped():
    waiter, clock = readiness([ProbeOutcome(False, "")] * 10, running=lambda: False)
    with pytest.raises(ServiceNotReady, match="stopped before it was ready"):
        waiter.wait()
    assert clock.sleeps == []


def test_service_command_keeps_values_off_argv():
    cmd = commands.service_run(name="r-db", alias="db", image="mariadb:10.11", network="net",
                               env={"MYSQL_PASSWORD": "hunter22"}, run_id="r", app="shop")
    assert "hunter22" not in " ".join(cmd.argv)
    assert cmd.env == {"MYSQL_PASSWORD": "hunter22"}
    assert cmd.argv[:3] == ("docker", "run", "--detach")
    assert ("--network-alias", "db") == cmd.argv[cmd.argv.index("--network-alias"):][:2]
    assert "--publish" not in cmd.argv


def test_test_run_command_mounts_reports_and_runs_a_shell_line():
    cmd = commands.test_run(name="r-tests", image="repo:abc1234-testing", network="net", command="pytest -x",
                            env={"A": "1"}, run_id="r", app="shop", reports=Path("/tmp/rep"))
    # the line runs in sh instead of the image's ENTRYPOINT (dockyard.command_entrypoint: bypass)
    assert cmd.argv[-5:] == ("--entrypoint", "sh", "repo:abc1234-testing", "-c", "pytest -x")
    assert "/tmp/rep:/reports" in cmd.argv
    assert cmd.env["DOCKYARD_REPORTS_DIR"] == "/reports"
    through = commands.test_run(name="r-tests", image="repo:abc1234-testing", network="net", command="pytest -x",
                                env={}, run_id="r", app="shop", entrypoint="apply")
    assert through.argv[-4:] == ("repo:abc1234-testing", "sh", "-c", "pytest -x")


def test_testing_tag_and_cache_refs():
    assert image_tag_for_tests("reg/shop", "abc1234", "testing") == "reg/shop:abc1234-testing"
    assert cache_refs("reg/shop", ("latest", "{branch}"), "feature/x") == ("reg/shop:latest", "reg/shop:feature-x")
    assert cache_refs("reg/shop", ("{branch}",), "") == ()


def test_archive_names_are_file_safe():
    assert archive_name("dockyard-base/redis:bookworm") == "dockyard-base_redis_bookworm"
    assert archive_name("127.0.0.1:5000/a/b:1.2") == "127.0.0.1_5000_a_b_1.2"


def test_cache_plans_skip_what_is_there(tmp_path: Path):
    entries = cached_images(["a:1", "b:2", "c:3"], tmp_path)
    entries[0].archive.write_text("x")
    entries[0].id_file.write_text("sha256:aaa\n")
    plan, notes = plan_save(entries, {"a:1": "sha256:aaa", "b:2": "sha256:bbb"}, lambda e: None, tmp_path)
    assert [s.description for s in plan.steps] == [f"Save b:2 to {entries[1].archive}"]
    assert any("up to date" in n for n in notes) and any("c:3: not on this engine" in n for n in notes)

    plan, notes = plan_load(entries, {"b:2": "sha256:bbb"}, lambda e: None, tmp_path)
    assert [s.description for s in plan.steps] == [f"Load a:1 from {entries[0].archive}"]
    assert any("b:2: already on this engine" in n for n in notes)
    assert any("c:3: not cached" in n for n in notes)


def test_tag_globs_become_circleci_regexes():
    assert glob_to_regex("v*") == "/^v.*$/"
    assert glob_to_regex("release-?.x") == r"/^release\-.\.x$/"


def _ci_settings(tmp_path, ci: dict, compose: str | None = "docker/compose.yml"):
    from conftest import deep_merge

    from dockyard.config import defaults, parse_settings

    envs = {"dev": {"compose": compose}} if compose else {"dev": {}}
    return parse_settings(deep_merge(defaults(), {"app": "shop", "ci": ci, "environments": envs}), root=tmp_path)


def _two_stage_project(tmp_path):
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker/compose.yml").write_text("services: {web: {build: {context: .., target: runtime}}}\n")
    (tmp_path / "Dockerfile").write_text("ARG BASE\nFROM ${BASE} AS runtime\nARG APP_VERSION\nFROM runtime AS test\n")


def test_the_testing_build_comes_from_the_compose_file(tmp_path):
    from dockyard.ci.testrun import testing_build, testing_build_args
    from dockyard.images import BuildSpec

    _two_stage_project(tmp_path)
    settings = _ci_settings(tmp_path, {})
    ci = settings.ci
    assert (ci.environment, ci.dockerfile, ci.context, ci.services, dict(ci.env)) == ("dev", None, None, (), {})
    from_compose = BuildSpec(context=tmp_path, dockerfile=None, args={"BASE": "debian"}, target="runtime")
    spec = testing_build(ci, from_compose, tmp_path)
    assert (spec.context, spec.target) == (tmp_path, "runtime")
    # APP_ENV is passed only to a Dockerfile that declares it
    args = testing_build_args(spec, {"APP_VERSION": "1", "NGINX_IMAGE": "n"}, {"APP_ENV": "testing"})
    assert args == {"BASE": "debian", "APP_VERSION": "1"}
    assert testing_build(_ci_settings(tmp_path, {"target": "test"}).ci, from_compose, tmp_path).target == "test"


def test_the_testing_build_needs_a_dockerfile_it_can_find(tmp_path):
    from dockyard.ci.testrun import testing_build
    from dockyard.images import BuildSpec

    _two_stage_project(tmp_path)
    with pytest.raises(ConfigError, match=r"dockyard.ci.dockerfile: not set, and dockyard.environments.prod has no"):
        testing_build(_ci_settings(tmp_path, {}, compose=None).ci, None, tmp_path)
    missing = BuildSpec(context=tmp_path, dockerfile=tmp_path / "docker/app/Dockerfile")
    with pytest.raises(ConfigError, match=r"dockyard.environments.dev.compose \(its app service's build section\): "):
        testing_build(_ci_settings(tmp_path, {}).ci, missing, tmp_path)
