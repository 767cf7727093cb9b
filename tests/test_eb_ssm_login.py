"""Private registry through SSM Parameter Store and the platform's prebuild hook, end to end.

The stand-in runs the bundle's ``.platform/hooks/prebuild`` scripts before it pulls, as the platform does, with the
platform's ``get-config`` (doubled on the hook's PATH) answering from the environment properties (the user name a
``{{resolve:ssm:...}}`` reference to a String parameter, the SecureString password an environment secret, both
read from moto SSM). The hook's ``docker login`` is the only login the
pull gets.
"""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from fixtures.eb import tag_release, wait_for
from test_eb_failures import one_line_error

HOOK = ".platform/hooks/prebuild/01login.sh"


def put_registry_parameters(eb, password: str) -> None:
    ssm = eb.moto.client("ssm")
    ssm.put_parameter(Name="/ebsample/registry/username", Value=eb.registry.username, Type="String", Overwrite=True)
    ssm.put_parameter(Name="/ebsample/registry/password", Value=password, Type="SecureString", Overwrite=True)


def deployed_hook(eb) -> str:
    bundles = [o["Key"] for o in eb.s3().list_objects_v2(Bucket=eb.bucket)["Contents"] if o["Key"].endswith(".zip")]
    assert len(bundles) == 1, bundles
    body = eb.s3().get_object(Bucket=eb.bucket, Key=bundles[0])["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return archive.read(HOOK).decode()


def test_ssm_credentials_log_in_through_the_prebuild_hook(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1", auth="ssm")
    put_registry_parameters(eb, eb.registry.password)
    tag_release(sample_project, "1.0.0")
    result = sample_project.inv("deploy", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert eb.get("ebsample-prod", "/health/")[0] == 200
    runs = eb.standin.hook_runs
    assert [(r["hook"], r["exit"]) for r in runs] == [(HOOK, 0)], runs
    assert "Login Succeeded" in runs[0]["stdout"]
    logins = [argv for argv in runs[0]["docker"] if "login" in argv]
    assert logins == [["login", "--username", eb.registry.username, "--password-stdin", eb.registry.host]]
    # the password reaches docker on stdin only: no command line, no output, no file in the bundle carries it
    password = eb.registry.password
    assert not any(password in " ".join(argv) for argv in runs[0]["docker"])
    assert password not in result.stdout + result.stderr + runs[0]["stdout"] + runs[0]["stderr"]
    hook = deployed_hook(eb)
    assert "--password-stdin" in hook and password not in hook


def test_wrong_password_in_ssm_fails_with_authentication_failed(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1", auth="ssm")
    put_registry_parameters(eb, "not-the-password")
    tag_release(sample_project, "1.0.0")
    result = sample_project.inv("deploy", timeout=600)
    assert result.returncode == 10, result.stdout + result.stderr
    line = one_line_error(result, "registry authentication failed", "01login.sh", "/ebsample/registry/password")
    assert "not-the-password" not in result.stdout + result.stderr, line
    assert [(r["hook"], r["exit"]) for r in eb.standin.hook_runs] == [(HOOK, 1)]
    assert "VersionLabel" not in eb.state("ebsample-prod")


# --- where the prebuild-hook login works: v1 and compose, never v2 (the ECS agent pulls there) ------------------

@pytest.mark.parametrize("eb, env, chosen", [
    ({"platform": "v2"}, {}, "dockyard.eb.platform"),
    ({"platform": "v1"}, {"platform": "v2"}, "dockyard.environments.prod.eb.platform"),
], ids=["section", "environment"])
def test_ssm_login_on_the_v2_platform_is_refused_in_one_line_naming_the_setting_and_file(sample_project, eb, env,
                                                                                       chosen):
    sample_project.configure({"dockyard": {"eb": {"bucket": "shop-bundles", "auth": "ssm", **eb},
                                           "environments": {"prod": {"target": "eb", "eb": env}}}})
    tag_release(sample_project, "1.0.0")
    for args in (("eb.bundle", "--output", "b.zip"), ("deploy",), ("eb.policies",)):
        result = sample_project.inv(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, (args, result.stderr)
        assert lines[0].startswith("dockyard: dockyard.eb.auth: environment prod deploys to the v2 platform "
                                   f"({chosen}), but there the ECS agent pulls the images itself and never sees "
                                   "the `docker login` of auth 'ssm'"), lines
        assert "use auth 'dockercfg'" in lines[0] and "invoke.yaml" in lines[0], lines
    assert not (sample_project.root / "b.zip").exists()


@pytest.mark.parametrize("platform", ["v1", "compose"])
def test_ssm_login_is_accepted_where_the_docker_cli_pulls(platform):
    from dockyard.config import parse_settings

    settings = parse_settings({"app": "shop", "image": {"repository": "registry.example.com/shop"},
                               "eb": {"bucket": "shop-bundles", "auth": "ssm", "platform": platform},
                               "environments": {"prod": {"target": "eb"}}})
    assert settings.eb.auth == "ssm" and settings.eb.environment("prod").platform == platform


def test_a_v2_bundle_asked_for_on_the_command_line_with_ssm_login_is_refused(sample_project, tmp_path):
    sample_project.configure({"dockyard": {"eb": {"bucket": "shop-bundles", "auth": "ssm", "platform": "compose"},
                                           "environments": {"prod": {"target": "eb"}}}})
    tag_release(sample_project, "1.0.0")
    out = tmp_path / "b.zip"
    result = sample_project.inv("eb.bundle", "--platform", "v2", "--output", str(out))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("dockyard: dockyard.eb.auth: --platform v2 chose the v2 platform, but there the ECS "
                               "agent pulls the images itself"), lines
    assert not out.exists()


def _hook_login_bundle(eb, image: str, platform: str) -> bytes:
    """A bundle with no Authentication whose prebuild hook logs the instance's docker CLI in (the right password)."""
    if platform == "v1":
        dockerrun = {"AWSEBDockerrunVersion": "1", "Image": {"Name": image}, "Ports": [{"ContainerPort": 8000}]}
    else:
        dockerrun = {"AWSEBDockerrunVersion": 2, "containerDefinitions": [
            {"name": "web", "image": image, "essential": True, "memory": 256,
             "portMappings": [{"hostPort": 80, "containerPort": 8000}]}]}
    hook = (f"#!/bin/sh\nprintf %s '{eb.registry.password}' | docker login --username {eb.registry.username} "
            f"--password-stdin {eb.registry.host}\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Dockerrun.aws.json", json.dumps(dockerrun))
        info = zipfile.ZipInfo(HOOK)
        info.external_attr = 0o755 << 16
        archive.writestr(info, hook)
    return buffer.getvalue()


@pytest.mark.parametrize("platform", ["v1", "v2"])
def test_the_standin_gives_a_hook_login_to_the_pull_only_where_the_docker_cli_pulls(eb, eb_release_images,
                                                                                   platform):
    """v1: the platform's docker CLI pulls, so the hook's login counts; v2: the ECS agent pulls with the bundle's
    Authentication only, so the same login leaves the pull without credentials (the registry refuses it)."""
    label = f"hook-login-{platform}"
    eb.s3().put_object(Bucket=eb.bucket, Key=f"{label}.zip", Body=_hook_login_bundle(
        eb, eb_release_images["1.0.0"], platform))
    client = eb.client()
    client.create_application_version(ApplicationName=eb.application, VersionLabel=label,
                                      SourceBundle={"S3Bucket": eb.bucket, "S3Key": f"{label}.zip"})
    client.update_environment(EnvironmentName="ebsample-prod", VersionLabel=label)
    eb.standin.wait_idle(180)
    state = eb.state("ebsample-prod")
    events = [e["Message"] for e in client.describe_events(EnvironmentName="ebsample-prod")["Events"]]
    if platform == "v1":
        assert wait_for(lambda: eb.state("ebsample-prod")["Health"] == "Green", timeout=60), events
        assert eb.state("ebsample-prod")["VersionLabel"] == label
        assert eb.get("ebsample-prod", "/health/")[0] == 200
    else:
        assert state["Health"] == "Red", (state, events)
        assert any("no basic auth credentials" in m or "unauthorized" in m.lower() or "authentication" in m.lower()
                   for m in events), events
