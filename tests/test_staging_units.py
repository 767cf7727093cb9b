"""Pure parts of staging over SSH: settings, remote command builders, proxy config, planner, audit; bad inputs."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import deep_merge
from dockyard.config import defaults, parse_settings
from dockyard.errors import ConfigError, HealthCheckFailed, Refused
from dockyard.staging import commands as cmd
from dockyard.core.history import append_line, parse_audit, previous_good_release
from dockyard.staging.deploy import (Container, HostPlan, HostSession, HostState, batches, images_to_prune,
                                     parse_containers, plan_host)
from dockyard.staging.model import Layout, valid_version
from dockyard.staging.proxy import live_version, render_proxy_conf, render_upstream


def settings_with(ssh: dict, staging: dict | None = None, tmp: Path = Path("/tmp")):
    data = deep_merge(defaults(), {"app": "shop", "image": {"repository": "reg.example:5000/shop"},
                                   "ssh": ssh, "environments": {"staging": {"target": "ssh", **(staging or {})}}})
    return parse_settings(data, root=tmp)


def target_of(ssh: dict, staging: dict | None = None):
    return settings_with(ssh, staging).ssh.target("staging")


# --- settings ------------------------------------------------------------------------------------------------------


def test_settings_defaults_and_host_forms():
    target = target_of({"hosts": ["deploy@10.0.0.5", {"address": "root@10.0.0.6:2222", "prefix": "b",
                                                      "proxy_port": 8081}]})
    first, second = target.hosts
    assert (first.address.user, first.address.host, first.address.port) == ("deploy", "10.0.0.5", 22)
    assert first.prefix == "shop-staging" and first.proxy_port == 80
    assert (second.address.port, second.prefix, second.proxy_port) == (2222, "b", 8081)
    assert target.health_path == "/health/" and target.keep == 3 and target.batch_size == 1
    assert target.proxy_image == "nginx:1.27"
    assert target.image("v2") == "reg.example:5000/shop:v2"
    assert target.default_version("0123456789abcdef") == "staging-0123456"


def test_environment_overrides_win_over_the_section():
    target = target_of({"hosts": ["a@h"], "keep": 5}, {"ssh": {"keep": 1, "health_path": "/up"}})
    assert target.keep == 1 and target.health_path == "/up"


def test_health_probe_host_and_path_name_their_settings():
    plain = target_of({"hosts": ["a@h"]})
    assert (plain.health_host, plain.health_host_key) == ("localhost", "dockyard.ssh.health_host")
    assert plain.health_path_key == "dockyard.health_path"
    public = target_of({"hosts": ["a@h"], "public_host": "staging.example.com"}, {"health_path": "/up"})
    assert (public.health_host, public.health_host_key) == ("staging.example.com", "dockyard.ssh.public_host")
    assert public.health_path_key == "dockyard.environments.staging.health_path"
    chosen = target_of({"hosts": ["a@h"], "public_host": "staging.example.com"},
                       {"ssh": {"health_host": "app.internal", "health_path": "/ready"}})
    assert (chosen.health_host, chosen.health_host_key) == ("app.internal", "dockyard.environments.staging.ssh.health_host")
    assert (chosen.health_path, chosen.health_path_key) == ("/ready", "dockyard.environments.staging.ssh.health_path")


@pytest.mark.parametrize("ssh, needle", [
    ({"hosts": ["user@@host"]}, "dockyard.ssh.hosts: entry 1"),
    ({"hosts": ["a@h:99999"]}, "out of range"),
    ({"keep": "many"}, "dockyard.ssh.keep"),
    ({"proxy_port": 70000}, "dockyard.ssh.proxy_port"),
    ({"version_format": "{branch}-{sha7}"}, "unknown placeholder"),
    ({"accessories": {"db": {"port": 3306}}}, "accessories.db.image"),
])
def test_bad_settings_name_the_key(ssh, needle):
    with pytest.raises(ConfigError) as caught:
        settings_with(ssh)
    assert needle in caught.value.message


def test_environments_without_ssh_target_have_no_ssh_settings():
    settings = settings_with({})
    with pytest.raises(ConfigError, match="target: ssh"):
        settings.ssh.target("prod")


def test_versions_are_docker_tags():
    assert valid_version("staging-abc1234") and valid_version("v1.2.3")
    assert not valid_version("") and not valid_version("a b") and not valid_version("x;rm -rf /")


# --- commands --------------------------------------------------------------------------------------------------------


LAYOUT = Layout("shop-staging", "/home/deploy/.dockyard/shop-staging")


def test_login_password_only_on_stdin():
    command = cmd.login(LAYOUT, "reg.example:5000", "bot", "hunter2-secret")
    assert "hunter2-secret" not in " ".join(command.argv)
    assert command.stdin == "hunter2-secret\n"
    assert command.argv[:3] == ("docker", "--config", "/home/deploy/.dockyard/shop-staging/docker")
    assert "--password-stdin" in command.argv


def test_app_container_gets_env_file_never_values():
    target = target_of({"hosts": ["a@h"]})
    command = cmd.run_app(target, LAYOUT, "v2", env_file=True)
    argv = command.argv
    assert argv[argv.index("--env-file") + 1] == "/home/deploy/.dockyard/shop-staging/app.env"
    assert argv[argv.index("--name") + 1] == "shop-staging-app-v2"
    assert argv[argv.index("--network") + 1] == "shop-staging"
    assert argv[-1] == "reg.example:5000/shop:v2"
    assert [a for a in argv if a.startswith("DOCKYARD_")] == ["DOCKYARD_VERSION=v2"]


def test_shell_commands_pass_values_as_parameters():
    command = append_line("/x/audit.log", "deploy version=v1; rm -rf /")
    assert command.argv[:2] == ("sh", "-c") and "rm -rf" not in command.argv[2]
    assert command.argv[-2:] == ("deploy version=v1; rm -rf /", "/x/audit.log")


def test_accessory_named_volumes_get_the_prefix():
    assert cmd.accessory_volume(LAYOUT, "data:/var/lib/mysql") == "shop-staging-data:/var/lib/mysql"
    assert cmd.accessory_volume(LAYOUT, "/srv/db:/var/lib/mysql") == "/srv/db:/var/lib/mysql"


def test_env_file_text_refuses_multiline_values():
    assert cmd.env_file_text({"A": "1", "B": "x y"}) == "A=1\nB=x y\n"
    with pytest.raises(ValueError):
        cmd.env_file_text({"A": "line1\nline2"})


# --- proxy -------------------------------------------------------------------------------------------------------------


def test_upstream_names_the_live_version():
    text = render_upstream("shop-staging-app-v2", 8000, "v2")
    assert "server shop-staging-app-v2:8000" in text and live_version(text) == "v2"
    assert live_version(render_upstream(None, 8000, None)) is None
    assert live_version(None) is None
    conf = render_proxy_conf()
    assert "include /etc/dockyard-proxy/upstream.conf;" in conf and "worker_shutdown_timeout" in conf


# --- planner -------------------------------------------------------------------------------------------------------------


def app(version: str, state: str, created: str) -> Container:
    return Container(f"shop-staging-app-{version}", state, version, "app", created, f"reg/shop:{version}")


def session_for() -> HostSession:
    from dockyard.staging.model import HostSpec, SshAddress

    spec = HostSpec(SshAddress("deploy", "h", 22), "shop-staging", 80, ".dockyard")
    return HostSession(host=None, spec=spec, layout=LAYOUT)


def test_plan_stops_the_running_one_and_prunes_beyond_keep():
    target = target_of({"hosts": ["a@h"], "keep": 2})
    state = HostState((app("v4", "running", "4"), app("v3", "exited", "3"), app("v2", "exited", "2"),
                       app("v1", "exited", "1")), live="v4", upstream_text="x")
    plan = plan_host(target, session_for(), state, "v5")
    assert plan.previous == "v4" and plan.stop == ("shop-staging-app-v4",)
    assert plan.prune == ("shop-staging-app-v2", "shop-staging-app-v1")
    assert plan.prune_images == ("reg/shop:v1", "reg/shop:v2")
    assert any("v4 -> v5" in line for line in plan.lines())


def test_plan_same_live_version_is_a_noop_and_rollback_needs_a_retained_container():
    target = target_of({"hosts": ["a@h"]})
    state = HostState((app("v2", "running", "2"),), live="v2", upstream_text="x")
    assert plan_host(target, session_for(), state, "v2").noop
    with pytest.raises(Refused, match="no retained container of v1"):
        plan_host(target, session_for(), state, "v1", rollback=True)


def test_images_to_prune_keep_the_live_and_retained_ones_and_other_repositories():
    listed = ("reg:5000/shop:v3\nreg:5000/shop:v2\nreg:5000/shop:bad\nreg:5000/shop:v1\nreg:5000/shop:<none>\n"
              "reg:5000/shop-worker:v1\nreg:5000/shop:v1\n")
    keep = {"reg:5000/shop:v3", "reg:5000/shop:v2"}
    assert images_to_prune(listed, "reg:5000/shop", keep) == ["reg:5000/shop:bad", "reg:5000/shop:v1"]
    assert images_to_prune("", "reg:5000/shop", keep) == []


def test_image_commands_never_force():
    assert cmd.remove_images(LAYOUT, ["r/shop:v1"]).argv[-3:] == ("image", "rm", "r/shop:v1")
    listing = cmd.list_images(LAYOUT, "r/shop").argv
    assert listing[-1] == "r/shop" and "{{.Repository}}:{{.Tag}}" in listing


def test_exec_puts_the_entrypoint_in_front_only_when_asked():
    plain = cmd.exec_in(LAYOUT, "c1", "ls -l")
    assert plain.argv[-4:] == ("c1", "sh", "-c", "ls -l")
    through = cmd.exec_in(LAYOUT, "c1", "ls -l", entrypoint=("/entrypoint.sh",))
    assert through.argv[-5:] == ("c1", "/entrypoint.sh", "sh", "-c", "ls -l")


def test_exec_tty_asks_docker_for_a_terminal():
    assert "--tty" not in cmd.exec_in(LAYOUT, "c", "ls").argv
    argv = cmd.exec_in(LAYOUT, "c", "python manage.py shell", tty=True).argv
    assert argv[3:6] == ("exec", "--interactive", "--tty") and argv[-3:] == ("sh", "-c", "python manage.py shell")


def test_exec_with_stdin_feeds_it_without_a_terminal():
    command = cmd.exec_in(LAYOUT, "c", 'read -r p; echo "$p"', stdin="s3cret\n")
    assert command.argv[3:5] == ("exec", "--interactive") and "--tty" not in command.argv
    assert command.stdin == "s3cret\n" and "s3cret" not in " ".join(command.argv)


def test_previous_version_comes_from_the_audit_log():
    log = ("2026-01-01T00:00:00Z deploy version=v1 previous=- by=a outcome=ok\n"
           "2026-01-02T00:00:00Z deploy version=v2 previous=v1 by=a outcome=ok\n"
           "2026-01-03T00:00:00Z deploy version=bad previous=v2 by=a outcome=health-failed\n")
    entries = parse_audit(log)
    assert [e.version for e in entries] == ["v1", "v2", "bad"]
    assert previous_good_release(entries[::-1], "v2", {"v1", "v2"}).version == "v1"
    assert previous_good_release(entries[::-1], "v2", {"v2"}) is None


def test_parse_containers_and_batches():
    line = "shop-staging-app-v1\trunning\tv1\tapp\t2026-01-01 00:00:00 +0000 UTC\treg/shop:v1"
    assert parse_containers(line + "\n\n")[0].running
    assert batches([1, 2, 3], 2) == [[1, 2], [3]]


# --- bad inputs through the real `inv` -----------------------------------------------------------------------------------


def assert_one_line_failure(result, code: int) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dockyard: "), result.stderr


def test_deploy_without_hosts_is_a_config_error(sample_project):
    assert_one_line_failure(sample_project.inv("staging.ssh-deploy", "--version", "v1"), 2)


def test_bad_host_address_names_the_key(sample_project):
    sample_project.configure({"dockyard": {"ssh": {"hosts": ["root@@nowhere"]}}})
    result = sample_project.inv("staging.status")
    assert_one_line_failure(result, 2)
    assert "dockyard.ssh.hosts: entry 1" in result.stderr and "invoke.yaml" in result.stderr


def test_bad_version_is_refused_before_connecting(sample_project):
    sample_project.configure({"dockyard": {"ssh": {"hosts": ["root@127.0.0.1:1"]}}})
    result = sample_project.inv("staging.ssh-deploy", "--version", "no good")
    assert_one_line_failure(result, 2)
    assert "not a valid image tag" in result.stderr


def test_unreachable_host_exit_code(sample_project):
    from conftest import free_port

    sample_project.configure({"dockyard": {"ssh": {"hosts": [f"root@127.0.0.1:{free_port()}"], "use_agent": False},
                                           "registry": {"username": ""}}})
    result = sample_project.inv("staging.status")
    assert_one_line_failure(result, 7)
    assert "unreachable" in result.stderr


def test_ssh_tasks_are_listed_and_logs_clash_is_resolved(sample_project):
    sample_project.configure({"dockyard": {"environments": {"staging": {"compose": "docker/prod/compose.yml"}}}})
    listing = sample_project.inv("--list", check=True).stdout
    for name in ("staging.ssh-deploy", "staging.setup", "staging.rollback", "staging.status", "staging.logs",
                 "staging.exec", "staging.unlock", "staging.audit", "staging.accessories.start",
                 "staging.local-logs", "staging.start"):
        assert name in listing, name


def test_exec_tty_is_for_one_host(sample_project):
    sample_project.configure({"dockyard": {"ssh": {"hosts": ["root@127.0.0.1:1"]}}})
    result = sample_project.inv("staging.exec", "--tty", "--all-hosts", "sh")
    assert_one_line_failure(result, 2)
    assert "--tty" in result.stderr and "--all-hosts" in result.stderr


def test_a_connection_whose_io_threads_died_is_unreachable_not_a_traceback():
    """Invoke raises ThreadException when the socket closes under a running command (`OSError: Socket is closed`)."""
    from invoke.exceptions import ThreadException
    from invoke.util import ExceptionWrapper

    from dockyard.clients.ssh import SshHost, SshOptions
    from dockyard.errors import Unreachable
    from dockyard.runner import Command

    class DeadConnection:
        def run(self, *args, **kwargs):
            raise ThreadException([ExceptionWrapper({}, OSError, OSError("Socket is closed"), None)])

    host = SshHost("deploy", "example.org", 22, SshOptions(), name="example.org")
    host._connection = DeadConnection()
    with pytest.raises(Unreachable) as lost:
        host.run(Command(("docker", "login", "--password-stdin")), check=False)
    assert lost.value.exit_code == 7
    assert "the SSH connection broke during `docker login --password-stdin` (Socket is closed)" in lost.value.message


def test_a_command_the_host_s_own_timeout_ended_first_is_the_same_stop_as_the_client_s(monkeypatch):
    """The host's `timeout` (a second after the bound) can beat Invoke's timer on a busy machine: exit 124 or no exit
    status after the bound is the bound, not a failed command."""
    from types import SimpleNamespace

    from dockyard.clients import ssh
    from dockyard.errors import Unreachable
    from dockyard.runner import Command

    now = [100.0]
    monkeypatch.setattr(ssh.time, "monotonic", lambda: now[0])

    class SlowConnection:
        def run(self, line, **kwargs):
            assert kwargs["timeout"] == 2 and line.startswith("sh -c ")
            now[0] += 3.1  # the remote `timeout 3` ended it
            return SimpleNamespace(exited=124, stdout="", stderr="")

    host = ssh.SshHost("deploy", "example.org", 22, ssh.SshOptions(command_timeout=2), name="staging-1")
    host._connection = SlowConnection()
    with pytest.raises(Unreachable) as stopped:
        host.run(Command(("sleep", "60")))
    assert stopped.value.exit_code == 7
    assert stopped.value.message.startswith("staging-1: `sleep 60` did not finish within 2s and was stopped")


class _AnsweringHost:
    """A host whose new container answers the health probe with ``status``; records the Host headers sent."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.hosts_sent: list[str] = []

    def run(self, command, check=True):
        from dockyard.runner import Result

        text = " ".join(command.argv)
        return Result(command, 0, "running 10.0.0.5" if "inspect" in text else "")

    def http_get(self, ip, port, path, *, timeout=5.0, host=""):
        from dockyard.health import Probe

        self.hosts_sent.append(host)
        if self.status is None:  # nothing listens on the probed port
            return Probe(False, None, "[Errno 111] Connection refused"), ""
        return Probe(False, self.status, f"HTTP {self.status}"), ""


