"""`inv ecs.*` against moto's ECS/ECR/S3 (server mode, through dockyard.aws.endpoint_url).

moto never moves a service's PRIMARY deployment to a new revision, so a waited deploy sees "PRIMARY is not ours":
that drives the failure -> rollback path. The success path is the update itself (`--no-wait`); the waiter's
success decision is unit-tested in test_ecs_units.py.
"""
from __future__ import annotations

import json

import pytest

from fixtures.plans import planned_steps, ran_steps

from conftest import REPO

ACCOUNT_REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
BUCKET = "dockyard-deploys"
PYTHONPATH = {"PYTHONPATH": str(REPO)}


class Ecs:
    def __init__(self, project, aws):
        self.project = project
        self.aws = aws
        self.ecs = aws.client("ecs")
        self.repository = f"{ACCOUNT_REGISTRY}/{project.app}"

    def inv(self, *args, env=None):
        return self.project.inv(*args, env={**self.aws.env, **PYTHONPATH, **(env or {})})

    def register(self, image: str) -> dict:
        return self.ecs.register_task_definition(
            family=self.project.app, networkMode="bridge", tags=[{"key": "team", "value": "shop"}],
            containerDefinitions=[
                {"name": "web", "image": image, "memory": 256, "environment": [{"name": "APP_ENV", "value": "prod"}]},
                {"name": "nginx", "image": "nginx:1.27", "memory": 64, "links": ["web"]},
            ])["taskDefinition"]

    def service(self) -> dict:
        return self.ecs.describe_services(cluster="shop", services=["shop-web"])["services"][0]

    def active(self) -> list[int]:
        arns = self.ecs.list_task_definitions(familyPrefix=self.project.app, status="ACTIVE")["taskDefinitionArns"]
        return sorted(int(a.rsplit(":", 1)[1]) for a in arns)

    def definition(self, revision: int) -> dict:
        return self.ecs.describe_task_definition(taskDefinition=f"{self.project.app}:{revision}")["taskDefinition"]


@pytest.fixture
def ecs(aws, sample_project):
    env = Ecs(sample_project, aws)
    sample_project.configure({"dockyard": {
        "image": {"repository": env.repository},
        "ecs": {"cluster": "shop", "service": "shop-web", "containers": ["web"], "bucket": BUCKET, "keep": 3,
                "timeout": 5, "rollback_timeout": 5, "poll_interval": 0},
    }})
    sample_project.commit("ecs settings")
    for tag in ("v1.2.3", "v1.2.4", "v1.2.5"):
        sample_project.git("tag", "-a", tag, "-m", f"release {tag}")
    env.ecs.create_cluster(clusterName="shop")
    env.register(f"{env.repository}:1.2.3")
    env.ecs.create_service(cluster="shop", serviceName="shop-web", taskDefinition=sample_project.app, desiredCount=0)
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName=sample_project.app)
    for tag in ("1.2.3", "1.2.4"):  # 1.2.5 is tagged in git but never published
        ecr.put_image(repositoryName=sample_project.app, imageTag=tag, imageManifest=json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "config": {"digest": f"sha256:{'0' * 63}{tag[-1]}"}, "layers": []}))
    aws.client("s3").create_bucket(Bucket=BUCKET)
    return env


def audit_records(ecs: Ecs) -> list[dict]:
    s3 = ecs.aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents") or []]
    return [json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in sorted(keys) if "/audit/" in k]


def test_diff_shows_the_image_change_and_changes_nothing(ecs):
    result = ecs.inv("ecs.diff", "--version", "1.2.4")
    assert result.returncode == 0, result.stderr
    assert (f'Changed image of container "web" to: "{ecs.repository}:1.2.4" (was: "{ecs.repository}:1.2.3")'
            in result.stdout)
    assert ecs.active() == [1]


