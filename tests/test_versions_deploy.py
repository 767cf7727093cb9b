"""A pre-release under a custom ``release.tag_prefix`` deploys on every target, and every target reads the compose
file the same way: the EB bundle and ``ecs.render`` agree on ports, pinned images and volumes.

Against the real parts each target's own tests use: the EB stand-in with moto and the registry (tests/fixtures/eb.py),
moto's ECS/ECR/S3 (test_ecs_deploy.py), and sshd hosts with the engine and the registry (test_staging_e2e.py).
"""
from __future__ import annotations

import io
import json
import subprocess
import tempfile
import zipfile

import pytest
import yaml

from fixtures.eb import EB_REPOSITORY
from test_ecs_deploy import Ecs, audit_records, ecs  # noqa: F401 - ecs is the fixture
from test_staging_e2e import docker, staging, staging_images  # noqa: F401 - fixtures

PRE = "2.0.0-rc.1"
PREFIX = "rel-"


def tag_pre_release(project, message: str = "release candidate") -> str:
    """Commit and tag ``rel-2.0.0-rc.1`` under the custom prefix; returns the commit."""
    project.configure({"dockyard": {"release": {"tag_prefix": PREFIX}}})
    (project.root / "RELEASE").write_text(PRE + "\n")
    sha = project.commit(f"release {PRE}")
    project.git("tag", "-a", f"{PREFIX}{PRE}", "-m", message)
    return sha


def push_as(registry, source: str, ref: str) -> None:
    """Tag the local image ``source`` as ``ref`` and push it (the login stays in a throw-away config)."""
    with tempfile.TemporaryDirectory() as config:
        subprocess.run(["docker", "--config", config, "login", "--username", registry.username, "--password-stdin",
                        registry.host], input=registry.password, capture_output=True, text=True, check=True)
        subprocess.run(["docker", "tag", source, ref], capture_output=True, check=True)
        pushed = subprocess.run(["docker", "--config", config, "push", "--quiet", ref], capture_output=True,
                                text=True)
        assert pushed.returncode == 0, pushed.stderr


# --- Elastic Beanstalk -------------------------------------------------------------------------------------------


def test_eb_deploys_a_pre_release_under_a_custom_tag_prefix(eb, eb_release_images, sample_project):
    repository = f"{eb.registry.host}/{EB_REPOSITORY}"
    push_as(eb.registry, eb_release_images["1.0.0"], f"{repository}:{PRE}")
    eb.configure(sample_project, platform="v2")
    eb.upload_dockercfg(sample_project)
    sha = tag_pre_release(sample_project)
    label = f"{PRE}-{sha[:7]}"

    dry = sample_project.inv("deploy", "--dry-run", "--version", PRE, timeout=600)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"deploy {PRE} ({label}) to ebsample-prod" in dry.stdout
    assert f'"image": "{repository}:{PRE}"' in dry.stdout
    assert f"label='{label}'" in dry.stdout
    assert eb.mutating_calls() == ["CreateApplication", "CreateEnvironment"]

    # the git tag's own name works too, and without --version the latest rel-* tag (the pre-release) is chosen
    by_tag = sample_project.inv("deploy", "--dry-run", "--version", f"{PREFIX}{PRE}", timeout=600)
    assert by_tag.returncode == 0 and f"deploy {PRE} ({label})" in by_tag.stdout, by_tag.stderr

    deployed = sample_project.inv("deploy", timeout=600)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert eb.state("ebsample-prod")["VersionLabel"] == label
    audit = [o["Key"] for o in eb.s3().list_objects_v2(Bucket=eb.bucket).get("Contents") or [] if "/audit/" in o["Key"]]
    records = [json.loads(eb.s3().get_object(Bucket=eb.bucket, Key=k)["Body"].read()) for k in audit]
    assert [(r["version"], r["label"], r["result"]) for r in records] == [(PRE, label, "succeeded")]

    # eb.rollback names the release the same ways, and its audit record keeps the whole pre-release version
    plan = sample_project.inv("eb.rollback", "--label", f"{PREFIX}{PRE}", "--dry-run")
    assert plan.returncode == 0 and f"roll back ebsample-prod from {label} to {label}" in plan.stdout, plan.stderr
    back = sample_project.inv("eb.rollback", "--label", PRE, timeout=600)
    assert back.returncode == 0 and f"ebsample-prod runs {label} again" in back.stdout, back.stdout + back.stderr
    audit = [o["Key"] for o in eb.s3().list_objects_v2(Bucket=eb.bucket).get("Contents") or [] if "/audit/" in o["Key"]]
    records = [json.loads(eb.s3().get_object(Bucket=eb.bucket, Key=k)["Body"].read()) for k in audit]
    assert sorted((r["action"], r["version"], r["label"]) for r in records) == [
        ("deploy", PRE, label), ("rollback", PRE, label)]


# --- ECS -------------------------------------------------------------------------------------------------------


def put_ecr_image(ecs: Ecs, tag: str) -> None:
    ecs.aws.client("ecr").put_image(repositoryName=ecs.project.app, imageTag=tag, imageManifest=json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "config": {"digest": f"sha256:{'1' * 64}"}, "layers": []}))