def _gate(status: int | None, ssh: dict, staging: dict | None = None):
    from dockyard.staging.deploy import HostDeployer, HostPlan

    target = target_of({"hosts": ["a@h"], "health_timeout": 30, **ssh}, staging)
    host = _AnsweringHost(status)
    session = session_for()
    session.host = host
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    deployer = HostDeployer(target, session, say=lambda line: None, sleep=sleep, clock=lambda: now[0])
    plan = HostPlan(session.name, "v2", target.image("v2"), "shop-staging-app-v2", "v1")
    with pytest.raises(HealthCheckFailed) as failed:
        deployer.health_gate(plan)
    return str(failed.value), host.hosts_sent, now[0]


def test_staging_gate_fails_fast_on_a_persistent_404_naming_health_path():
    message, _, waited = _gate(404, {}, {"health_path": "/health/"})
    assert ("v2 answered HTTP 404 on /health/ (dockyard.environments.staging.health_path): "
            "set health_path to a route your app answers") in message
    assert "v1 keeps serving" in message and waited < 5


def test_staging_probe_sends_the_public_host_and_a_400_names_allowed_hosts():
    message, sent, waited = _gate(400, {"public_host": "staging.example.com"})
    assert set(sent) == {"staging.example.com"}
    assert "did not answer /health/ (dockyard.health_path) with 2xx within 30s (last: HTTP 400" in message
    assert "Host: staging.example.com (dockyard.ssh.public_host)" in message and "ALLOWED_HOSTS" in message
    assert waited >= 30


