"""End to end: `inv deploy` against the EB stand-in, the real registry and the real engine."""
from __future__ import annotations

import pytest

from fixtures.eb import tag_release


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
