"""One compose file, three targets: `inv eb.bundle --platform v2`, `--platform compose` and `inv ecs.render` give the
same containers, images, ports and volumes (issue 13), and the changes of meaning are said on the way."""
from __future__ import annotations

import json
import zipfile

import yaml
from fixtures.eb import tag_release

from dockyard.compose_model import normalize

COMPOSE = """\
services:
  web:
    image: ${DOCKYARD_IMAGE:-sample:dev}
    build: {context: ../.., dockerfile: docker/app/Dockerfile}
    env_file: [../../environments/prod/.env]
    volumes:
      - static:/app/staticfiles-shared
      - uploads:/app/uploads
      - ../conf:/etc/app:ro
    expose: ["9000"]
    restart: always
    mem_limit: 512m
  nginx:
    image: ${NGINX_IMAGE:-nginx:1.27}
    volumes:
      - ../nginx/default.conf:/etc/nginx/conf.d/default.conf:ro
      - static:/srv/static:ro
    ports:
      - "127.0.0.1:${DOCKYARD_PORT:-8080}:80"
      - "5353:53/udp"
    links: [web]
    depends_on: [web]
    mem_limit: 128m
volumes:
  static:
  uploads:
"""
VOLUMES = {"static": "scratch", "uploads": "shared"}


def view_of_definitions(containers: list[dict], volumes: list[dict]) -> dict:
    """{container: (image, ports, mounts)} of ECS container definitions, mounts named as the compose file does."""
    sources = {}
    for volume in volumes:
        path = (volume.get("host") or {}).get("sourcePath", "")
        sources[volume["name"]] = f"project:{path.removeprefix('/var/app/current/')}" if path else \
            f"volume:{volume['name']}"
    return {c["name"]: (c["image"],
                        sorted((p["containerPort"], p.get("hostPort"), p.get("protocol", "tcp"))
                               for p in c.get("portMappings") or []),
                        sorted((m["containerPath"], sources[m["sourceVolume"]], m["readOnly"])
                               for m in c.get("mountPoints") or []))
            for c in containers}


def view_of_compose(text: str) -> dict:
    model = normalize(yaml.safe_load(text))
    view = {}
    for name, service in model["services"].items():
        ports = [(p["target"], int(p["published"]) if p.get("published") else None, p.get("protocol", "tcp"))
                 for p in service.get("ports") or []]
        ports += [(int(e), None, "tcp") for e in service.get("expose") or []]
        mounts = []
        for volume in service.get("volumes") or []:
            source = f"project:{volume['source'][2:]}" if volume["type"] == "bind" else f"volume:{volume['source']}"
            mounts.append((volume["target"], source, bool(volume.get("read_only"))))
        view[name] = (service["image"], sorted(ports), sorted(mounts))
    return view


def test_v2_bundle_compose_bundle_and_ecs_render_agree(sample_project, tmp_path):
    (sample_project.root / "docker/prod/compose.yml").write_text(COMPOSE)
    (sample_project.root / "docker/conf").mkdir()
    (sample_project.root / "docker/conf/app.ini").write_text("[app]\n")
    sample_project.configure({"dockyard": {
        "eb": {"auth": "none", "volumes": VOLUMES},
        "ecs": {"volumes": VOLUMES},
        # the EB bundle publishes DOCKYARD_PORT=80 whatever the environment's port; ecs.render takes the
        # environment's (the shared compose entry point is to make the variables one), so both are 80 here
        "environments": {"prod": {"target": "eb", "port": 80}},
    }})
    tag_release(sample_project, "1.0.0")

    v2 = sample_project.inv("eb.bundle", "--platform", "v2", "--output", str(tmp_path / "v2.zip"))
    assert v2.returncode == 0, v2.stderr
    compose = sample_project.inv("eb.bundle", "--platform", "compose", "--output", str(tmp_path / "compose.zip"))
    assert compose.returncode == 0, compose.stderr
    render = sample_project.inv("ecs.render", "--version", "1.0.0")
    assert render.returncode == 0, render.stderr

    with zipfile.ZipFile(tmp_path / "v2.zip") as archive:
        dockerrun = json.loads(archive.read("Dockerrun.aws.json"))
        v2_files = set(archive.namelist())
    with zipfile.ZipFile(tmp_path / "compose.zip") as archive:
        pinned = archive.read("docker-compose.yml").decode()
        compose_files = set(archive.namelist())
    payload = json.loads(render.stdout)

    from_v2 = view_of_definitions(dockerrun["containerDefinitions"], dockerrun["volumes"])
    from_render = view_of_definitions(payload["containerDefinitions"], payload["volumes"])
    from_compose = view_of_compose(pinned)
    image = f"{sample_project.repository}:1.0.0"
    assert from_v2["web"][0] == image
    assert from_v2 == from_compose == from_render
    assert from_v2["nginx"][1] == [(53, 5353, "udp"), (80, 80, "tcp")]
    # the files both bundles ship: the nginx config and every file of the mounted directory
    assert {"docker/nginx/default.conf", "docker/conf/app.ini"} <= v2_files & compose_files
    assert {v["name"]: v for v in payload["volumes"]}["uploads"]["dockerVolumeConfiguration"]["scope"] == "shared"

    # every change of meaning is said where the ECS form is made, never in the compose bundle (Compose runs it as is)
    for said in (v2.stderr + v2.stdout, render.stderr):
        assert "compose service 'nginx': ports: host IP 127.0.0.1" in said
        assert "compose service 'web': expose: 9000 becomes a port mapping" in said
        assert "compose service 'web': restart: always becomes ECS's restartPolicy" in said
    assert "changes of meaning" not in compose.stderr + compose.stdout


