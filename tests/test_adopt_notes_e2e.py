"""Adoption by configuration alone: tests/apps/notes (Flask, ENTRYPOINT, a worker, MariaDB, a named volume).

The whole life through real `inv` only, against the real engine, registry, sshd, moto and the EB stand-in:
doctor, dev.start, dev.run, dev.test, prod.start, image.build, release, publish, staging.setup, staging.ssh-deploy,
a second version, staging.rollback, deploy (EB), ecs.render, ci.test. What a user checks: the page answers, the
worker ran, the data survived, none of the user's other images was removed, and the generated deploy files carry
no laptop port or host IP.
"""
from __future__ import annotations

import json

import pytest
from adopt import (
    Adopted,
    Later,
    adopt,
    docker,
    http_get,
    laptop_leaks,
    point_at_eb,
    remove_eb_environment,
    require_images,
)
from fixtures.eb import wait_for

pytestmark = pytest.mark.engine

FLASK_BASE, MARIADB_BASE = "dockyard-base/flask:bookworm", "dockyard-base/mariadb:bookworm"
SECRETS = {"MYSQL_PASSWORD": "notes-pw-3b7f", "MYSQL_ROOT_PASSWORD": "notes-root-9c1d"}
STAGING = {"MYSQL_PASSWORD": "staging-pw-51e0", "MYSQL_ROOT_PASSWORD": "staging-root-7a2c"}


@pytest.fixture
def notes(engine, registry, sshd_host, tmp_path):
    require_images(FLASK_BASE, MARIADB_BASE)
    adopted = adopt("notes", tmp_path / "notes", registry=registry, sshd_host=sshd_host,
                    env_values={"dev": SECRETS, "prod": SECRETS, "staging": STAGING})
    yield adopted
    adopted.cleanup()


def status(adopted: Adopted, env: str, url: str | None = None) -> dict:
    code, body = http_get(url or adopted.url(env, "/status.json"))
    assert code == 200, (env, code, body[-500:])
    return json.loads(body)


def worker_beats(adopted: Adopted, env: str, url: str | None = None, *, timeout: float = 60) -> dict:
    """The workers the page reports, once at least one has run twice (the worker beats every 2 seconds)."""
    seen: dict = {}

    def ran() -> bool:
        seen.update(status(adopted, env, url)["workers"])
        return any(count >= 2 for count in seen.values())

    assert wait_for(ran, timeout=timeout, interval=1), seen
    return seen


def staging_workers(adopted: Adopted) -> dict:
    """The workers staging's page reports, after giving a worker time for two beats."""
    try:
        return worker_beats(adopted, "staging", timeout=15)
    except AssertionError:
        return status(adopted, "staging")["workers"]