def test_staging_gate_refused_on_the_probed_port_names_app_port():
    message, _, _ = _gate(None, {"app_port": 8000})
    assert "(last: [Errno 111] Connection refused; nothing answered on port 8000 in the container: set " \
           "dockyard.ssh.app_port to the port the app listens on)" in message
    assert "app_port" not in _gate(503, {})[0]


# --- the compose file's services ------------------------------------------------------------------------------------

STAGING_COMPOSE = """\
services:
  web:
    build: {context: .., dockerfile: docker/Dockerfile}
    image: ${DOCKYARD_IMAGE}
    command: ["gunicorn", "--bind", "0.0.0.0:8000", "site:app"]
    env_file: [../environments/staging/.env]
    environment: {MODE: web}
    working_dir: /srv
    user: "10001"
    ports: ["8000:8000"]
    volumes: [data:/data]
  worker:
    image: ${DOCKYARD_IMAGE}
    entrypoint: ["python3", "-u"]
    command: ["worker.py"]
    env_file: [../environments/staging/.env]
    volumes: [data:/data, /srv/shared:/shared:ro]
  beat:
    build: {context: .., dockerfile: docker/Dockerfile}
    command: ["python3", "beat.py"]
  db:
    image: mariadb:10.11
    environment: {MYSQL_DATABASE: app}
    env_file: [../environments/staging/.env]
    volumes: [dbdata:/var/lib/mysql]
    ports: ["3306:3306"]
  nginx:
    image: nginx:1.27
    volumes: [./nginx.conf:/etc/nginx/nginx.conf:ro]
volumes: {data: {}, dbdata: {}}
"""


