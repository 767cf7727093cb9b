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


# --- inv lines bound to the project's tasks ------------------------------------------------------------------------

from invoke import Collection, task  # noqa: E402

from dockyard.ci.invocations import Placeholder, bind  # noqa: E402
from dockyard.errors import ConfigError  # noqa: E402

VERSION = {"version": Placeholder("version", "DOCKYARD_VERSION", "0.0.0")}


@task
def _deploy(c, version="", env="prod", dry_run=False):
    """EB deploy: version is a flag."""


@task
def _publish(c, version, latest=False):
    """Publish: version is positional."""


@task
def _push(c, env):
    """image.push ENV."""


def collection() -> Collection:
    ns = Collection()
    ns.add_task(_deploy, name="deploy")
    ns.add_task(_publish, name="publish")
    image = Collection("image")
    image.add_task(_push, name="push")
    ns.add_collection(image)
    staging = Collection("staging")
    staging.add_task(_deploy, name="ssh-deploy")
    ns.add_collection(staging)
    return ns


def bound(entry: str, key: str = "release_tasks") -> str:
    return bind(entry, key, collection(), VERSION, ["dev", "staging", "prod"]).shell()


def test_version_goes_where_the_task_takes_it():
    assert bound("deploy {version}") == 'inv deploy --version "$DOCKYARD_VERSION"'
    assert bound("publish {version}") == 'inv publish "$DOCKYARD_VERSION"'
    assert bound("publish {version} --latest") == 'inv publish "$DOCKYARD_VERSION" --latest'
    assert bound("deploy -e staging {version}") == 'inv deploy --env staging --version "$DOCKYARD_VERSION"'


def test_the_environments_a_line_acts_on():
    ns = collection()
    envs = ["dev", "staging", "prod"]
    assert bind("deploy {version}", "release_tasks", ns, VERSION, envs).env_values == ("prod",)  # --env default
    assert bind("deploy --env staging", "release_tasks", ns, VERSION, envs).env_values == ("staging",)
    assert bind("image.push staging", "staging_tasks", ns, {}, envs).env_values == ("staging",)
    assert bind("staging.ssh-deploy", "staging_tasks", ns, {}, envs).env_values == ("staging", "prod")


@pytest.mark.parametrize("entry, message", [
    ("publish", "`inv publish` would fail in CI: 'publish' did not receive required positional arguments: 'version'"),
    ("deploy 0.1.1", "`inv deploy 0.1.1` would fail in CI: No idea what '0.1.1' is!"),
    ("deploy {version} --environment prod", ("task 'deploy' has no flag --environment (its arguments: --version "
                                             "--env --dry-run)")),
    ("deploy {version} --env", "--env needs a value"),
    ("image.push {version}", "task 'image.push' takes no 'version' to put {version} in (its arguments: ENV)"),
    ("publish {vers}", "unknown placeholder {vers}; release_tasks may use {version}"),
    ("deploy v{version}", "a placeholder stands alone as a word"),
    ("deploi {version}", "no task 'deploi' in this project"),
    ("publish {version} deploy", "would run 2 tasks (publish, deploy); put each task in its own entry"),
])
def test_lines_inv_would_refuse_are_refused(entry, message):
    with pytest.raises(ConfigError) as raised:
        bound(entry)
    assert raised.value.message.startswith("dockyard.ci.release_tasks: ") and message in raised.value.message


def test_staging_lines_have_no_version_placeholder():
    with pytest.raises(ConfigError, match="staging_tasks may use no placeholders"):
        bind("staging.ssh-deploy {version}", "staging_tasks", collection(), {}, [])


def test_the_generated_lines_of_this_repository_parse_with_its_own_collection():
    import dockyard

    ns = dockyard.namespace(Path(__file__).resolve().parent.parent)
    envs = ["dev", "staging", "prod"]
    assert bind("deploy {version}", "release_tasks", ns, VERSION, envs).shell() == \
        'inv deploy --version "$DOCKYARD_VERSION"'
    assert bind("image.push staging", "staging_tasks", ns, {}, envs).shell() == "inv image.push staging"


def test_a_root_deploy_without_env_acts_on_the_environment_it_picks_at_run_time():
    import dockyard
    from dockyard.dispatch import default_environment

    ns = dockyard.namespace(Path(__file__).resolve().parent.parent)
    envs = ["dev", "staging", "prod"]
    targets = {"dev": "", "staging": "ssh", "prod": "eb"}

    def picks(release_env):
        return lambda verb: default_environment(targets, release_env, verb)

    assert bind("deploy {version}", "release_tasks", ns, VERSION, envs, picks("prod")).env_values == ("prod",)
    assert bind("deploy --env staging", "release_tasks", ns, VERSION, envs, picks("prod")).env_values == ("staging",)
    with pytest.raises(ConfigError) as raised:
        bind("deploy {version}", "release_tasks", ns, VERSION, envs, picks("dev"))
    assert raised.value.message == ("dockyard.ci.release_tasks: 'deploy {version}': `inv deploy` would fail in CI: "
                                    "which environment? several can deploy: prod (eb), staging (ssh); name one "
                                    "with --env")


def test_binding_leaves_the_tasks_help_in_place():
    ns = collection()
    ns["deploy"].help = {"version": "the release"}
    bind("deploy {version}", "release_tasks", ns, VERSION, [])
    assert ns["deploy"].help == {"version": "the release"}
    assert {a.name: a.help for a in ns["deploy"].get_arguments()}["version"] == "the release"


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
