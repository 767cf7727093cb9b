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
    assert cmd.argv[-4:] == ("repo:abc1234-testing", "sh", "-c", "pytest -x")
    assert "/tmp/rep:/reports" in cmd.argv
    assert cmd.env["DOCKYARD_REPORTS_DIR"] == "/reports"


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
    plan, notes = plan_save(entries, {"a:1": "sha256:aaa", "b:2": "sha256:bbb"}, tmp_path)
    assert [s.description for s in plan.steps] == [f"Save b:2 to {entries[1].archive}"]
    assert any("up to date" in n for n in notes) and any("c:3: not on this engine" in n for n in notes)

    plan, notes = plan_load(entries, {"b:2": "sha256:bbb"}, tmp_path)
    assert [s.description for s in plan.steps] == [f"Load a:1 from {entries[0].archive}"]
    assert any("b:2: already on this engine" in n for n in notes)
    assert any("c:3: not cached" in n for n in notes)


def test_tag_globs_become_circleci_regexes():
    assert glob_to_regex("v*") == "/^v.*$/"
    assert glob_to_regex("release-?.x") == r"/^release\-.\.x$/"