def test_ecs_deploys_a_pre_release_under_a_custom_tag_prefix(ecs):
    put_ecr_image(ecs, PRE)
    tag_pre_release(ecs.project)

    dry = ecs.inv("ecs.deploy", "--dry-run", "--version", PRE)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f'Changed image of container "web" to: "{ecs.repository}:{PRE}" (was: "{ecs.repository}:1.2.3")' \
        in dry.stdout
    assert f"Register a new revision of {ecs.project.app} with {ecs.repository}:{PRE}" in dry.stdout
    assert ecs.active() == [1] and audit_records(ecs) == []

    # v1.2.* tags are not releases under the rel- prefix: the default is the latest rel-* tag
    diff = ecs.inv("ecs.diff")
    assert diff.returncode == 0 and f"{ecs.repository}:{PRE}" in diff.stdout, diff.stderr
    refused = ecs.inv("ecs.deploy", "--version", "1.2.4", "--dry-run")
    assert refused.returncode == 5 and "there is no git tag rel-1.2.4" in refused.stderr, refused.stderr

    started = ecs.inv("ecs.deploy", "--version", f"{PREFIX}{PRE}", "--no-wait")
    assert started.returncode == 0, started.stdout + started.stderr
    web = {c["name"]: c for c in ecs.definition(2)["containerDefinitions"]}["web"]
    assert web["image"] == f"{ecs.repository}:{PRE}"
    assert [(r["version"], r["result"]) for r in audit_records(ecs)] == [(PRE, "started")]


# --- one compose file, every target ----------------------------------------------------------------------------


WORKER = {"image": "${DOCKYARD_IMAGE}", "command": ["python", "-m", "sample.worker"], "mem_limit": "128m"}


def test_eb_bundle_and_ecs_render_agree_on_ports_pins_and_volumes(ecs, tmp_path):
    project = ecs.project
    compose = project.root / "docker" / "prod" / "compose.yml"
    model = yaml.safe_load(compose.read_text())
    model["services"]["worker"] = WORKER  # a second service on the release image, through the variable
    compose.write_text(yaml.safe_dump(model, sort_keys=False))
    project.configure({"dockyard": {"eb": {"bucket": "bundles", "platform": "v2"}}})
    tag_pre_release(project)
    pinned = f"{ecs.repository}:{PRE}"

    bundle_zip = tmp_path / "bundle.zip"
    made = ecs.inv("eb.bundle", "--version", PRE, "--output", str(bundle_zip))
    assert made.returncode == 0, made.stdout + made.stderr
    with zipfile.ZipFile(bundle_zip) as archive:
        dockerrun = json.loads(archive.read("Dockerrun.aws.json"))
    rendered = ecs.inv("ecs.render", "--version", PRE)
    assert rendered.returncode == 0, rendered.stderr
    task = json.loads(rendered.stdout)

    def by_name(containers):
        return {c["name"]: c for c in containers}

    eb_containers, ecs_containers = by_name(dockerrun["containerDefinitions"]), by_name(task["containerDefinitions"])
    assert set(eb_containers) == set(ecs_containers) == {"web", "nginx", "worker"}
    for name in eb_containers:
        for key in ("image", "portMappings", "mountPoints"):
            assert eb_containers[name].get(key) == ecs_containers[name].get(key), (name, key)
    assert dockerrun["volumes"] == task["volumes"]
    # what they agree on is the deploy's view: the release pinned everywhere, nginx on 80, not the local 8080
    assert eb_containers["web"]["image"] == eb_containers["worker"]["image"] == pinned
    assert eb_containers["nginx"]["portMappings"] == [{"containerPort": 80, "hostPort": 80}]

    # the compose platform's bundle pins and publishes the same
    compose_zip = tmp_path / "compose.zip"
    made = ecs.inv("eb.bundle", "--version", PRE, "--platform", "compose", "--output", str(compose_zip))
    assert made.returncode == 0, made.stdout + made.stderr
    with zipfile.ZipFile(compose_zip) as archive:
        services = yaml.safe_load(io.BytesIO(archive.read("docker-compose.yml")))["services"]
    assert services["web"]["image"] == services["worker"]["image"] == pinned
    assert services["nginx"]["ports"] == ["80:80"]


# --- staging over SSH ----------------------------------------------------------------------------------------------


@pytest.fixture
def pre_release_image(staging, staging_images, registry, tmp_path):
    """The sample app as ``<repo>:2.0.0-rc.1`` in the registry, reporting that version on /health/."""
    context = tmp_path / "pre-image"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {staging_images}:v1\nENV APP_VERSION={PRE}\n")
    ref = f"{staging_images}:{PRE}"
    docker("build", "-q", "-t", ref, str(context))
    push_as(registry, ref, ref)
    yield ref
    docker("image", "rm", "-f", ref, check=False)


def test_staging_deploys_a_pre_release_under_a_custom_tag_prefix(staging, pre_release_image, registry):
    project = staging.project
    tag_pre_release(project)
    staging.inv("staging.setup", check=True)

    dry = staging.inv("staging.ssh-deploy", "--version", f"{PREFIX}{PRE}", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    repository = pre_release_image.rpartition(":")[0]
    digest = registry.manifest_digest(repository.split("/", 1)[1], PRE)
    assert digest  # pulled by the digest the registry has for the tag, then tagged as the tag
    assert f"deploy {PRE} to staging" in dry.stdout
    assert f"pull {repository}@{digest} (the registry's {PRE}) and tag it {pre_release_image}" in dry.stdout
    assert staging.get()[0] == 502  # nothing deployed by the dry run

    deployed = staging.inv("staging.ssh-deploy", "--version", f"{PREFIX}{PRE}")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert staging.live_version() == PRE
    assert f"{staging.prefix}-app-{PRE}" in docker("ps", "--format", "{{.Names}}").stdout.split()
    assert f"deploy version={PRE}" in staging.inv("staging.audit", check=True).stdout

    # a Docker tag that is no release (version_format's staging-<sha7>, v1) is still used as given
    plain = staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
    assert plain.returncode == 0 and staging.live_version() == "v1"
    back = staging.inv("staging.rollback", "--version", f"{PREFIX}{PRE}", check=True)
    assert back.returncode == 0 and staging.live_version() == PRE

