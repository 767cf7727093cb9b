"""`inv deploy|rollback|status|history` on the Elastic Beanstalk environment (prod), against the stand-in and moto.

`inv deploy` was the EB deploy; it now follows prod's target (eb) into the same code, which stays as `eb.deploy`.
"""
from __future__ import annotations

import json

from fixtures.eb import tag_release


def as_json(result) -> dict:
    data = json.loads(result.stdout)  # stdout holds the one JSON object and nothing else
    assert data["exit_code"] == result.returncode, result.stderr
    assert "Traceback" not in result.stderr
    return data


def ready(eb, project):
    eb.configure(project, platform="v1")
    eb.upload_dockercfg(project)
    tag_release(project, "1.0.0")
    return project


def test_dry_run_equals_eb_deploy(eb, eb_release_images, sample_project):
    project = ready(eb, sample_project)
    root = project.inv("deploy", "--env", "prod", "--dry-run")
    own = project.inv("eb.deploy", "--dry-run")
    assert root.returncode == own.returncode == 0, root.stdout + root.stderr
    assert root.stdout == own.stdout
    assert "eb.update_environment(application='ebsample', name='ebsample-prod'" in root.stdout and "(dry run: nothing was changed)" in root.stdout
    assert eb.mutating_calls() == ["CreateApplication", "CreateEnvironment"]
    planned = as_json(project.inv("deploy", "--dry-run", "--json"))
    assert (planned["result"], planned["version"], planned["dry_run"], planned["steps"]) == ("planned", "1.0.0", True, [])


def test_deploy_json_success_rolled_back_lock_and_history(eb, eb_release_images, sample_project, tmp_path):
    project = ready(eb, sample_project)
    out = tmp_path / "github_output"
    first = project.inv("deploy", "--json", env={"GITHUB_OUTPUT": str(out)}, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    data = as_json(first)
    label = eb.state("ebsample-prod")["VersionLabel"]
    assert (data["environment"], data["target"], data["version"], data["result"], data["details"]["label"]) == \
        ("prod", "eb", "1.0.0", "succeeded", label)
    assert data["image"] == eb_release_images["1.0.0"]
    assert data["digest"] == eb.registry.manifest_digest("dockyard-test/ebsample", "1.0.0")
    assert data["previous"] is None  # nothing ran before
    assert [s["ok"] for s in data["steps"]] == [True] * len(data["steps"]) and len(data["steps"]) >= 4
    assert "Environment update completed successfully." in first.stderr  # human text on stderr
    url = f"http://{eb.state('ebsample-prod')['CNAME'] or eb.state('ebsample-prod')['EndpointURL']}/"
    assert data["url"] == url
    assert out.read_text().splitlines() == ["version=1.0.0", "result=succeeded", f"url={url}"]

    tag_release(project, "1.0.1", "a release whose health check fails")
    second = project.inv("deploy", "--json", timeout=600)
    assert second.returncode == 11, second.stdout + second.stderr
    data = as_json(second)
    assert (data["result"], data["version"], data["previous"]) == ("rolled_back", "1.0.1", label)
    assert f"rolled back to {label}" in data["message"]
    assert eb.state("ebsample-prod")["VersionLabel"] == label

    records = as_json(project.inv("history", "--json"))["details"]["records"]
    assert [(r["action"], r["version"], r["result"]) for r in records] == \
        [("deploy", "1.0.1", "rolled_back"), ("deploy", "1.0.0", "succeeded")]
    status = as_json(project.inv("status", "--json"))
    assert (status["version"], status["details"]["label"], status["details"]["health"]) == ("1.0.0", label, "Green")

    eb.s3().put_object(Bucket=eb.bucket, Key="dockyard/ebsample/locks/prod.json", Body=json.dumps(
        {"holder": "ci@runner-7", "environment": "prod", "version": "0.9.0", "acquired": "2026-01-01T00:00:00+00:00"}))
    locked = project.inv("deploy", "--version", "1.0.0", "--json")
    assert locked.returncode == 9
    data = as_json(locked)
    assert data["result"] == "locked" and "ci@runner-7" in data["message"]
    back = project.inv("rollback", "--to", "1.0.0", "--json")  # the lock holds for a rollback too
    assert back.returncode == 9 and as_json(back)["details"]["label"] == label