def compose_project(tmp_path: Path, compose: str = STAGING_COMPOSE, ssh: dict | None = None):
    (tmp_path / "docker").mkdir(exist_ok=True)
    (tmp_path / "docker" / "compose.yml").write_text(compose)
    (tmp_path / "docker" / "nginx.conf").write_text("events {}\n")
    settings = settings_with({"hosts": ["a@h"], **(ssh or {})}, {"compose": "docker/compose.yml"}, tmp=tmp_path)
    return settings, settings.environment("staging"), settings.ssh.target("staging")


def test_compose_services_run_the_app_and_workers_as_the_file_says(tmp_path):
    from dockyard.staging.compose import compose_services
    from dockyard.staging.model import Accessory, ComposeServices, RunSpec

    settings, env, target = compose_project(tmp_path, ssh={"skip_services": ["nginx"]})
    services = compose_services(settings, env, target, "reg.example:5000/shop:v2")
    assert services == ComposeServices(
        app=RunSpec("web", command=("gunicorn", "--bind", "0.0.0.0:8000", "site:app"), environment=(("MODE", "web"),),
                    env_file=True, working_dir="/srv", user="10001", volumes=("data:/data",)),
        workers=(RunSpec("beat", command=("python3", "beat.py")),
                 RunSpec("worker", command=("worker.py",), entrypoint=("python3", "-u"), env_file=True,
                         volumes=("data:/data", "/srv/shared:/shared:ro"))),
        accessories=(Accessory("db", "mariadb:10.11", volumes=("dbdata:/var/lib/mysql",),
                               env={"MYSQL_DATABASE": "app"}, env_file=True, source="compose"),),
        volumes=("data", "dbdata"),
        notes=(("compose service 'web': ports not published (the staging proxy fronts the app; workers publish "
                "nothing)"),
               ("compose service 'db': ports not published (reach it by its name on the app network, or publish "
                "one in dockyard.ssh.accessories.db)")))


