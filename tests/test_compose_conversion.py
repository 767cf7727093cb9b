"""Issue 13, row by row: each compose key of its table, written in a compose file and read the two ways a deploy
reads it (Compose's own resolved model, and the fallback without Docker), converts to what ECS registers
(tests/ecs_rules.py) with every change of meaning said, or is refused in one line naming service, key and remedy."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import unavailable
from ecs_rules import violations

from dockyard.clients.compose import compose_resolver
from dockyard.compose_model import interpolate
from dockyard.containers import UnsupportedComposeKey, container_definitions, read_compose_file
from dockyard.eb.bundle import Bundle, BundleFile, describe
from dockyard.eb.dockerrun import pinned_compose
from dockyard.ecs.planner import render_task_definition
from dockyard.errors import ConfigError
from dockyard.runner import Runner

HAVE_COMPOSE = compose_resolver(Runner()) is not None


@pytest.fixture(params=["compose", "fallback"])
def use_compose(request) -> bool:
    """Each test reads its file both ways a deploy can: Compose's resolved model, and the fallback without Docker."""
    if request.param == "compose" and not HAVE_COMPOSE:
        unavailable("needs Docker Compose v2")
    return request.param == "compose"


def write(tmp_path: Path, services: dict, **top) -> Path:
    path = tmp_path / "compose.yml"
    path.write_text(yaml.safe_dump({"services": services, **top}, sort_keys=False))
    return path


def convert(tmp_path: Path, use_compose: bool, services: dict, *, variables: dict | None = None,
            named_volumes: dict | None = None, **top):
    path = write(tmp_path, services, **top)
    model = read_compose_file(path, variables or {}, use_compose=use_compose)
    out = container_definitions(model, project_root=tmp_path, compose_dir=tmp_path,
                                named_volumes=named_volumes or {}, volumes_setting="dockyard.ecs.volumes")
    assert violations(render_task_definition("t", out)) == []
    return out


def container(out, name="web"):
    return next(c for c in out.containers if c["name"] == name)


def changes(out) -> list[str]:
    return [str(c) for c in out.changes]


def refusal(tmp_path: Path, use_compose: bool, services: dict, **kwargs) -> UnsupportedComposeKey:
    with pytest.raises(UnsupportedComposeKey) as refused:
        convert(tmp_path, use_compose, services, **kwargs)
    assert "\n" not in refused.value.message
    return refused.value


# --- crashes (tracebacks) --------------------------------------------------------------------------------------------

def test_directory_bind_mount_ships_every_file_under_it(tmp_path, use_compose):
    (tmp_path / "angular" / "src").mkdir(parents=True)
    (tmp_path / "angular" / "package.json").write_text("{}")
    (tmp_path / "angular" / "src" / "main.ts").write_text("x")
    out = convert(tmp_path, use_compose, {"web": {"image": "node:20", "volumes": ["./angular:/project"]}})
    assert container(out)["mountPoints"] == [{"sourceVolume": "angular", "containerPath": "/project",
                                              "readOnly": False}]
    assert out.volumes == ({"name": "angular", "host": {"sourcePath": "/var/app/current/angular"}},)
    assert out.shipped == {"angular/package.json": tmp_path / "angular/package.json",
                           "angular/src/main.ts": tmp_path / "angular/src/main.ts"}
    model = read_compose_file(tmp_path / "compose.yml", {}, use_compose=use_compose)
    pinned, shipped = pinned_compose(model, images={}, project_root=tmp_path, compose_dir=tmp_path)
    assert pinned["services"]["web"]["volumes"] == ["./angular:/project"] and shipped == out.shipped


