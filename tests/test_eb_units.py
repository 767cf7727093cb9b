"""Pure parts of the Elastic Beanstalk feature: compose -> container definitions, Dockerrun, bundles, the wait."""
from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dockyard.containers import UnsupportedComposeKey, container_definitions, interpolate, read_compose_file
from dockyard.eb.bundle import Bundle, BundleFile
from dockyard.clients.eb import EnvironmentState, Event
from dockyard.eb.deploy import LabelConflict, WaitPolicy, check_label, wait_for_update
from dockyard.eb.dockerrun import DockercfgLocation, dockercfg, dockerrun_v1, dockerrun_v2, dockerrun_v3, pinned_compose
from dockyard.clients.eb import AppVersion

REPO = Path(__file__).resolve().parent.parent


def convert(services: dict, tmp_path: Path, **kwargs):
    return container_definitions({"services": services}, project_root=tmp_path, compose_dir=tmp_path, **kwargs)


def test_every_supported_key_converts(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "site.conf").write_text("x")
    services = {"web": {
        "image": "app:1", "command": "gunicorn app:wsgi", "entrypoint": ["/entry.sh", "-x"],
        "environment": {"A": "1", "B": True}, "env_file": [".env"],
        "ports": ["8080:80", "9000", {"target": 53, "published": 53, "protocol": "udp"}],
        "expose": ["7000"], "volumes": ["data:/data", "./conf/site.conf:/etc/site.conf:ro", "/scratch"],
        "links": ["db"], "depends_on": {"db": {"condition": "service_healthy"}}, "mem_limit": "1g",
        "mem_reservation": "512m", "working_dir": "/app", "user": "app", "hostname": "web1", "privileged": False,
        "read_only": True, "extra_hosts": ["h:10.0.0.1"], "labels": {"l": "v"},
        "healthcheck": {"test": ["CMD", "true"], "interval": "1m30s", "timeout": "10s", "retries": 3,
                        "start_period": "5s"},
        "stop_grace_period": "20s", "logging": {"driver": "awslogs", "options": {"awslogs-group": "g"}},
        "ulimits": {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 64}, "tty": True, "stdin_open": False,
    }, "db": {"image": "db:1", "environment": ["X=y"], "healthcheck": {"test": "pg_isready"}}}
    # ECS ranges (memoryReservation < memory, health timeout <= 60 s) hold; the named volume is decided
    out = convert(services, tmp_path, named_volumes={"data": "scratch"})
    db, web = out.containers
    assert db == {"name": "db", "image": "db:1", "essential": True, "memory": 256,
                  "environment": [{"name": "X", "value": "y"}],
                  "healthCheck": {"command": ["CMD-SHELL", "pg_isready"]}}
    assert web["command"] == ["gunicorn", "app:wsgi"] and web["entryPoint"] == ["/entry.sh", "-x"]
    assert web["environment"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "true"}]
    assert web["portMappings"] == [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 9000},
                                   {"containerPort": 53, "hostPort": 53, "protocol": "udp"}, {"containerPort": 7000}]
    assert web["mountPoints"] == [
        {"sourceVolume": "data", "containerPath": "/data", "readOnly": False},
        {"sourceVolume": "conf-site-conf", "containerPath": "/etc/site.conf", "readOnly": True},
        {"sourceVolume": "web-anonymous-2", "containerPath": "/scratch", "readOnly": False}]
    assert {"name": "conf-site-conf", "host": {"sourcePath": "/var/app/current/conf/site.conf"}} in out.volumes
    assert {"name": "data"} in out.volumes
    assert out.shipped == {"conf/site.conf": tmp_path / "conf" / "site.conf"}
    assert out.env_files == {"web": (".env",)}
    assert web["links"] == ["db"] and web["dependsOn"] == [{"containerName": "db", "condition": "HEALTHY"}]
    assert (web["memory"], web["memoryReservation"]) == (1024, 512)
    assert (web["workingDirectory"], web["user"], web["hostname"]) == ("/app", "app", "web1")
    assert (web["privileged"], web["readonlyRootFilesystem"], web["pseudoTerminal"], web["interactive"]) == (
        False, True, True, False)
    assert web["extraHosts"] == [{"hostname": "h", "ipAddress": "10.0.0.1"}]
    assert web["dockerLabels"] == {"l": "v"}
    assert web["healthCheck"] == {"command": ["CMD", "true"], "interval": 90, "timeout": 10, "startPeriod": 5,
                                  "retries": 3}
    assert web["stopTimeout"] == 20
    assert web["logConfiguration"] == {"logDriver": "awslogs", "options": {"awslogs-group": "g"}}
    assert web["ulimits"] == [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048},
                              {"name": "nproc", "softLimit": 64, "hardLimit": 64}]


def test_pinned_image_replaces_build(tmp_path):
    out = convert({"web": {"build": ".", "image": "local:dev"}}, tmp_path, images={"web": "reg/app:1.2.3"})
    assert out.containers[0]["image"] == "reg/app:1.2.3"


