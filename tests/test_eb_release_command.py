"""`environments.prod.release_command` on Elastic Beanstalk, against the stand-in, the registry and the engine.

The bundle carries a leader-only ``container_commands`` entry; the stand-in runs it as EB does (after the bundle is
extracted and the prebuild hooks ran, before the new version is deployed, on its one instance, the leader), and a
non-zero exit fails the deployment with the old version still running. The command really runs: ``docker run`` of
the new image with the environment's properties in an env file.
"""
from __future__ import annotations

import json
import subprocess

from fixtures.eb import APP_ENVIRONMENT, tag_release
from fixtures.plans import planned_steps, ran_steps

MIGRATE = "python manage.py migrate --noinput"


def configure(eb, project, command: str, timeout: int = 120) -> None:
    eb.configure(project, platform="v1")
    project.configure({"dockyard": {"environments": {"prod": {
        "release_command": command, "release_command_timeout": timeout}}}})
    project.commit("release command")
    eb.upload_dockercfg(project)


def runs(eb) -> list[dict]:
    return [r for r in eb.standin.container_command_runs if r["name"] == "00_dockyard_release_command"]


def audit(eb) -> list[dict]:
    s3 = eb.s3()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=eb.bucket).get("Contents") or [] if "/audit/" in o["Key"])
    return [json.loads(s3.get_object(Bucket=eb.bucket, Key=k)["Body"].read()) for k in keys]


def started_at(container: str) -> float:
    from datetime import datetime

    text = subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", container], capture_output=True,
                          text=True, timeout=30).stdout.strip()
    return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()


def test_the_release_command_runs_once_in_the_new_image_before_the_new_version_starts(eb, eb_release_images,
                                                                                      sample_project):
    configure(eb, sample_project, MIGRATE)
    tag_release(sample_project, "1.0.0")
    result = sample_project.inv("deploy", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = runs(eb)
    assert len(ran) == 1 and ran[0]["exit"] == 0 and ran[0]["leader_only"], ran  # once, on the leader
    assert "Applying" in ran[0]["stdout"] or "No migrations to apply" in ran[0]["stdout"], ran[0]
    docker_runs = [argv for argv in ran[0]["docker"] if argv[:1] == ["run"]]
    assert len(docker_runs) == 1
    argv = docker_runs[0]
    assert "--env-file" in argv and argv[-4:] == ["python", "manage.py", "migrate", "--noinput"]
    assert argv[argv.index("--env-file") + 2] == eb_release_images["1.0.0"]  # the new image
    assert not [a for a in (a for r in ran[0]["docker"] for a in r) if APP_ENVIRONMENT["DJANGO_SECRET_KEY"] in a]
    state = eb.state("ebsample-prod")
    assert state["VersionLabel"].startswith("1.0.0-")
    app = eb.standin.environments["ebsample-prod"].prefix + "-app"
    assert ran[0]["finished"] <= started_at(app)  # the new version started after the migration ended
    assert eb.get("ebsample-prod", "/health/")[0] == 200
    assert audit(eb)[-1]["extra"] == {"release_command": "succeeded"}


def test_a_failing_release_command_fails_the_deployment_and_the_old_version_keeps_serving(eb, eb_release_images,
                                                                                          sample_project):
    configure(eb, sample_project, MIGRATE)
    tag_release(sample_project, "1.0.0")
    first = sample_project.inv("deploy", timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    good = eb.state("ebsample-prod")["VersionLabel"]
    sample_project.configure({"dockyard": {"environments": {"prod": {
        "release_command": "sh -c 'echo applying 0002_orders; echo relation orders does not exist >&2; exit 3'"}}}})
    tag_release(sample_project, "1.0.1", "a release whose migration fails")
    second = sample_project.inv("deploy", timeout=600)
    assert second.returncode == 10, second.stdout + second.stderr
    assert "Traceback" not in second.stderr
    assert f"failed on the leader instance of ebsample-prod; {good} still serves" in second.stderr
    assert "Return code: 3" in second.stderr and "relation orders does not exist" in second.stderr  # EB's events
    assert "rolling back" not in second.stdout  # nothing to roll back: EB never deployed it
    state = eb.state("ebsample-prod")
    assert (state["Status"], state["VersionLabel"]) == ("Ready", good)
    assert eb.get("ebsample-prod", "/health/")[0] == 200
    assert [r["exit"] for r in runs(eb)] == [0, 3]
    record = audit(eb)[-1]
    assert record["result"] == "failed" and record["detail"].startswith("release command ")
    assert record["extra"]["release_command"].startswith("failed: failed on the leader instance")
    events = [e["Message"] for e in eb.client().describe_events(EnvironmentName="ebsample-prod")["Events"]]
    assert any("container_command 00_dockyard_release_command" in m for m in events)


def test_a_release_command_past_its_timeout_fails_the_deployment(eb, eb_release_images, sample_project):
    configure(eb, sample_project, "sleep 60", timeout=2)
    tag_release(sample_project, "1.0.0")
    result = sample_project.inv("deploy", timeout=600)
    assert result.returncode == 10, result.stdout + result.stderr
    assert "Return code: 124" in result.stderr and "release_command_timeout" in result.stderr, result.stderr
    assert "VersionLabel" not in eb.state("ebsample-prod")
    leftovers = subprocess.run(["docker", "ps", "-aq", "--filter", "name=dockyard-release-"], capture_output=True,
                               text=True, timeout=30).stdout.split()
    assert leftovers == []


def test_dry_run_shows_the_release_command_and_the_bundle_carries_it(eb, eb_release_images, sample_project):
    configure(eb, sample_project, MIGRATE)
    tag_release(sample_project, "1.0.0")
    dry = sample_project.inv("deploy", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"EB runs the release command {MIGRATE!r} once, on the leader instance" in dry.stdout
    assert ".ebextensions/90-dockyard-release-command.config" in dry.stdout
    assert ".dockyard/release-command.sh (executable)" in dry.stdout
    assert runs(eb) == []
    real = sample_project.inv("deploy", timeout=600)
    assert real.returncode == 0, real.stdout + real.stderr
    assert planned_steps(dry.stdout) == ran_steps(real.stdout)


def test_skip_release_command_deploys_a_bundle_without_it_under_its_own_label(eb, eb_release_images, sample_project):
    configure(eb, sample_project, "sh -c 'exit 1'")
    tag_release(sample_project, "1.0.0")
    failed = sample_project.inv("deploy", timeout=600)
    assert failed.returncode == 10, failed.stdout + failed.stderr  # the version with the command now exists
    result = sample_project.inv("deploy", "--skip-release-command", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped (--skip-release-command)" in result.stdout
    label = eb.state("ebsample-prod")["VersionLabel"]
    assert label.startswith("1.0.0-") and label.endswith("-no-release-command")
    assert [r["exit"] for r in runs(eb)] == [1]  # not run again
    assert audit(eb)[-1]["extra"] == {"release_command": "skipped (--skip-release-command)"}
    history = sample_project.inv("history")
    assert history.returncode == 0 and "1.0.0" in history.stdout, history.stdout + history.stderr
