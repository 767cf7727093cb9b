"""Pure pieces of the core: env files, masking, commands, health waits, plans, image naming."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from dockyard.clients.compose import ComposeProject
from dockyard.clients.docker import build_command, login_command
from dockyard.clients.git import Revision
from dockyard.config import defaults, parse_settings
from dockyard.envfile import load_env_file
from dockyard.errors import EnvFileError, HealthCheckFailed
from dockyard.health import HealthCheck, HealthSetting, Probe
from dockyard.images import commit_tag, image_tags, oci_labels
from dockyard.plan import ApiCall, Plan, Step, execute
from dockyard.runner import Command, Masker


def test_env_file_missing_says_to_copy_the_example(tmp_path):
    (tmp_path / ".env.example").write_text("A=1\n")
    with pytest.raises(EnvFileError, match=r"\.env is missing: copy .*\.env\.example to .*\.env"):
        load_env_file(tmp_path / ".env", tmp_path / ".env.example")


def test_env_file_lists_every_missing_key(tmp_path):
    (tmp_path / ".env.example").write_text("A=1\nB=2\nC=3\n")
    (tmp_path / ".env").write_text("B=x\n")
    with pytest.raises(EnvFileError) as err:
        load_env_file(tmp_path / ".env", tmp_path / ".env.example", root=tmp_path)
    assert ".env lacks A, C (listed in .env.example)" in str(err.value)


def test_env_file_is_parsed_not_sourced(tmp_path):
    (tmp_path / ".env").write_text("GREETING='hello $(rm -rf /)'\nexport PLAIN=value\nEMPTY=\n")
    loaded = load_env_file(tmp_path / ".env")
    assert loaded.values == {"GREETING": "hello $(rm -rf /)", "PLAIN": "value", "EMPTY": ""}


def test_masker_hides_secrets_in_displayed_commands():
    mask = Masker(["hunter2-secret", "no"])
    cmd = Command(("docker", "run", "-e", "TOKEN=hunter2-secret", "img"))
    assert mask(cmd.display()) == "docker run -e TOKEN=******** img"
    assert mask("no way") == "no way"  # values too short to be secrets are left alone


def test_login_password_travels_on_stdin_only():
    cmd = login_command("registry.example:5000", "ci", "p@ss w0rd")
    assert "p@ss w0rd" not in " ".join(cmd.argv)
    assert cmd.stdin == "p@ss w0rd\n"
    assert cmd.display().endswith("registry.example:5000 <<stdin")


def test_build_args_go_through_the_environment_not_argv():
    cmd = build_command(context=Path("/src"), dockerfile=Path("/src/Dockerfile"), tags=["r:dev"],
                        labels={"b": "2", "a": "1"}, build_args={"TOKEN": "abc123secret"})
    assert "abc123secret" not in cmd.argv
    assert cmd.env == {"TOKEN": "abc123secret", "DOCKER_BUILDKIT": "0"}  # the legacy builder (no builder given)
    assert cmd.argv[:4] == ("docker", "build", "--file", "/src/Dockerfile")
    assert cmd.argv.index("a=1") < cmd.argv.index("b=2")  # labels in a stable order
    assert cmd.argv[-1] == "/src"


def test_compose_commands_name_project_and_file():
    project = ComposeProject(("docker", "compose"), "shop-dev", Path("/p/compose.yml"), {"DOCKYARD_PORT": "8000"})
    assert project.up().argv == ("docker", "compose", "--project-name", "shop-dev", "--file", "/p/compose.yml",
                                 "up", "--detach", "--remove-orphans", "--no-build")
    assert project.run("web", ["python", "-V"], tty=False).argv[6:] == ("run", "--rm", "--no-deps", "-T", "web",
                                                                          "python", "-V")
    assert project.logs(follow=True, tail=5, services=["web"]).argv[6:] == ("logs", "--no-color", "--follow",
                                                                             "--tail", "5", "web")
    assert project.exec("web", ["sh"]).argv[6:] == ("exec", "web", "sh")
    assert "--volumes" in project.down(volumes=True).argv


def test_health_check_waits_then_succeeds_without_real_sleeping():
    answers = iter([Probe(False, None, "refused"), Probe(False, 503, "HTTP 503"), Probe(True, 200, "HTTP 200")])
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    check = HealthCheck("http://x/health/", timeout=10, interval=2, sleep=sleep, clock=lambda: now[0],
                        check=lambda url: next(answers))
    assert check.wait().status == 200
    assert slept == [2, 2]


def test_health_check_gives_up_at_the_deadline_with_the_last_answer():
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    check = HealthCheck("http://x/health/", timeout=5, interval=1, sleep=sleep, clock=lambda: now[0],
                        check=lambda url: Probe(False, 503, "HTTP 503"))
    with pytest.raises(HealthCheckFailed, match=r"not healthy after 5s \(last answer: HTTP 503\)"):
        check.wait()
    assert now[0] == 5


def test_dry_run_prints_the_plan_and_runs_nothing():
    ran = []

    class Bundles:
        def upload(self) -> None:
            ran.append(1)

    plan = Plan("Deploy 1.2.3", (Step("upload bundle", instruction=ApiCall.of("bundles", "upload")),
                                 Step("log in", command=Command(("docker", "login"), stdin="pw"))))
    out = io.StringIO()
    execute(plan, dry_run=True, stream=out, performers={"bundles": Bundles()})
    assert ran == []
    assert "1. upload bundle" in out.getvalue() and "$ docker login <<stdin" in out.getvalue()
    execute(plan, stream=io.StringIO(), performers={"bundles": Bundles()})
    assert ran == [1]


def test_image_tags_and_labels(tmp_path):
    settings = parse_settings({**defaults(), "app": "shop", "image": {"repository": "reg.example/shop"}},
                              root=tmp_path)
    rev = Revision(sha="0123456789abcdef0123456789abcdef01234567", dirty=False, committed="2026-01-02T03:04:05+00:00")
    prod, dev = settings.environment("prod"), settings.environment("dev")
    assert image_tags(settings, prod, rev) == ("reg.example/shop:prod", "reg.example/shop:0123456")
    assert commit_tag(settings, dev, rev) == "dev-0123456"
    dirty = Revision(rev.sha, True, rev.committed)
    assert commit_tag(settings, prod, dirty) == "0123456-dirty"
    labels = oci_labels(settings, prod, dirty, source="https://git.example/shop.git")
    assert labels["org.opencontainers.image.revision"] == rev.sha
    assert labels["org.opencontainers.image.created"] == rev.committed
    assert labels["dev.dockyard.dirty"] == "true"


def test_only_declared_build_args_are_passed(tmp_path):
    from dockyard.images import BuildSpec, build_args_for, declared_args

    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("ARG PYTHON_IMAGE=python:3\nFROM ${PYTHON_IMAGE}\narg APP_REVISION\nRUN true\n")
    assert declared_args(dockerfile.read_text()) == {"PYTHON_IMAGE", "APP_REVISION"}
    spec = BuildSpec(context=tmp_path, dockerfile=dockerfile, args={"APP_ENV": "dev"})
    args = build_args_for(spec, {"PYTHON_IMAGE": "base:1", "NGINX_IMAGE": "nginx:1"},
                          {"APP_REVISION": "abc", "APP_VERSION": "1.0.0"})
    assert args == {"PYTHON_IMAGE": "base:1", "APP_REVISION": "abc", "APP_ENV": "dev"}




def test_health_check_fails_fast_on_a_persistent_404_naming_the_setting():
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    setting = HealthSetting("/health/", "dockyard.environments.dev.health_path")
    check = HealthCheck("http://127.0.0.1:18000/health/", timeout=90, interval=1, sleep=sleep, clock=lambda: now[0],
                        check=lambda url: Probe(False, 404, "HTTP 404"), setting=setting)
    with pytest.raises(HealthCheckFailed) as failed:
        check.wait()
    assert str(failed.value) == ("http://127.0.0.1:18000 answered HTTP 404 on /health/ "
                                 "(dockyard.environments.dev.health_path): set health_path to a route your app answers")
    assert now[0] < 5


def test_health_check_timeout_names_the_setting_and_a_400_names_allowed_hosts():
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    setting = HealthSetting("/up", "dockyard.health_path", "localhost", "dockyard.ssh.health_host")
    check = HealthCheck("http://x/up", timeout=5, sleep=sleep, clock=lambda: now[0],
                        check=lambda url: Probe(False, 400, "HTTP 400"), setting=setting)
    with pytest.raises(HealthCheckFailed) as failed:
        check.wait()
    message = str(failed.value)
    assert "(dockyard.health_path) not healthy after 5s (last answer: HTTP 400)" in message
    assert "ALLOWED_HOSTS" in message and "Host: localhost (dockyard.ssh.health_host)" in message


def test_a_404_between_other_answers_is_not_persistent():
    answers = iter([Probe(False, 404, "HTTP 404"), Probe(False, 502, "HTTP 502"), Probe(False, 404, "HTTP 404"),
                    Probe(False, 404, "HTTP 404"), Probe(True, 200, "HTTP 200")])
    check = HealthCheck("http://x/health/", timeout=60, sleep=lambda s: None, check=lambda url: next(answers),
                        setting=HealthSetting("/health/"))
    assert check.wait().status == 200


def test_one_rule_for_commands_in_containers():
    from dockyard.core.entrypoint import exec_argv, run_entrypoint, shell_run

    assert run_entrypoint("bypass", ["python3", "manage.py", "check"]) == ("python3", ("manage.py", "check"))
    assert run_entrypoint("bypass", ["my tool", "x"]) == ("'my tool'", ("x",))  # compose splits --entrypoint
    assert run_entrypoint("apply", ["manage.py", "check"]) == (None, ("manage.py", "check"))
    assert exec_argv("bypass", ("python3",), ["ls"]) == ("ls",)
    assert exec_argv("apply", ("/entrypoint.sh",), ["ls"]) == ("/entrypoint.sh", "ls")
    assert shell_run("bypass", "img", "make test") == ("--entrypoint", "sh", "img", "-c", "make test")
    assert shell_run("apply", "img", "make test") == ("img", "sh", "-c", "make test")
    project = ComposeProject(("docker", "compose"), "p", Path("c.yml"))
    assert project.run("web", ["manage.py"], tty=False, entrypoint="python3").argv[-5:] == (
        "-T", "--entrypoint", "python3", "web", "manage.py")


def test_tags_of_a_repository_behind_a_registry_port():
    from dockyard.images import tags_in

    refs = ["127.0.0.1:49523/adopt/django:182953f", "127.0.0.1:49523/adopt/django:prod", "other/app:prod",
            "127.0.0.1:49523/adopt/django-worker:prod"]
    assert tags_in(refs, "127.0.0.1:49523/adopt/django") == ["182953f", "prod"]


def test_compose_builds_with_the_legacy_builder_unless_buildx_is_new_enough_for_it():
    from dockyard.clients.buildx import LEGACY_BUILDER, Builder, compose_build_env

    debian = Builder("buildkit", ("docker", "buildx", "build", "--load"), version="0.13.1+ds1")
    assert compose_build_env(debian) == {"DOCKER_BUILDKIT": "0"}  # Compose 2.40: "requires buildx 0.17 or later"
    assert compose_build_env(LEGACY_BUILDER) == {"DOCKER_BUILDKIT": "0"}
    assert compose_build_env(Builder("buildkit", ("docker",), version="0.17.1")) == {}