# cap_add, devices, deploy, restart, profiles, sysctls, port ranges, host paths and tmpfs were refused here; ECS has
# them, and tests/test_compose_conversion.py checks what they convert to (issue 13).
@pytest.mark.parametrize("service, key", [
    ({"image": "x", "network_mode": "host"}, "network_mode"),
    ({"image": "x", "ports": ["8000-8010:80"]}, "ports"),
    ({"image": "x", "volumes": [{"type": "npipe", "source": "x", "target": "/t"}]}, "volumes"),
    ({"image": "x", "volumes": ["data:/d"]}, "volumes.data"),
    ({"image": "x", "networks": ["a"]}, "networks"),
    ({"image": "x", "secrets": ["s"]}, "secrets"),
    ({"image": "x", "configs": ["c"]}, "configs"),
    ({"image": "x", "container_name": "c"}, "container_name"),
    ({"image": "x", "pid": "host"}, "pid"),
    ({"build": "."}, "build"),
    ({"image": "x", "environment": {"FROM_SHELL": None}}, "environment.FROM_SHELL"),
    ({"image": "x", "mem_limit": "lots"}, "mem_limit"),
    ({"image": "x", "healthcheck": {"disable": True}}, "healthcheck.disable"),
    ({"image": "x", "depends_on": {"db": {"condition": "whenever"}}}, "depends_on.db.condition"),
])
def test_keys_without_equivalent_are_refused(tmp_path, service, key):
    with pytest.raises(UnsupportedComposeKey) as refused:
        convert({"svc": service}, tmp_path)
    assert refused.value.service == "svc" and refused.value.key == key
    assert f"compose service 'svc': key '{key}'" in refused.value.message


def test_interpolation_like_compose():
    values = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET} $SET ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} $$x", values) == "v v d d  $x"


def test_prod_compose_file_converts(tmp_path):
    model = read_compose_file(REPO / "docker/prod/compose.yml", {"DOCKYARD_IMAGE": "reg/app:1.0.0",
                                                                 "NGINX_IMAGE": "nginx:1", "DOCKYARD_PORT": "80"})
    out = container_definitions(model, images={"web": "reg/app:1.0.0"}, project_root=REPO,
                                compose_dir=REPO / "docker/prod", named_volumes={"static": "scratch"})
    nginx, web = out.containers
    assert nginx["portMappings"] == [{"containerPort": 80, "hostPort": 80}] and nginx["links"] == ["web"]
    assert web["image"] == "reg/app:1.0.0" and web["memory"] == 512
    assert out.shipped == {"docker/nginx/default.conf": REPO / "docker/nginx/default.conf"}
    doc = dockerrun_v2(out, auth=DockercfgLocation("b", "k"))
    assert doc["AWSEBDockerrunVersion"] == 2 and doc["authentication"] == {"bucket": "b", "key": "k"}
    pinned, shipped = pinned_compose(model, images={"web": "reg/app:1.0.0"}, project_root=REPO,
                                     compose_dir=REPO / "docker/prod")
    assert pinned["services"]["web"]["env_file"] == [".env"]
    assert "./docker/nginx/default.conf:/etc/nginx/conf.d/default.conf:ro" in pinned["services"]["nginx"]["volumes"]
    assert pinned["services"]["nginx"]["ports"] == ["80:80"]


def test_dockerrun_v1_v3_and_dockercfg_formats():
    v1 = dockerrun_v1("reg/app:1", container_port=8000, auth=DockercfgLocation("b", "k"))
    assert v1["Image"] == {"Name": "reg/app:1", "Update": "true"}
    assert v1["Authentication"] == {"Bucket": "b", "Key": "k"}
    assert v1["Ports"] == [{"ContainerPort": "8000", "HostPort": "80"}]
    assert dockerrun_v3(DockercfgLocation("b", "k")) == {"AWSEBDockerrunVersion": "3",
                                                         "Authentication": {"bucket": "b", "key": "k"}}
    legacy = json.loads(dockercfg("reg:5000", "u", "p", fmt="legacy"))
    assert legacy == {"reg:5000": {"auth": "dTpw", "email": ""}}
    assert json.loads(dockercfg("reg:5000", "u", "p", fmt="auths")) == {"auths": {"reg:5000": {"auth": "dTpw"}}}