def test_named_volume_without_a_decision_stops_the_bundle_in_one_line(sample_project, tmp_path):
    (sample_project.root / "docker/prod/compose.yml").write_text(COMPOSE.replace("../conf:/etc/app:ro", "/tmp:/t"))
    sample_project.configure({"dockyard": {"eb": {"auth": "none", "volumes": {"static": "scratch"}},
                                           "environments": {"prod": {"target": "eb"}}}})
    tag_release(sample_project, "1.0.0")
    made = sample_project.inv("eb.bundle", "--platform", "v2", "--output", str(tmp_path / "x.zip"))
    lines = made.stderr.strip().splitlines()
    assert made.returncode == 2 and len(lines) == 1, made.stderr
    assert "compose service 'web': key 'volumes.uploads' is a named volume" in lines[0]
    assert "set dockyard.eb.volumes.uploads to scratch" in lines[0]
    assert not (tmp_path / "x.zip").exists()


LAPTOP_COMPOSE = """\
services:
  web:
    image: ${DOCKYARD_IMAGE:-sample:dev}
    build: {context: ../.., dockerfile: docker/app/Dockerfile}
    ports:
      - "127.0.0.1:${DOCKYARD_PORT:-18080}:8000"
"""


def test_the_laptops_port_bindings_never_reach_the_generated_files(sample_project, tmp_path):
    (sample_project.root / "docker/prod/compose.yml").write_text(LAPTOP_COMPOSE)
    sample_project.configure({"dockyard": {
        "eb": {"auth": "none"}, "ecs": {"host_port": 8081},
        "environments": {"prod": {"target": "eb", "port": 18080}},
    }})
    tag_release(sample_project, "1.0.0")
    made = sample_project.inv("eb.bundle", "--platform", "compose", "--output", str(tmp_path / "compose.zip"))
    assert made.returncode == 0, made.stderr
    with zipfile.ZipFile(tmp_path / "compose.zip") as archive:
        pinned = archive.read("docker-compose.yml").decode()
    assert yaml.safe_load(pinned)["services"]["web"]["ports"] == ["80:8000"]  # eb.host_port, on every interface
    render = sample_project.inv("ecs.render", "--version", "1.0.0")
    assert render.returncode == 0, render.stderr
    mappings = json.loads(render.stdout)["containerDefinitions"][0]["portMappings"]
    assert mappings == [{"containerPort": 8000, "hostPort": 8081}]  # ecs.host_port
    for text in (pinned, render.stdout):
        assert "18080" not in text and "127.0.0.1:80" not in text  # (the registry is 127.0.0.1:5000)


def test_bundle_without_output_leaves_the_tree_clean(sample_project):
    sample_project.configure({"dockyard": {"eb": {"auth": "none"}, "environments": {"prod": {"target": "eb"}}}})
    sample_project.commit("eb settings")
    tag_release(sample_project, "1.0.0")
    made = sample_project.inv("eb.bundle", "--platform", "v1")
    assert made.returncode == 0, made.stderr
    written = made.stdout.split("wrote ", 1)[1].split(" (", 1)[0]
    assert sample_project.git("status", "--porcelain").stdout == ""  # so the next `release` is not refused
    assert not written.startswith(str(sample_project.root))
    import os

    os.remove(written)