def test_extra_hosts_with_equals_sign(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", "extra_hosts": ["db.local=10.0.0.5", "a:1.2.3.4"]}})
    assert container(out)["extraHosts"] == [{"hostname": "a", "ipAddress": "1.2.3.4"},
                                            {"hostname": "db.local", "ipAddress": "10.0.0.5"}]


def test_expose_range_becomes_one_mapping_per_port_and_is_said(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", "expose": ["3000-3005"]}})
    assert container(out)["portMappings"] == [{"containerPort": p} for p in range(3000, 3006)]
    assert any("expose: 3000-3005 becomes a port mapping" in c for c in changes(out))


def test_published_range_for_one_port_is_refused_in_one_line(tmp_path, use_compose):
    refused = refusal(tmp_path, use_compose, {"web": {"image": "x", "ports": [{"target": 80, "published": "8000-8010"}]}})
    assert refused.key == "ports" and "publish one host port" in refused.message


def test_published_range_onto_a_range_maps_each_port(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", "ports": ["8000-8002:9000-9002/udp"]}})
    assert container(out)["portMappings"] == [{"containerPort": 9000 + n, "hostPort": 8000 + n, "protocol": "udp"}
                                              for n in range(3)]


# --- values ECS rejects at registration ------------------------------------------------------------------------------

def test_health_check_values_are_moved_into_ecs_ranges_and_said(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", "healthcheck": {
        "test": ["CMD", "true"], "interval": "3s", "timeout": "1s", "retries": 20, "start_period": "10m"}}})
    assert container(out)["healthCheck"] == {"command": ["CMD", "true"], "interval": 5, "timeout": 2, "retries": 10,
                                             "startPeriod": 300}
    said = changes(out)
    assert "compose service 'web': healthcheck.interval: 3 s set to 5 s (ECS allows 5-300 s)" in said
    assert any("healthcheck.timeout: 1 s set to 2 s" in c for c in said)
    assert any("healthcheck.retries: 20 set to 10" in c for c in said)
    assert any("healthcheck.start_period: 600 s set to 300 s" in c for c in said)


def test_completed_successfully_makes_the_job_non_essential(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {
        "web": {"image": "x", "depends_on": {"migrate": {"condition": "service_completed_successfully"}}},
        "migrate": {"image": "x", "command": "manage.py migrate"}})
    assert container(out)["dependsOn"] == [{"containerName": "migrate", "condition": "SUCCESS"}]
    assert container(out, "migrate")["essential"] is False and container(out)["essential"] is True
    assert any(c.startswith("compose service 'migrate': essential: false") for c in changes(out))


def test_service_healthy_needs_a_declared_healthcheck(tmp_path, use_compose):
    refused = refusal(tmp_path, use_compose, {"web": {"image": "x", "depends_on": {"db": {"condition": "service_healthy"}}},
                                              "db": {"image": "postgres"}})
    assert refused.key == "depends_on.db" and "declare one" in refused.message


def test_local_log_driver_becomes_json_file_and_unknown_drivers_are_refused(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", "logging": {"driver": "local",
                                                                            "options": {"max-size": "10m"}}}})
    assert container(out)["logConfiguration"] == {"logDriver": "json-file", "options": {"max-size": "10m"}}
    assert any("logging.driver: local is not an ECS log driver" in c for c in changes(out))
    refused = refusal(tmp_path, use_compose, {"web": {"image": "x", "logging": {"driver": "none"}}})
    assert refused.key == "logging.driver" and "awslogs" in refused.message


def test_invalid_container_name_is_renamed_and_references_follow(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web.app": {"image": "x"},
                                          "proxy": {"image": "nginx", "links": ["web.app"], "depends_on": ["web.app"]}})
    assert {c["name"] for c in out.containers} == {"web-app", "proxy"}
    assert container(out, "proxy")["links"] == ["web-app"]
    assert container(out, "proxy")["dependsOn"] == [{"containerName": "web-app", "condition": "START"}]
    assert any("compose service 'web.app': name: renamed to 'web-app'" in c for c in changes(out))


def test_reserved_host_port_is_refused(tmp_path, use_compose):
    refused = refusal(tmp_path, use_compose, {"web": {"image": "x", "ports": ["22:22"]}})
    assert refused.key == "ports" and "ECS reserves" in refused.message