def test_compose_services_refuse_a_project_bind_mount_and_let_settings_win(tmp_path):
    from dockyard.compose_model import UnsupportedComposeKey
    from dockyard.staging.compose import compose_services

    settings, env, target = compose_project(tmp_path)
    with pytest.raises(UnsupportedComposeKey) as refused:
        compose_services(settings, env, target, "reg.example:5000/shop:v2")
    assert refused.value.message == ("compose service 'nginx': key 'volumes' mounts docker/nginx.conf from the project, "
                                     "which staging does not copy to its hosts; bake it into the image or use a named "
                                     "volume")
    settings, env, target = compose_project(tmp_path, ssh={"skip_services": ["nginx"],
                                                           "accessories": {"db": {"image": "mariadb:11"}}})
    services = compose_services(settings, env, target, "reg.example:5000/shop:v2")
    assert services.accessories == ()
    assert "compose service 'db': dockyard.ssh.accessories.db is used instead" in services.notes


def test_without_a_compose_file_the_app_runs_the_images_command(tmp_path):
    from dockyard.staging.compose import compose_services
    from dockyard.staging.model import ComposeServices, RunSpec

    settings = settings_with({"hosts": ["a@h"]}, tmp=tmp_path)
    services = compose_services(settings, settings.environment("staging"), settings.ssh.target("staging"), "r/s:v1")
    assert services == ComposeServices(app=RunSpec("web"))


