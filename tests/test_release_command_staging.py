"""The release command of a staging deploy as data: its place in the plan, its one-off container, its bound, audit."""
from __future__ import annotations

import subprocess
import time

from dockyard.core.history import AuditRecord, audit_line, parse_audit
from dockyard.core.release_command import AUDIT_KEY, ReleaseCommand
from dockyard.staging import commands as cmd
from dockyard.staging.deploy import HostState, deploy_plan, plan_host, plan_release
from dockyard.staging.model import Accessory, ComposeServices, Layout, RunSpec
from test_staging_units import app, session_for, target_of

LAYOUT = Layout("shop-staging", "/home/deploy/.dockyard/shop-staging")
MIGRATE = ReleaseCommand(("python", "manage.py", "migrate", "--noinput"), 120)


def planned(services=None, state=None, version="v5"):
    target = target_of({"hosts": ["a@h"]})
    session = session_for()
    state = state or HostState((app("v4", "running", "4"),), live="v4", upstream_text="x")
    host_plan = plan_host(target, session, state, version, login=True, env_file=True, services=services)
    return target, session, host_plan, plan_release(target, session, host_plan, MIGRATE, services=services)


def test_the_release_command_runs_after_the_lock_and_before_any_host_is_touched():
    target, session, host_plan, release = planned()
    plan = deploy_plan("staging", "deploy", "v5", [session], {session.name: host_plan}, batch_size=1, release=release)
    assert plan.descriptions == ("take the deploy lock on deploy@h:22/shop-staging",
                                 "run the release command on deploy@h:22/shop-staging",
                                 "deploy v5 on deploy@h:22/shop-staging", "release the deploy lock")
    shown = plan.render()
    assert "run 'python manage.py migrate --noinput' once, in a one-off container of v5 (at most 120s" in shown
    assert "nothing is swapped, v4 keeps serving" in shown
    assert shown.index("pull reg.example:5000/shop:v5") < shown.index("run 'python manage.py migrate")


def test_its_container_is_the_new_image_on_the_app_network_with_the_env_file_and_no_values():
    services = ComposeServices(app=RunSpec("web", command=("gunicorn",), working_dir="/app", user="app",
                                           volumes=("data:/var/lib/sample",)),
                               accessories=(Accessory("db", "mariadb:10.11", source="compose"),), volumes=("data",))
    *_, release = planned(services)
    argv = release.run.argv
    assert argv[:4] == ("docker", "--config", "/home/deploy/.dockyard/shop-staging/docker", "run")
    assert argv[4:8] == ("--rm", "--name", "shop-staging-release", "--network") and argv[8] == "shop-staging"
    assert ("--env-file", "/home/deploy/.dockyard/shop-staging/app.env") == argv[argv.index("--env-file"):][:2]
    assert ("--volume", "shop-staging-data:/var/lib/sample") == argv[argv.index("--volume"):][:2]
    # bypass (the default): the command instead of the image's entrypoint; the app's own command is not run
    assert argv[argv.index("--entrypoint") + 1:] == ("python", "reg.example:5000/shop:v5", "manage.py", "migrate",
                                                      "--noinput")
    assert "gunicorn" not in argv and "--detach" not in argv and "--restart" not in argv
    assert "dev.dockyard.ssh.role=release" in argv
    assert [a.name for a in release.accessories] == ["db"] and release.volumes == ("shop-staging-data",)


def test_apply_hands_the_command_to_the_apps_entrypoint():
    target = target_of({"hosts": ["a@h"]})
    spec = RunSpec("web", entrypoint=("/entry.sh", "--wait"))
    run = cmd.run_release_command(target, LAYOUT, "v5", spec, ("migrate",), env_file=False, entrypoint_mode="apply")
    assert run.argv[-5:] == ("--entrypoint", "/entry.sh", "reg.example:5000/shop:v5", "--wait", "migrate")
    assert "--env-file" not in run.argv


def test_no_release_step_on_a_rollback_or_when_the_version_already_serves():
    target, session, _, _ = planned()
    live = HostState((app("v5", "running", "5"),), live="v5", upstream_text="x")
    assert plan_release(target, session, plan_host(target, session, live, "v5"), MIGRATE) is None
    retained = HostState((app("v5", "running", "5"), app("v4", "exited", "4")), live="v5", upstream_text="x")
    back = plan_host(target, session, retained, "v4", rollback=True)
    assert plan_release(target, session, back, MIGRATE) is None


def run_bounded(seconds: int, *argv: str) -> tuple[subprocess.CompletedProcess, float]:
    """The host-side bound with a stand-in `docker` (what `docker rm --force` would stop is the command itself)."""
    script = cmd.RELEASE_SCRIPT.replace('docker --config "$c" rm --force "$n"', 'kill "$p"')
    started = time.monotonic()
    done = subprocess.run(["sh", "-c", script, "sh", "/cfg", "name", str(seconds), *argv], capture_output=True,
                          text=True, timeout=30)
    return done, time.monotonic() - started


def test_the_host_side_bound_passes_the_exit_code_and_merges_the_output():
    done, took = run_bounded(10, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert done.returncode == 3 and done.stdout.split() == ["out", "err"] and done.stderr == ""
    assert took < 5


def test_the_host_side_bound_stops_a_command_that_runs_too_long():
    done, took = run_bounded(1, "sleep", "20")
    assert done.returncode == 124 and took < 5
    script = cmd.bounded_release(LAYOUT, cmd.docker(LAYOUT, "run", "x"), 7)
    assert script.argv[3:8] == ("sh", LAYOUT.docker_config, "shop-staging-release", "7", "docker")


def test_the_audit_line_keeps_the_release_commands_fate():
    record = AuditRecord(action="deploy", environment="staging", target="h", version="v5", label="v5", who="me@x",
                         started="2026-01-01T00:00:00Z", finished="2026-01-01T00:00:09Z",
                         result="release-command-failed", detail="release command exited 3",
                         extra={AUDIT_KEY: "release command exited 3"})
    line = audit_line(record)
    assert "outcome=release-command-failed" in line and "release_command='release command exited 3'" in line
    back = parse_audit(line, "staging")[0]
    assert back.detail == "release command exited 3" and back.extra == {AUDIT_KEY: "release command exited 3"}
