"""Adoption by configuration alone: tests/apps/tally (Node.js, runs as the user `node`, listens on 3000, and its
compose files build the Dockerfile's `dev` and `runtime` stages with `target:`).

The whole life through real `inv` only, against the real engine, registry, sshd, moto and the EB stand-in:
doctor, dev.start, dev.run, dev.test, prod.start, image.build, release, publish, staging.setup, staging.ssh-deploy,
a second version, staging.rollback, deploy (EB), ecs.render, ci.test. What a user checks: the page answers (as a
user who is not root, on port 3000), the stage built is the one the compose file names, none of the user's other
images was removed, and the generated deploy files carry no laptop port or host IP.
"""
from __future__ import annotations

import json
import zipfile

import pytest
from adopt import Adopted, adopt, docker, http_get, laptop_leaks, point_at_eb, remove_eb_environment, require_images

pytestmark = pytest.mark.engine

NODE_BASE = "dockyard-base/node:bookworm"
NODE_UID = 1000  # the base image's user `node`


@pytest.fixture
def tally(engine, registry, sshd_host, tmp_path):
    require_images(NODE_BASE)
    greetings = {env: {"TALLY_GREETING": f"hello from {env}"} for env in ("dev", "prod", "staging")}
    adopted = adopt("tally", tmp_path / "tally", registry=registry, sshd_host=sshd_host, env_values=greetings)
    yield adopted
    adopted.cleanup()


def whoami(adopted: Adopted, env: str, url: str | None = None) -> dict:
    code, body = http_get(url or adopted.url(env, "/whoami"))
    assert code == 200, (env, code, body)
    return json.loads(body)


def has_tests(image: str) -> bool:
    """Whether the image is the Dockerfile's `dev` stage (it has the tests) rather than `runtime`."""
    probe = docker("run", "--rm", "--entrypoint", "sh", image, "-c", "test -d /app/test")
    return probe.returncode == 0


def test_tally_whole_life_by_configuration_alone(tally, eb, tmp_path):
    user_image = f"{tally.repository}:my-experiment"
    docker("tag", NODE_BASE, user_image, check=True)

    doctor = tally.ok("doctor")
    assert "env file (dev)" in doctor.stdout and "FAIL" not in doctor.stdout

    # --- the laptop: the dev stage, source mounted, on the laptop's port -----------------------------------------
    tally.ok("dev.start")
    code, page = tally.get("dev", "/")
    assert code == 200 and "hello from dev" in page and "visits 1" in page
    assert whoami(tally, "dev") == {"uid": NODE_UID, "user": "node"}
    ran = tally.ok("dev.run", "id -u")  # a command as written; the container's user is the image's
    assert ran.stdout.strip().splitlines()[-1] == str(NODE_UID)
    tested = tally.ok("dev.test")
    assert "# pass 1" in tested.stdout and "# fail 0" in tested.stdout
    assert has_tests(f"{tally.repository}:dev")  # target: dev
    tally.ok("dev.down")

    tally.ok("prod.start")
    assert tally.get("prod", "/ping") == (200, "pong\n")
    assert "hello from prod" in tally.get("prod", "/")[1]
    assert whoami(tally, "prod")["uid"] == NODE_UID
    tally.ok("prod.down")

    tally.ok("image.build", "prod")
    assert not has_tests(f"{tally.repository}:prod")  # target: runtime

    # --- releases -----------------------------------------------------------------------------------------------
    tally.ok("release", "1.0.0")
    tally.ok("publish", "1.0.0")
    assert not has_tests(f"{tally.repository}:1.0.0")  # the release is the runtime stage too
    assert tally.registry.manifest_digest(f"dockyard-test/{tally.app}", "1.0.0")

    # --- staging over SSH: the image alone, behind the proxy, reached on ssh.app_port 3000 --------------------------
    tally.ok("staging.setup")
    tally.ok("staging.ssh-deploy", "--version", "1.0.0")
    code, page = tally.get("staging", "/")
    assert code == 200 and "<h1>Tally</h1>" in page and "hello from staging" in page and "version 1.0.0" in page
    assert whoami(tally, "staging")["uid"] == NODE_UID

    tally.edit("src/server.js", "const TITLE = 'Tally';", "const TITLE = 'Tally 2';", "a new title")
    tally.ok("release", "1.1.0")
    tally.ok("publish", "1.1.0")
    tally.ok("staging.ssh-deploy", "--version", "1.1.0")
    page = tally.get("staging", "/")[1]
    assert "<h1>Tally 2</h1>" in page and "version 1.1.0" in page

    back = tally.ok("staging.rollback")
    assert "1.0.0" in back.stdout
    page = tally.get("staging", "/")[1]
    assert "<h1>Tally</h1>" in page and "version 1.0.0" in page

    # --- production on Elastic Beanstalk -------------------------------------------------------------------------
    environment = point_at_eb(tally, eb, {"TALLY_GREETING": "hello from eb"})
    try:
        tally.ok("eb.dockercfg")
        bundle = tmp_path / "bundle.zip"
        tally.ok("eb.bundle", "--output", str(bundle))
        with zipfile.ZipFile(bundle) as archive:
            dockerrun = archive.read("Dockerrun.aws.json").decode()
        assert laptop_leaks(dockerrun, tally) == [], dockerrun
        assert json.loads(dockerrun)["containerDefinitions"][0]["portMappings"] == [
            {"containerPort": 3000, "hostPort": 80}]
        deployed = tally.ok("deploy", "--json", timeout=600)
        assert json.loads(deployed.stdout)["version"] == "1.1.0"
        code, page = http_get(eb.url(environment, "/"))
        assert code == 200 and "<h1>Tally 2</h1>" in page and "hello from eb" in page
        assert whoami(tally, "eb", eb.url(environment, "/whoami"))["uid"] == NODE_UID
    finally:
        remove_eb_environment(eb, environment)

    # --- ECS -------------------------------------------------------------------------------------------------------
    taskdef_file = tmp_path / "taskdef.json"
    tally.ok("ecs.render", "--output", str(taskdef_file))
    taskdef = taskdef_file.read_text()
    assert laptop_leaks(taskdef, tally) == [], taskdef
    (web,) = json.loads(taskdef)["containerDefinitions"]
    assert web["image"] == f"{tally.repository}:1.1.0" and web["portMappings"][0]["containerPort"] == 3000

    # --- CI: the dev stage, as the dev compose file builds it ------------------------------------------------------
    ci = tally.ok("ci.test", timeout=900)
    assert "# pass 1" in ci.stdout and "# fail 0" in ci.stdout

    tags = tally.image_tags()
    for tag in ("my-experiment", "dev", "prod", "1.0.0", "1.1.0"):
        assert f"{tally.repository}:{tag}" in tags, sorted(tags)
    assert tally.secrets_shown() == []  # no env value, no registry password, in anything any task printed