def test_a_worker_cannot_take_the_apps_container_name(tmp_path):
    from dockyard.staging.compose import compose_services

    compose = "services:\n  web: {image: '${DOCKYARD_IMAGE}'}\n  app: {image: '${DOCKYARD_IMAGE}'}\n"
    settings, env, target = compose_project(tmp_path, compose)
    with pytest.raises(ConfigError, match="service 'app' shares the release image"):
        compose_services(settings, env, target, "r/s:v1")


def test_app_and_worker_commands_carry_the_compose_entry_never_values():
    from dockyard.staging.model import RunSpec

    target = target_of({"hosts": ["a@h"]})
    spec = RunSpec("worker", command=("worker.py", "--once"), entrypoint=("python3", "-u"), working_dir="/srv",
                   user="10001", environment=(("SECRET", "s3cret-value"),), volumes=("data:/data", "/srv/x:/x:ro"))
    argv = cmd.run_worker(target, LAYOUT, "v2", spec, env_file=True).argv
    assert argv[argv.index("--name") + 1] == "shop-staging-worker-v2"
    assert argv[argv.index("--env-file") + 1] == "/home/deploy/.dockyard/shop-staging/service-worker.env"
    assert "dev.dockyard.ssh.role=worker" in argv and "dev.dockyard.ssh.service=worker" in argv
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"] == ["shop-staging-data:/data", "/srv/x:/x:ro"]
    assert (argv[argv.index("--workdir") + 1], argv[argv.index("--user") + 1]) == ("/srv", "10001")
    assert argv[argv.index("--entrypoint") + 1] == "python3"
    assert argv[-4:] == ("reg.example:5000/shop:v2", "-u", "worker.py", "--once")
    assert "s3cret-value" not in " ".join(argv)
    reset = cmd.run_app(target, LAYOUT, "v2", env_file=False, spec=RunSpec("web", entrypoint=(), command=("x",))).argv
    assert reset[reset.index("--entrypoint") + 1] == "" and reset[-2:] == ("reg.example:5000/shop:v2", "x")