def test_notes_whole_life_by_configuration_alone(notes, eb, tmp_path):
    user_image = f"{notes.repository}:my-experiment"  # the user's own image of the repository: nothing removes it
    docker("tag", FLASK_BASE, user_image, check=True)

    doctor = notes.ok("doctor")
    assert "env file (dev)" in doctor.stdout and "FAIL" not in doctor.stdout

    # --- the laptop -------------------------------------------------------------------------------------------
    notes.ok("dev.start")
    code, page = notes.get("dev", "/")
    assert code == 200 and "<h1>Notes</h1>" in page
    assert worker_beats(notes, "dev")  # the worker service, from the web service's image, ran
    checked = notes.ok("dev.run", "python3 -m notes check")  # as written, not through ENTRYPOINT python3 -m notes
    assert "database ok" in checked.stdout
    tested = notes.ok("dev.test")
    assert "Ran 2 tests" in tested.stdout + tested.stderr and "OK" in tested.stdout + tested.stderr
    notes.ok("dev.stop")

    notes.ok("prod.start")
    assert notes.get("prod", "/healthz") == (200, "ok\n")
    assert worker_beats(notes, "prod")
    notes.ok("prod.down", "--volumes")

    built = notes.ok("image.build", "prod")
    assert f"{notes.repository}:prod" in notes.image_tags(), built.stdout

    # --- releases -----------------------------------------------------------------------------------------------
    notes.ok("release", "1.0.0")
    notes.ok("publish", "1.0.0")
    assert notes.registry.manifest_digest(f"dockyard-test/{notes.app}", "1.0.0")

    # --- staging over SSH: compose.prod.yml's web app, its worker, the attachments volume, mariadb (an accessory) --
    setup = notes.ok("staging.setup")
    assert "mariadb" in setup.stdout
    notes.ok("staging.ssh-deploy", "--version", "1.0.0")
    assert notes.get("staging", "/healthz") == (200, "ok\n")
    assert notes.get("staging", "/", method="GET")[0] == 200
    assert http_get(notes.url("staging", "/notes"), method="POST", data=b"written on 1.0.0")[0] == 201
    assert http_get(notes.url("staging", "/attachments/plan.txt"), method="PUT", data=b"kept")[0] == 201
    # The worker and the volume on staging (checked at the end, so a failure here still lets the rest run).
    later = Later()
    staged = notes.staging_containers()
    later.check(staged.get(f"{notes.staging_prefix}-worker-1.0.0") == "running", "staging runs the worker 1.0.0",
                staged)
    later.check(any(n.startswith("1.0.0@") for n in staging_workers(notes)), "the staging worker 1.0.0 ran",
                status(notes, "staging")["workers"])

    notes.edit("notes/web.py", 'TITLE = "Notes"', 'TITLE = "Notes, with attachments"', "a new title")
    notes.ok("release", "1.1.0")
    notes.ok("publish", "1.1.0")
    notes.ok("staging.ssh-deploy", "--version", "1.1.0")
    after = status(notes, "staging")
    assert after["title"] == "Notes, with attachments" and after["version"] == "1.1.0"
    assert "written on 1.0.0" in after["notes"]  # the accessory's database was kept
    later.check("plan.txt" in after["files"], "the attachments volume survived the deploy of 1.1.0", after["files"])
    staged = notes.staging_containers()
    later.check(staged.get(f"{notes.staging_prefix}-worker-1.1.0") == "running", "staging runs the worker 1.1.0",
                staged)
    later.check(staged.get(f"{notes.staging_prefix}-worker-1.0.0") != "running",
                "the worker 1.0.0 stopped when 1.1.0 took over", staged)
    later.check(any(n.startswith("1.1.0@") for n in staging_workers(notes)), "the staging worker 1.1.0 ran",
                status(notes, "staging")["workers"])

    back = notes.ok("staging.rollback")
    assert "1.0.0" in back.stdout
    rolled = status(notes, "staging")
    assert (rolled["title"], rolled["version"]) == ("Notes", "1.0.0")
    assert "written on 1.0.0" in rolled["notes"]
    later.check("plan.txt" in rolled["files"], "the attachments volume survived the rollback too", rolled["files"])
    later.check(docker("volume", "inspect", f"{notes.staging_prefix}-attachments").returncode == 0,
                f"the named volume {notes.staging_prefix}-attachments exists on the host")

    # --- production on Elastic Beanstalk (the v2 bundle from compose.prod.yml: web, worker, mariadb) ---------------
    environment = point_at_eb(notes, eb, {"MYSQL_DATABASE": "notes_db", "MYSQL_USER": "notes_app", **SECRETS})
    try:
        notes.ok("eb.dockercfg")
        bundle = tmp_path / "bundle.zip"
        notes.ok("eb.bundle", "--output", str(bundle))
        import zipfile

        with zipfile.ZipFile(bundle) as archive:
            dockerrun = archive.read("Dockerrun.aws.json").decode()
        assert laptop_leaks(dockerrun, notes) == [], dockerrun
        deployed = notes.ok("deploy", "--json", timeout=600)
        assert json.loads(deployed.stdout)["version"] == "1.1.0"
        live = eb.url(environment, "/status.json")
        assert status(notes, "eb", live)["title"] == "Notes, with attachments"
        assert worker_beats(notes, "eb", live)
    finally:
        remove_eb_environment(eb, environment)

    # --- ECS: the task definition generated from the same compose file -------------------------------------------
    taskdef_file = tmp_path / "taskdef.json"
    notes.ok("ecs.render", "--output", str(taskdef_file))
    taskdef = taskdef_file.read_text()
    assert laptop_leaks(taskdef, notes) == [], taskdef
    containers = {c["name"]: c for c in json.loads(taskdef)["containerDefinitions"]}
    assert set(containers) == {"web", "worker", "mariadb"}
    assert containers["worker"]["image"] == containers["web"]["image"] == f"{notes.repository}:1.1.0"
    assert containers["worker"]["command"] == ["work"]
    assert containers["web"]["portMappings"][0]["containerPort"] == 5000

    # --- CI -------------------------------------------------------------------------------------------------------
    ci = notes.ok("ci.test", timeout=900)
    assert "Ran 2 tests" in ci.stdout + ci.stderr

    # Nothing of the user's was removed along the way: their own tag, the stacks' images, the releases.
    tags = notes.image_tags()
    for tag in ("my-experiment", "dev", "prod", "1.0.0", "1.1.0"):
        assert f"{notes.repository}:{tag}" in tags, sorted(tags)
    assert notes.secrets_shown() == []  # no env value, no registry password, in anything any task printed
    later.verify()