def test_memory_below_docker_minimum_is_raised_and_reservation_above_limit_refused(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", "mem_limit": "2m"}})
    assert container(out)["memory"] == 6 and "compose service 'web': mem_limit: 2 MiB raised to 6 MiB (the least " \
        "Docker 20.10 accepts)" in changes(out)
    refused = refusal(tmp_path, use_compose, {"web": {"image": "x", "mem_limit": "256m", "mem_reservation": "512m"}})
    assert refused.key == "mem_reservation"


# --- silent changes of meaning -----------------------------------------------------------------------------------------

def test_dropped_host_ip_is_said(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", "ports": ["127.0.0.1:8080:80"]}})
    assert container(out)["portMappings"] == [{"containerPort": 80, "hostPort": 8080}]
    assert "compose service 'web': ports: host IP 127.0.0.1 of 8080:80 dropped: ECS publishes the port on every " \
           "interface of the instance (restrict it with the security group)" in changes(out)


def test_running_dependencies_are_linked_so_their_names_resolve_and_the_rest_is_said(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {
        "web": {"image": "x", "depends_on": {"db": {"condition": "service_started"},
                                             "migrate": {"condition": "service_completed_successfully"}}},
        "db": {"image": "postgres"}, "migrate": {"image": "x"}, "cache": {"image": "redis"}})
    assert container(out)["links"] == ["db"]  # never the job: Docker cannot link to a stopped container
    assert "compose service 'web': links: cannot resolve cache, migrate by name on ECS (bridge mode resolves only " \
           "links; Compose's network resolved every service): add depends_on or links if it connects to them" \
           in changes(out)


def test_expose_is_said_to_be_published(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", "expose": ["9000"]}})
    assert container(out)["portMappings"] == [{"containerPort": 9000}]
    assert changes(out) == [("compose service 'web': expose: 9000 becomes a port mapping: in bridge mode ECS publishes "
                             "it on a dynamic host port, where Compose only opened it to other services")]


def test_named_volume_without_a_decision_is_refused_never_scratch(tmp_path, use_compose):
    services = {"db": {"image": "postgres", "volumes": ["db-data:/var/lib/postgresql/data"]}}
    refused = refusal(tmp_path, use_compose, services, volumes={"db-data": None})
    assert refused.key == "volumes.db-data"
    assert "set dockyard.ecs.volumes.db-data to scratch" in refused.message


@pytest.mark.parametrize("decision, volume", [
    ("scratch", {"name": "db-data"}),
    ("shared", {"name": "db-data", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True,
                                                                 "driver": "local"}}),
    ("/srv/db", {"name": "db-data", "host": {"sourcePath": "/srv/db"}}),
    ({"efs": "fs-12345678", "root": "/db", "access_point": "fsap-1"},
     {"name": "db-data", "efsVolumeConfiguration": {"fileSystemId": "fs-12345678", "rootDirectory": "/db",
                                                    "transitEncryption": "ENABLED",
                                                    "authorizationConfig": {"accessPointId": "fsap-1"}}}),
])
def test_named_volume_becomes_what_the_setting_decides(tmp_path, use_compose, decision, volume):
    services = {"db": {"image": "postgres", "volumes": ["db-data:/var/lib/postgresql/data"]}}
    out = convert(tmp_path, use_compose, services, volumes={"db-data": None}, named_volumes={"db-data": decision})
    assert out.volumes == (volume,)
    assert container(out, "db")["mountPoints"] == [{"sourceVolume": "db-data",
                                                    "containerPath": "/var/lib/postgresql/data", "readOnly": False}]


def test_volume_decision_setting_is_validated():
    from dockyard.named_volumes import parse_decisions

    with pytest.raises(ConfigError) as bad:
        parse_decisions({"db-data": "keep"}, "dockyard.eb.volumes")
    assert bad.value.message.startswith("dockyard.eb.volumes.db-data: expected scratch, shared")


# --- refused, though ECS has it ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, expected", [
    ("restart", "always", {"restartPolicy": {"enabled": True}}),
    ("restart", "on-failure", {"restartPolicy": {"enabled": True, "ignoredExitCodes": [0]}}),
    ("deploy", {"resources": {"limits": {"memory": "1g", "cpus": "0.5"}, "reservations": {"memory": "512m"}}},
     {"memory": 1024, "memoryReservation": 512, "cpu": 512}),
    ("cpus", 1.5, {"cpu": 1536}),
    ("mem_reservation", "128m", {"memoryReservation": 128}),
    ("init", True, {"linuxParameters": {"initProcessEnabled": True}}),
    ("cap_add", ["NET_ADMIN", "CAP_SYS_TIME"], {"linuxParameters": {"capabilities": {"add": ["NET_ADMIN",
                                                                                            "SYS_TIME"]}}}),
    ("cap_drop", ["ALL"], {"linuxParameters": {"capabilities": {"drop": ["ALL"]}}}),
    ("sysctls", {"net.core.somaxconn": 1024}, {"systemControls": [{"namespace": "net.core.somaxconn",
                                                                   "value": "1024"}]}),
    ("tmpfs", ["/run:size=64m"], {"linuxParameters": {"tmpfs": [{"containerPath": "/run", "size": 64}]}}),
    ("ulimits", {"nofile": {"soft": 1024, "hard": 2048}},
     {"ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}]}),
    ("stop_grace_period", "1m", {"stopTimeout": 60}),
    ("working_dir", "/srv", {"workingDirectory": "/srv"}),
    ("user", "1000:1000", {"user": "1000:1000"}),
    ("read_only", True, {"readonlyRootFilesystem": True}),
    ("shm_size", "256m", {"linuxParameters": {"sharedMemorySize": 256}}),
    ("privileged", True, {"privileged": True}),
    ("labels", {"team": "web"}, {"dockerLabels": {"team": "web"}}),
    ("dns", ["10.0.0.2"], {"dnsServers": ["10.0.0.2"]}),
    ("dns_search", "corp.example", {"dnsSearchDomains": ["corp.example"]}),
    ("hostname", "web1", {"hostname": "web1"}),
    ("devices", ["/dev/fuse"], {"linuxParameters": {"devices": [{"hostPath": "/dev/fuse", "containerPath": "/dev/fuse",
                                                                 "permissions": ["read", "write", "mknod"]}]}}),
    ("security_opt", ["no-new-privileges:true"], {"dockerSecurityOptions": ["no-new-privileges"]}),
    ("x-team", "web", {}),
])
def test_key_ecs_has_converts(tmp_path, use_compose, key, value, expected):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", key: value}})
    got = container(out)
    for field, want in expected.items():
        assert got[field] == want, field
    if key.startswith("x-"):
        assert set(got) == {"name", "image", "essential", "memory"}


def test_absolute_host_path_is_mounted_from_the_instance_and_said(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", "volumes": ["/var/run/docker.sock:/var/run/docker.sock:ro"]}})
    assert out.volumes == ({"name": "var-run-docker-sock", "host": {"sourcePath": "/var/run/docker.sock"}},)
    assert container(out)["mountPoints"] == [{"sourceVolume": "var-run-docker-sock",
                                              "containerPath": "/var/run/docker.sock", "readOnly": True}]
    assert any("it is mounted from the container instance" in c for c in changes(out)) and not out.shipped


def test_volumes_from_and_restart_is_said(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", "volumes_from": ["data:ro"], "restart": "always"},
                                          "data": {"image": "busybox", "volumes": ["/data"]}})
    assert container(out)["volumesFrom"] == [{"sourceContainer": "data", "readOnly": True}]
    assert any(c.startswith("compose service 'web': restart: always becomes ECS's restartPolicy") for c in changes(out))


def test_tmpfs_volume_without_size_gets_the_containers_memory_and_is_said(tmp_path, use_compose):
    out = convert(tmp_path, use_compose, {"web": {"image": "x", "mem_limit": "128m",
                                                  "volumes": [{"type": "tmpfs", "target": "/cache"}]}})
    assert container(out)["linuxParameters"] == {"tmpfs": [{"containerPath": "/cache", "size": 128}]}
    assert any("tmpfs: /cache has no size" in c for c in changes(out))


@pytest.mark.parametrize("key, value, remedy", [
    ("container_name", "web1", "remove it"),
    ("runtime", "runc", "remove it"),
    ("networks", ["front"], "remove networks"),
    ("stop_signal", "SIGINT", "STOPSIGNAL"),
    ("network_mode", "host", "remove it"),
])
def test_keys_without_ecs_meaning_are_refused_with_a_remedy(tmp_path, use_compose, key, value, remedy):
    top = {"networks": {"front": {}}} if key == "networks" else {}
    refused = refusal(tmp_path, use_compose, {"web": {"image": "x", key: value}}, **top)
    assert refused.key == key and refused.message.startswith(f"compose service 'web': key '{key}'")
    assert remedy in refused.message


# --- reading ---------------------------------------------------------------------------------------------------------

def test_compose_v1_file_is_named_as_such(tmp_path, use_compose):
    path = tmp_path / "compose.yml"
    path.write_text("web:\n  image: x\n  ports: ['80:80']\n")
    with pytest.raises(ConfigError) as refused:
        read_compose_file(path, {}, use_compose=use_compose)
    assert "compose v1 format" in refused.value.message and "under a top-level `services:` key" in refused.value.message


def test_interpolation_is_composes(tmp_path, use_compose):
    path = write(tmp_path, {"web": {"image": "${A:-${B}}", "environment": {"ALT": "${A:+x}", "SET": "${B:+yes}",
                                                                             "PORT": "${P-80}", "LIT": "$$HOME"}}})
    model = read_compose_file(path, {"B": "b"}, use_compose=use_compose)
    web = model["services"]["web"]
    assert web["image"] == "b"
    assert web["environment"] == {"ALT": "", "SET": "yes", "PORT": "80", "LIT": "$HOME"}


def test_fallback_interpolation_nests_and_alternates():
    values = {"B": "b", "E": ""}
    assert interpolate("${A:-${B}} ${A:+x} ${B:+y} ${E+set} ${E:+no}|$$B", values) == "b  y set |$B"
    with pytest.raises(ConfigError):
        interpolate("${A:?give A}", values, "f")


def test_env_file_values_never_reach_the_model(tmp_path, use_compose):
    (tmp_path / "app.env").write_text("SECRET=hunter22\n")
    path = write(tmp_path, {"web": {"image": "x", "env_file": ["app.env"], "environment": {"A": "1"}}})
    model = read_compose_file(path, {}, use_compose=use_compose)
    assert model["services"]["web"]["environment"] == {"A": "1"}
    assert model["services"]["web"]["env_file"] == ["app.env"]
    assert "hunter22" not in repr(model)


def test_callers_shell_variables_do_not_leak_into_composes_model(tmp_path, monkeypatch):
    if not HAVE_COMPOSE:
        unavailable("needs Docker Compose v2")
    monkeypatch.setenv("LEAKED", "from-the-shell")
    (tmp_path / ".env").write_text("DOTENV=from-dotenv\n")
    path = write(tmp_path, {"web": {"image": "x", "environment": {"L": "${LEAKED:-none}", "D": "${DOTENV:-none}"}}})
    assert read_compose_file(path, {}, use_compose=True)["services"]["web"]["environment"] == {"L": "none", "D": "none"}


def test_yaml_reads_ports_as_compose_does(tmp_path, use_compose):
    path = tmp_path / "compose.yml"
    path.write_text(textwrap.dedent("""\
        services:
          web:
            image: x
            ports:
              - 8080:80
    """))
    out = container_definitions(read_compose_file(path, {}, use_compose=use_compose), project_root=tmp_path,
                                compose_dir=tmp_path)
    assert out.containers[0]["portMappings"] == [{"containerPort": 80, "hostPort": 8080}]  # not 8080*60+80


# --- where the changes are shown ---------------------------------------------------------------------------------------

def test_bundle_description_lists_each_change_of_meaning():
    bundle = Bundle((BundleFile("Dockerrun.aws.json", b"{}"),), ("compose service 'web': expose: 9000 becomes x",))
    text = describe(bundle)
    assert "changes of meaning (Compose -> ECS):\n  warning: compose service 'web': expose: 9000 becomes x" in text


def test_deploy_dry_run_report_carries_the_changes_of_meaning():
    from dockyard.eb.deploy import dry_run_report

    bundle = Bundle((BundleFile("Dockerrun.aws.json", b"{}"),), ("compose service 'web': restart: always becomes x",))
    assert "  warning: compose service 'web': restart: always becomes x" in dry_run_report(bundle, "")