def worker(service: str, version: str, state: str, created: str) -> Container:
    return Container(f"shop-staging-{service}-{version}", state, version, "worker", created, f"reg/shop:{version}",
                     service)


def test_plan_swaps_the_workers_with_the_app_and_prunes_them_with_it():
    from dockyard.staging.model import Accessory, ComposeServices, RunSpec

    target = target_of({"hosts": ["a@h"], "keep": 2, "worker_start_seconds": 2})
    services = ComposeServices(app=RunSpec("web", command=("gunicorn",)), workers=(RunSpec("worker"),),
                               accessories=(Accessory("db", "mariadb:10.11", source="compose"),), volumes=("data",))
    state = HostState((app("v3", "running", "3"), worker("worker", "v3", "running", "3"),
                       app("v2", "exited", "2"), worker("worker", "v2", "exited", "2"),
                       app("v1", "exited", "1"), worker("worker", "v1", "exited", "1"),
                       Container("shop-staging-db", "running", "db", "accessory", "0", "mariadb:10.11")),
                      live="v3", upstream_text="x")
    plan = plan_host(target, session_for(), state, "v4", services=services, worker_env_files=("worker",))
    layout = session_for().layout
    assert plan == HostPlan(
        "deploy@h:22/shop-staging", "v4", "reg.example:5000/shop:v4", "shop-staging-app-v4", "v3",
        stop=("shop-staging-app-v3",), prune=("shop-staging-app-v1", "shop-staging-worker-v1"),
        prune_images=("reg/shop:v1",), worker_env_files=("worker",), volumes=("shop-staging-data",),
        app_run=cmd.run_app(target, layout, "v4", env_file=False, spec=services.app),
        worker_runs=(cmd.run_worker(target, layout, "v4", RunSpec("worker"), env_file=True),),
        workers=("shop-staging-worker-v4",), stop_workers=("shop-staging-worker-v3",), worker_start_seconds=2.0)
    lines = plan.lines()
    assert "  stop shop-staging-app-v3, shop-staging-worker-v3 (kept for rollback)" in lines
    assert f"    $ {plan.worker_runs[0].display()}" in lines and f"    $ {plan.app_run.display()}" in lines

    back = plan_host(target, session_for(), state, "v2", rollback=True, services=None)
    assert (back.workers, back.worker_runs, back.app_run, back.volumes) == (("shop-staging-worker-v2",), (), None, ())
    assert back.stop_workers == ("shop-staging-worker-v3",) and back.prune == ()
    assert "  start the retained workers shop-staging-worker-v2" in back.lines()

    # the live version is left alone (its container serves); a redeploy of a stopped version starts the stopped
    # accessories first and replaces that version's containers
    stopped = HostState((app("v3", "running", "3"), worker("worker", "v3", "exited", "3"),
                         app("v2", "exited", "2"), worker("worker", "v2", "exited", "2"),
                         Container("shop-staging-db", "exited", "db", "accessory", "0", "mariadb:10.11")),
                        live="v3", upstream_text="x")
    assert plan_host(target, session_for(), stopped, "v3", services=services).noop
    again = plan_host(target, session_for(), stopped, "v2", services=services)
    assert again.remove_first == ("shop-staging-app-v2", "shop-staging-worker-v2")
    assert again.accessories == services.accessories and again.stop_workers == ()


