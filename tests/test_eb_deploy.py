"""End to end: `inv deploy` against the EB stand-in, the real registry and the real engine."""
from __future__ import annotations

import pytest

from fixtures.eb import tag_release
from fixtures.plans import planned_steps, ran_steps


def deployed(eb, project, platform: str, *args: str):
    eb.configure(project, platform=platform)
    eb.upload_dockercfg(project)
    tag_release(project, "1.0.0", "first release")
    return project.inv("deploy", *args, timeout=600)


@pytest.mark.parametrize("platform", ["v2", "v1", "compose"])
def test_deploy_serves_the_page(eb, eb_release_images, sample_project, platform):
    result = deployed(eb, sample_project, platform)
    assert result.returncode == 0, result.stdout + result.stderr
    label = [v["VersionLabel"] for v in eb.client().describe_application_versions(
        ApplicationName="ebsample")["ApplicationVersions"]]
    assert len(label) == 1 and label[0].startswith("1.0.0-")
    state = eb.state("ebsample-prod")
    assert (state["Status"], state["Health"], state["VersionLabel"]) == ("Ready", "Green", label[0])
    status, page = eb.get("ebsample-prod", "/")
    assert status == 200
    if platform != "v1":  # through nginx: the static asset too
        status, css = eb.get("ebsample-prod", "/static/sample/site.css")
        assert status == 200 and css.strip()
    assert "Environment update completed successfully." in result.stdout


def test_dry_run_prints_the_steps_the_deploy_then_runs(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0", "first release")
    dry = sample_project.inv("deploy", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    real = sample_project.inv("deploy", timeout=600)
    assert real.returncode == 0, real.stdout + real.stderr
    planned, ran = planned_steps(dry.stdout), ran_steps(real.stdout)
    assert planned == ran
    assert [s.split(" ")[0] for s in ran] == ["take", "upload", "create", "update", "wait"]
    # the same release again: the plan says the bundle and version are reused, and the run does just that
    dry_again = sample_project.inv("deploy", "--dry-run")
    again = sample_project.inv("deploy", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert planned_steps(dry_again.stdout) == ran_steps(again.stdout)
    assert [s.split(" ")[0] for s in ran_steps(again.stdout)] == ["take", "update", "wait"]
    assert "not uploading it again" in dry_again.stdout and "not uploading it again" in again.stdout