def test_bundle_zip_is_deterministic_and_keeps_modes():
    files = (BundleFile("b.txt", b"b"), BundleFile(".platform/hooks/prebuild/01login.sh", b"#!/bin/sh", True),
             BundleFile("a.json", b"{}"))
    first, second = Bundle(files), Bundle(tuple(reversed(files)))
    assert first.zip_bytes() == second.zip_bytes() and first.digest == second.digest
    with zipfile.ZipFile(io.BytesIO(first.zip_bytes())) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == [".platform/hooks/prebuild/01login.sh", "a.json", "b.txt"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert (infos[0].external_attr >> 16) & 0o777 == 0o755 and (infos[1].external_attr >> 16) & 0o777 == 0o644


def test_label_reuse_and_conflict():
    version = AppVersion("1.0.0-abc", "b", "k", "UNPROCESSED", "", None)
    assert check_label(None, None, "b", "k", "d1") == (False, False)
    assert check_label(None, {"sha256": "d1"}, "b", "k", "d1") == (True, False)
    assert check_label(version, {"sha256": "d1"}, "b", "k", "d1") == (True, True)
    with pytest.raises(LabelConflict):
        check_label(version, {"sha256": "other"}, "b", "k", "d1")


# --- the wait, with a scripted client ------------------------------------------------------------------------------


class ScriptedClient:
    """Answers describe calls from a script of (events, state) per poll."""

    def __init__(self, script):
        self.script = list(script)
        self.polls = 0

    def events(self, application, environment, request_id="", since=None, max_records=100):
        return self.script[min(self.polls, len(self.script) - 1)][0]

    def environment(self, application, environment):
        state = self.script[min(self.polls, len(self.script) - 1)][1]
        self.polls += 1
        return state


def state(status, health, label):
    return EnvironmentState("env", "e-1", status, health, "", label, "", "")


def event(severity, message, second=0):
    return Event(datetime(2026, 1, 1, 0, 0, second, tzinfo=timezone.utc), severity, message, "env", "L", "r")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def run_wait(script, **policy):
    clock = Clock()
    said = []
    outcome = wait_for_update(ScriptedClient(script), "app", "env", "L", "r",
                              WaitPolicy(**{"health_window": 2, "timeout": 30, "poll_interval": 1, **policy}),
                              say=said.append, sleep=clock.sleep, clock=clock)
    return outcome, said, clock


def test_wait_requires_ready_our_label_and_a_healthy_window():
    outcome, said, clock = run_wait([
        ([], state("Updating", "Grey", "OLD")),
        ([event("INFO", "Environment update is starting.")], state("Ready", "Grey", "L")),
        ([], state("Ready", "Green", "L")), ([], state("Ready", "Green", "L")), ([], state("Ready", "Green", "L")),
    ])
    assert outcome.ok and clock.now == 4
    assert any("Environment update is starting." in s for s in said)


def test_wait_fails_fast_on_error_events_and_names_authentication():
    outcome, _, clock = run_wait([([event("ERROR", "Failed to pull Docker image x: unauthorized: authentication "
                                         "required")], state("Updating", "Grey", "OLD"))])
    assert outcome.result == "failed" and clock.now == 0
    assert outcome.detail.startswith("registry authentication failed")


def test_wait_fails_when_ready_with_another_label_or_red():
    outcome, _, _ = run_wait([([], state("Ready", "Green", "OLD"))])
    assert outcome.result == "failed" and "runs OLD, not L" in outcome.detail
    outcome, _, _ = run_wait([([], state("Ready", "Red", "L"))])
    assert outcome.result == "failed" and "Red" in outcome.detail


def test_wait_yellow_is_accepted_only_when_configured_and_times_out_otherwise():
    script = [([], state("Ready", "Yellow", "L"))]
    assert run_wait(script, healthy_states=("Green", "Yellow"))[0].ok
    outcome, _, clock = run_wait(script, timeout=5)
    assert outcome.result == "timeout" and clock.now == 5


def test_eb_secrets_are_stored_only_when_changed_and_only_our_options_are_removed():
    from dockyard.eb.secrets import plan_secrets

    arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/shop/prod/KEY"
    common = dict(backend="ssm", keys=("KEY",), names={"KEY": "/shop/prod/KEY"}, prefix="/shop/prod/",
                  current_plain={}, ssm_arn=lambda name: arn)
    same = plan_secrets(values={"KEY": "v1"}, current_secrets={"KEY": arn}, ssm_stored=lambda name: ("v1", 3),
                        **common)
    assert same.noop and same.refs == {"KEY": ("/shop/prod/KEY", arn, "3")}
    changed = plan_secrets(values={"KEY": "v2"}, current_secrets={"KEY": arn, "THEIRS": "arn:aws:ssm:eu-west-1:"
                           "123456789012:parameter/other/X"}, ssm_stored=lambda name: ("v1", 3), **common)
    assert [(w.name, w.value) for w in changed.writes] == [("/shop/prod/KEY", "v2")]
    assert not changed.changes_environment  # same ARN; someone else's secret option stays
    assert "v2" not in " ".join(changed.diff) and "v1" not in " ".join(changed.diff)
    dropped = plan_secrets(backend="ssm", keys=(), values={"KEY": "v1"}, names={}, prefix="/shop/prod/",
                           current_secrets={"KEY": arn}, current_plain={})
    assert dropped.options_to_remove == ({"Namespace": "aws:elasticbeanstalk:application:environmentsecrets",
                                          "OptionName": "KEY"},)
    assert dropped.plain and dropped.option_settings[0]["Value"] == "v1"  # set as a plain property, masked