def test_status_lists_the_workers_of_each_version():
    from dockyard.staging.service import worker_summary

    state = HostState((worker("worker", "v2", "running", "2"), worker("beat", "v2", "running", "2"),
                       worker("worker", "v1", "exited", "1"), app("v2", "running", "2")), live="v2", upstream_text="")
    assert worker_summary(state) == "v2: beat running, worker running; v1: worker exited"


class _WorkerHost:
    """A host whose new worker is restarting (it exited at once); records every command run."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, ...]] = []

    def run(self, command, check=True):
        from dockyard.runner import Result

        self.ran.append(command.argv)
        if "inspect" in command.argv:
            return Result(command, 0, "/shop-staging-worker-v2 restarting 2 1\n")
        return Result(command, 0, "worker: cannot connect\n" if "logs" in command.argv else "")


def test_a_worker_that_exits_at_once_removes_what_the_deploy_started():
    from dockyard.staging.deploy import HostDeployer
    from dockyard.staging.model import ComposeServices, RunSpec

    target = target_of({"hosts": ["a@h"], "worker_start_seconds": 2})
    session = session_for()
    session.host = host = _WorkerHost()
    services = ComposeServices(app=RunSpec("web"), workers=(RunSpec("worker"),))
    state = HostState((app("v1", "running", "1"), worker("worker", "v1", "running", "1")), live="v1",
                      upstream_text="x")
    plan = plan_host(target, session, state, "v2", services=services)
    slept: list[float] = []
    said: list[str] = []
    audited = []
    deployer = HostDeployer(target, session, say=said.append, sleep=slept.append)
    deployer.audit = lambda plan, result: audited.append(result)  # the audit log is core's, tested there
    with pytest.raises(HealthCheckFailed) as failed:
        deployer.start_workers(plan)
    assert str(failed.value) == ("deploy@h:22/shop-staging: worker shop-staging-worker-v2 exited right after its start "
                                 "(exit 1); it, the other workers of v2 and shop-staging-app-v2 were removed and v1 "
                                 "keeps serving")
    assert slept == [2] and audited == ["failed"] and "  | worker: cannot connect" in said
    removed = [argv[3:] for argv in host.ran if argv[3:5] == ("rm", "--force")]
    assert removed == [("rm", "--force", "shop-staging-worker-v2"), ("rm", "--force", "shop-staging-app-v2")]
    assert not any("shop-staging-worker-v1" in argv or "shop-staging-app-v1" in argv for argv in host.ran)