def test_dry_run_prints_the_plan_and_registers_nothing(ecs):
    result = ecs.inv("ecs.deploy", "--version", "1.2.4", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert 'Changed image of container "web"' in result.stdout
    assert "(dry run: nothing was changed)" in result.stdout
    assert ecs.active() == [1] and ecs.service()["taskDefinition"].endswith(":1")


def test_dry_run_prints_the_steps_the_deploy_then_runs(ecs):
    # a waited deploy (moto never makes it steady, so it rolls back): the run follows the plan up to the wait
    dry = ecs.inv("ecs.deploy", "--version", "1.2.4", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    real = ecs.inv("ecs.deploy", "--version", "1.2.4")
    assert real.returncode == 11, real.stdout + real.stderr
    planned = planned_steps(dry.stdout)
    assert [s.split(" ")[0] for s in planned] == ["Take", "Register", "Update", "Wait", "Deregister"]
    assert ran_steps(real.stdout) == planned[:4]
    # --no-wait plans no wait, and runs none
    dry = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    real = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert real.returncode == 0, real.stdout + real.stderr
    assert planned_steps(dry.stdout) == ran_steps(real.stdout)
    assert [s.split(" ")[0] for s in ran_steps(real.stdout)] == ["Take", "Register", "Update", "Deregister"]
    assert ecs.service()["taskDefinition"].endswith(f"/{ecs.project.app}:3")


def test_deploy_registers_a_revision_with_only_the_image_changed_and_updates_the_service(ecs):
    result = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ecs.service()["taskDefinition"].endswith(f"/{ecs.project.app}:2")
    old, new = ecs.definition(1), ecs.definition(2)
    assert new["containerDefinitions"][0]["image"] == f"{ecs.repository}:1.2.4"
    strip = lambda td: {k: v for k, v in td.items()  # noqa: E731
                        if k not in ("taskDefinitionArn", "revision", "registeredAt")}
    old_web = dict(old["containerDefinitions"][0], image="x")
    new_web = dict(new["containerDefinitions"][0], image="x")
    assert old_web == new_web
    assert {k: v for k, v in strip(old).items() if k != "containerDefinitions"} == \
        {k: v for k, v in strip(new).items() if k != "containerDefinitions"}
    assert ecs.ecs.describe_task_definition(taskDefinition=f"{ecs.project.app}:2", include=["TAGS"])["tags"] == \
        [{"key": "team", "value": "shop"}]
    records = audit_records(ecs)
    assert [(r["action"], r["version"], r["result"], r["label"], r["previous_label"]) for r in records] == \
        [("deploy", "1.2.4", "started", f"{ecs.project.app}:2", f"{ecs.project.app}:1")]
    s3 = ecs.aws.client("s3")
    assert not [o for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents") or [] if "/locks/" in o["Key"]]


def test_failed_deployment_rolls_back_to_the_live_revision_and_exits_non_zero(ecs):
    result = ecs.inv("ecs.deploy", "--version", "1.2.4")
    assert result.returncode == 11, result.stdout + result.stderr  # rolled back
    last = result.stderr.strip().splitlines()[-1]
    assert "PRIMARY deployment runs" in last and f"rolled back to {ecs.project.app}:1" in last
    assert "Traceback" not in result.stderr
    assert ecs.service()["taskDefinition"].endswith(f"/{ecs.project.app}:1")
    assert ecs.active() == [1, 2]  # nothing deregistered after a failure
    assert audit_records(ecs)[-1]["result"] == "rolled back"


def test_old_revisions_are_kept_up_to_n_and_the_live_one_always(ecs):
    for n in range(5):  # revisions 2..6; the service still runs revision 1
        ecs.register(f"{ecs.repository}:0.0.{n}")
    result = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert result.returncode == 0, result.stderr
    assert ecs.active() == [1, 5, 6, 7]  # newest 3 + the revision that was live before the deploy


def test_rollback_without_records_goes_to_the_previous_active_revision_and_says_so(ecs):
    ecs.register(f"{ecs.repository}:1.2.4")
    ecs.ecs.update_service(cluster="shop", service="shop-web", taskDefinition=f"{ecs.project.app}:2")  # not dockyard
    result = ecs.inv("ecs.rollback")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f"rolling back to {ecs.project.app}:1: no audit records of prod, so the ACTIVE revision before "
            f"{ecs.project.app}:2") in result.stdout
    assert ecs.service()["taskDefinition"].endswith(f"/{ecs.project.app}:1")
    assert [(r["action"], r["result"], r["label"], r["version"]) for r in audit_records(ecs)] == \
        [("rollback", "succeeded", f"{ecs.project.app}:1", "1.2.3")]


def test_rollback_refuses_when_no_recorded_deploy_succeeded_before_the_live_one(ecs):
    assert ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait").returncode == 0  # recorded as "started"
    result = ecs.inv("ecs.rollback")
    assert result.returncode == 5
    assert f"no successful deploy of prod before {ecs.project.app}:2 in the audit records" in result.stderr
    assert ecs.service()["taskDefinition"].endswith(f"/{ecs.project.app}:2")


def test_status_shows_service_and_images(ecs):
    result = ecs.inv("ecs.status")
    assert result.returncode == 0, result.stderr
    assert "shop/shop-web" in result.stdout and f"container web: {ecs.repository}:1.2.3" in result.stdout


@pytest.mark.parametrize("settings, args, env, expected", [
    ({"cluster": "nope"}, ("ecs.deploy", "--version", "1.2.4"), {}, "ECS cluster 'nope' not found"),
    ({"service": "nope"}, ("ecs.deploy", "--version", "1.2.4"), {}, "ECS service 'nope' not found in cluster 'shop'"),
    ({"containers": ["app"]}, ("ecs.deploy", "--version", "1.2.4"), {}, "dockyard.ecs.containers: task definition"),
    ({}, ("ecs.deploy", "--version", "1.2.5"), {}, "is not published"),
    ({}, ("ecs.deploy", "--version", "9.9.9"), {}, "no git tag v9.9.9"),
    ({"keep": 0}, ("ecs.status",), {}, "dockyard.ecs.keep: expected an integer >= 1"),
    ({}, ("ecs.deploy", "--version", "1.2.4"), {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
                                   "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
                                   "AWS_EC2_METADATA_DISABLED": "true"}, "no AWS credentials found"),
])
def test_bad_input_is_one_line_and_changes_nothing(ecs, settings, args, env, expected):
    ecs.project.configure({"dockyard": {"ecs": settings}})
    result = ecs.inv(*args, env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dockyard: ") and expected in lines[0], result.stderr
    assert ecs.active() == [1] and ecs.service()["taskDefinition"].endswith(":1")
    assert audit_records(ecs) == []


def test_render_converts_the_production_compose_file(ecs):
    result = ecs.inv("ecs.render", "--version", "1.2.4")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    containers = {c["name"]: c for c in payload["containerDefinitions"]}
    assert payload["family"] == ecs.project.app
    assert containers["web"]["image"] == f"{ecs.repository}:1.2.4"
    assert set(containers) == {"web", "nginx"}
    registered = ecs.ecs.register_task_definition(**payload)["taskDefinition"]  # ECS accepts it as it is
    assert registered["containerDefinitions"]


def test_sigterm_mid_deploy_frees_the_lock_and_audits_interrupted(ecs):
    """What CI cancel and `timeout` send, while the deploy waits for the service: like Ctrl-C, exit 143."""
    import os
    import signal
    import subprocess
    import sys

    ecs.project.configure({"dockyard": {"ecs": {"timeout": 120, "poll_interval": 1}}})
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "ecs.deploy", "--version", "1.2.4"],
                            cwd=ecs.project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **ecs.aws.env, **PYTHONPATH})
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "registered" in line:
                break
        assert proc.poll() is None, seen
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, ("".join(seen), out, err)
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "dockyard: interrupted by SIGTERM", err
    s3 = ecs.aws.client("s3")
    assert not [o for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents") or [] if "/locks/" in o["Key"]]
    assert [(r["version"], r["result"]) for r in audit_records(ecs)] == [("1.2.4", "interrupted")]
    again = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert again.returncode == 0, again.stdout + again.stderr  # not refused by a lock left behind (exit 9)
