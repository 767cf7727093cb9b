"""The other eb tasks against the stand-in: dockercfg, setenv, swap, status/events/versions, rollback, bundle, local,
policies."""
from __future__ import annotations

import json
import subprocess
import urllib.request
import zipfile
from pathlib import Path

import pytest
from conftest import free_port
from fixtures.eb import tag_release
from fixtures.plans import planned_steps, ran_steps
from test_eb_failures import one_line_error


def test_dockercfg_then_deploy_status_events_versions(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    made = sample_project.inv("eb.dockercfg")
    assert made.returncode == 0, made.stdout + made.stderr
    assert eb.registry.password not in made.stdout + made.stderr
    head = eb.s3().head_object(Bucket=eb.bucket, Key="dockyard/ebsample/dockercfg.json")
    assert head["ServerSideEncryption"] == "AES256"
    uploaded = json.loads(eb.s3().get_object(Bucket=eb.bucket, Key="dockyard/ebsample/dockercfg.json")["Body"].read())
    assert list(uploaded) == ["auths"] and list(uploaded["auths"]) == [eb.registry.host]  # what AL2/AL2023 read
    assert list(uploaded["auths"][eb.registry.host]) == ["auth"]
    tag_release(sample_project, "1.0.0")
    assert sample_project.inv("deploy", timeout=600).returncode == 0
    status = sample_project.inv("eb.status")
    assert status.returncode == 0 and "Ready" in status.stdout and "Green" in status.stdout
    events = sample_project.inv("eb.events")
    assert "Environment update completed successfully." in events.stdout
    versions = sample_project.inv("eb.versions")
    assert "ebsample-prod" in versions.stdout and "succeeded" in versions.stdout
    refused = sample_project.inv("eb.rollback")
    assert refused.returncode == 5 and "no earlier successful deploy" in refused.stderr
    label = eb.state("ebsample-prod")["VersionLabel"]
    again = sample_project.inv("eb.rollback", "--label", label, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"ebsample-prod runs {label} again" in again.stdout
    assert eb.calls().count("UpdateEnvironment") == 2


def test_setenv_shows_a_masked_diff_then_applies_it(eb, sample_project):
    eb.configure(sample_project, platform="v1", secret_keys=["DJANGO_SECRET_KEY"])
    (sample_project.root / "environments/prod/.env").write_text(
        "DJANGO_SECRET_KEY=brand-new-secret-value\nDJANGO_DEBUG=0\nDJANGO_ALLOWED_HOSTS=example.org\nAPP_ENV=prod\n")
    shown = sample_project.inv("eb.setenv", "--dry-run")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "~ DJANGO_ALLOWED_HOSTS=******** (was ********)" in shown.stdout
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/ebsample/prod/DJANGO_SECRET_KEY"
    assert f"+ DJANGO_SECRET_KEY (secret) -> {arn}" in shown.stdout  # the ARN, never the value
    assert "- DJANGO_SECRET_KEY (plain property; now a secret)" in shown.stdout
    assert "example.org" not in shown.stdout and "brand-new-secret-value" not in shown.stdout
    assert eb.mutating_calls() == ["CreateApplication", "CreateEnvironment"]
    applied = sample_project.inv("eb.setenv")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert planned_steps(shown.stdout) == ran_steps(applied.stdout) == [
        "store /ebsample/prod/DJANGO_SECRET_KEY (SecureString)",
        "update the environment properties of ebsample-prod (3 change(s))",
        "wait until ebsample-prod is Ready"]
    assert "example.org" not in applied.stdout and "brand-new-secret-value" not in applied.stdout
    options = eb.standin.snapshot()["environments"]["ebsample-prod"]["options"]
    ns = "aws:elasticbeanstalk:application:environment:"
    assert options[ns + "DJANGO_ALLOWED_HOSTS"] == "example.org"
    assert ns + "DJANGO_SECRET_KEY" not in options
    assert options["aws:elasticbeanstalk:application:environmentsecrets:DJANGO_SECRET_KEY"] == arn
    parameter = eb.moto.client("ssm").get_parameter(Name="/ebsample/prod/DJANGO_SECRET_KEY", WithDecryption=True)
    assert parameter["Parameter"]["Value"] == "brand-new-secret-value"
    again = sample_project.inv("eb.setenv", "--dry-run")
    assert "(no change)" in again.stdout


def test_swap_deploys_the_idle_twin_and_swaps_only_after_health(eb, eb_release_images, sample_project):
    eb.create_environment("ebsample-green")
    eb.configure(sample_project, platform="v1")
    sample_project.configure({"dockyard": {"environments": {"prod": {"eb": {"twin": "ebsample-green"}}}}})
    sample_project.commit("twin")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.1", "failing release")
    failed = sample_project.inv("eb.swap", timeout=600)
    assert failed.returncode == 10, failed.stdout + failed.stderr
    assert "SwapEnvironmentCNAMEs" not in eb.calls()
    assert eb.state("ebsample-prod")["CNAME"].startswith("ebsample-prod.")
    tag_release(sample_project, "1.0.2", "good again")
    subprocess.run(["docker", "tag", eb_release_images["1.0.0"], eb_release_images["1.0.0"][:-5] + "1.0.2"], check=True)
    # push 1.0.2 with the fixture's credentials (a private docker config)
    import tempfile
    with tempfile.TemporaryDirectory() as config:
        subprocess.run(["docker", "--config", config, "login", "-u", eb.registry.username, "--password-stdin",
                        eb.registry.host], input=eb.registry.password, text=True, check=True, capture_output=True)
        subprocess.run(["docker", "--config", config, "push", "--quiet", eb_release_images["1.0.0"][:-5] + "1.0.2"],
                       check=True, capture_output=True)
    subprocess.run(["docker", "image", "rm", eb_release_images["1.0.0"][:-5] + "1.0.2"], capture_output=True)
    shown = sample_project.inv("eb.swap", "--dry-run", timeout=600)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    swapped = sample_project.inv("eb.swap", timeout=600)
    assert swapped.returncode == 0, swapped.stdout + swapped.stderr
    # The swap's steps and the idle deploy's steps: the dry run lists what the run did, nothing more or less.
    assert sorted(planned_steps(shown.stdout)) == sorted(ran_steps(swapped.stdout))
    assert "swap CNAMEs of ebsample-green and ebsample-prod" in ran_steps(swapped.stdout)
    snapshot = eb.standin.snapshot()
    swap_at = [t for t, action in snapshot["calls"] if action == "SwapEnvironmentCNAMEs"]
    assert len(swap_at) == 1 and 0 < snapshot["environments"]["ebsample-green"]["green_at"] < swap_at[0]
    assert eb.state("ebsample-green")["CNAME"].startswith("ebsample-prod.")
    assert eb.state("ebsample-prod")["CNAME"].startswith("ebsample-green.")
    assert "smoke test" in swapped.stdout


def test_bundle_and_policies(eb, sample_project, tmp_path):
    eb.configure(sample_project, platform="compose", auth="ssm")
    tag_release(sample_project, "1.0.0")
    out = tmp_path / "b.zip"
    made = sample_project.inv("eb.bundle", "--output", str(out))
    assert made.returncode == 0, made.stdout + made.stderr
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        config = archive.read(".ebextensions/01-dockyard.config").decode()
    assert "docker-compose.yml" in names and "docker/nginx/default.conf" in names
    assert "Dockerrun.aws.json" not in names  # ssm: the platform hook logs in, no Authentication
    for hook in (".platform/hooks/prebuild/01login.sh", ".platform/confighooks/prebuild/01login.sh"):
        assert modes[hook] == 0o755
    assert "{{resolve:ssm:/ebsample/registry/password}}" not in config and "/health/" in config
    assert "arn:aws:ssm:us-east-1:123456789012:parameter/ebsample/registry/password" in config
    again = sample_project.inv("eb.bundle", "--output", str(tmp_path / "c.zip"))
    assert again.returncode == 0 and out.read_bytes() == (tmp_path / "c.zip").read_bytes()
    policies = sample_project.inv("eb.policies")
    doc = json.loads(policies.stdout)
    actions = {a for s in doc["ci_user"]["Statement"] for a in s["Action"]}
    assert {"s3:PutObject", "elasticbeanstalk:CreateApplicationVersion",
            "elasticbeanstalk:UpdateEnvironment"} <= actions
    assert doc["instance_profile"]["Statement"][0]["Action"] == ["ssm:GetParameters"]


def test_project_template_overrides_ebextensions(eb, sample_project, tmp_path):
    eb.configure(sample_project, platform="v1")
    override = sample_project.root / "templates/eb/ebextensions/01-dockyard.config.j2"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text("option_settings:\n  aws:elasticbeanstalk:application:\n    Application Healthcheck URL: "
                        "\"{{ env.health_path }}?from=project\"\n")
    (override.parent / "02-extra.config.j2").write_text("# {{ undefined_name }}\n")
    tag_release(sample_project, "1.0.0")
    broken = sample_project.inv("eb.bundle", "--output", str(tmp_path / "x.zip"))
    assert broken.returncode == 2 and "undefined_name" in broken.stderr and not (tmp_path / "x.zip").exists()
    (override.parent / "02-extra.config.j2").unlink()
    made = sample_project.inv("eb.bundle", "--output", str(tmp_path / "y.zip"))
    with zipfile.ZipFile(tmp_path / "y.zip") as archive:
        assert "?from=project" in archive.read(".ebextensions/01-dockyard.config").decode()


def test_setenv_debug_output_never_carries_the_values(eb, sample_project):
    """`inv -d` shows botocore's debug log, UpdateEnvironment's option values included: they are masked there."""
    secret, host = "planted-Secret/value+1=x", "only-in-the-env.example.org"
    eb.configure(sample_project, platform="v1", secret_keys=["DJANGO_SECRET_KEY"])
    (sample_project.root / "environments/prod/.env").write_text(
        f"DJANGO_SECRET_KEY={secret}\nDJANGO_DEBUG=0\nDJANGO_ALLOWED_HOSTS={host}\nAPP_ENV=prod\n")
    applied = sample_project.inv("-d", "eb.setenv")
    assert applied.returncode == 0, applied.stdout + applied.stderr[-3000:]
    assert "UpdateEnvironment" in applied.stderr and "botocore" in applied.stderr  # the debug log was on
    from urllib.parse import quote, quote_plus

    for spelling in (secret, quote(secret, safe=""), quote_plus(secret), host):
        assert spelling not in applied.stdout + applied.stderr, spelling
    options = eb.standin.snapshot()["environments"]["ebsample-prod"]["options"]
    assert options["aws:elasticbeanstalk:application:environment:DJANGO_ALLOWED_HOSTS"] == host


def test_local_runs_the_v2_bundle(eb, eb_release_images, sample_project):
    port = free_port()
    eb.configure(sample_project, platform="v2")
    tag_release(sample_project, "1.0.0")
    try:
        ran = sample_project.inv("eb.local", "--port", str(port), timeout=600)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/sample/site.css", timeout=10) as response:
            assert response.status == 200
    finally:
        sample_project.inv("eb.local", "--down", timeout=300)


def files_holding(secret: str, *, under: Path, since: float, besides: Path) -> list[str]:
    """Files under ``under`` changed since ``since`` (outside ``besides``) whose bytes contain ``secret``."""
    import os

    found = []
    # os.walk, not rglob: other test runs' temporary directories come and go meanwhile, and walk ignores that
    for top, _, names in os.walk(under, onerror=lambda _: None):
        for path in (Path(top) / name for name in names):
            if besides in path.parents or path.is_symlink() or not path.is_file():
                continue
            if _holds(path, secret, since):
                found.append(str(path))
    return found


def _holds(path: Path, secret: str, since: float) -> bool:
    try:
        info = path.stat()
        return info.st_mtime >= since and info.st_size <= 1_000_000 and secret.encode() in path.read_bytes()
    except OSError:
        return False


def test_local_keeps_the_env_values_private_and_removes_them_when_up_fails(eb, eb_release_images, sample_project):
    import tempfile
    import time

    secret = f"eb-local-secret-{time.monotonic_ns()}"
    port = free_port()
    eb.configure(sample_project, platform="v2")
    sample_project.configure({"dockyard": {"environments": {"prod": {"health_path": "/no-such-page/",
                                                                      "health_timeout": 5}}}})
    env_file = sample_project.root / "environments/prod/.env"
    env_file.write_text(env_file.read_text().replace("DJANGO_SECRET_KEY=change-me", f"DJANGO_SECRET_KEY={secret}"))
    tag_release(sample_project, "1.0.0")
    started = time.time() - 1
    try:
        ran = sample_project.inv("eb.local", "--port", str(port), timeout=600)
        assert ran.returncode == 6, ran.stdout + ran.stderr  # the health gate failed: `up` did not end well
        assert secret not in ran.stdout + ran.stderr
        directories = list(Path(tempfile.gettempdir()).glob(f"dockyard-{sample_project.app}-eblocal-prod-*"))
        assert len(directories) == 1, directories  # a mkdtemp name: not predictable
        directory = directories[0]
        assert directory.stat().st_mode & 0o777 == 0o700
        assert (directory / "Dockerrun.aws.json").is_file() and not (directory / ".env").exists()
        assert files_holding(secret, under=Path(tempfile.gettempdir()), since=started,
                             besides=sample_project.root) == []
    finally:
        down = sample_project.inv("eb.local", "--down", timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr
    assert not list(Path(tempfile.gettempdir()).glob(f"dockyard-{sample_project.app}-eblocal-prod*"))


def test_local_runs_the_compose_bundle(eb, eb_release_images, sample_project):
    port = free_port()
    eb.configure(sample_project, platform="compose")
    tag_release(sample_project, "1.0.0")
    try:
        ran = sample_project.inv("eb.local", "--port", str(port), timeout=600)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "(compose bundle)" in ran.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/sample/site.css", timeout=10) as response:
            assert response.status == 200  # served by the bundle's nginx, with the config shipped in the bundle
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=10) as response:
            assert response.status == 200  # proxied to the app at the pinned release image
    finally:
        down = sample_project.inv("eb.local", "--down", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3)
        answered = True
    except OSError:
        answered = False
    assert not answered, "eb.local --down left the bundle running"


def test_events_follow_stops_when_ready(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0")
    started = sample_project.inv("deploy", "--no-wait", timeout=600)
    assert started.returncode == 0, started.stdout + started.stderr
    assert eb.state("ebsample-prod")["Status"] == "Updating"
    followed = sample_project.inv("eb.events", "--follow", "--until-ready", "--timeout", "300", timeout=400)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    lines = followed.stdout.splitlines()
    assert any("Environment update completed successfully." in line for line in lines), followed.stdout
    assert lines[-1] == "ebsample-prod is Ready"
    assert eb.state("ebsample-prod")["Status"] == "Ready"


def test_events_follow_ends_at_its_timeout(eb, sample_project):
    import time

    eb.configure(sample_project, platform="v1")
    began = time.monotonic()
    followed = sample_project.inv("eb.events", "--follow", "--timeout", "2", timeout=60)
    took = time.monotonic() - began
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert "createEnvironment is starting." in followed.stdout
    assert followed.stdout.splitlines()[-1] == "(stopped following after 2s)"
    assert 2 <= took < 30


def test_status_shows_the_causes_of_bad_health(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.1", "a release whose health check fails")
    failed = sample_project.inv("deploy", "--no-rollback", timeout=600)
    assert failed.returncode == 10, failed.stdout + failed.stderr
    status = sample_project.inv("eb.status")
    assert status.returncode == 0, status.stdout + status.stderr
    lines = status.stdout.splitlines()
    assert "Red" in lines[1] and lines[1].split()[0] == "ebsample-prod"
    assert lines[2] == "causes:"
    assert "Health checks of http://" in lines[3] and "/health/ are failing" in lines[3]
    assert "DescribeEnvironmentHealth" in eb.calls()


# --- the dockercfg format each platform reads -------------------------------------------------------------------

@pytest.mark.parametrize("platform", ["v1", "v2", "compose"])
def test_every_current_platform_gets_the_auths_format_and_legacy_only_when_asked(platform):
    from dockyard.config import parse_settings
    from dockyard.errors import ConfigError

    def eb(**extra):
        return parse_settings({"app": "shop", "image": {"repository": "registry.example.com/shop"},
                               "eb": {"bucket": "shop-bundles", "platform": platform, **extra},
                               "environments": {"prod": {"target": "eb"}}}).eb

    assert eb().format_for(platform) == "auths"
    assert eb(dockercfg_format="legacy").format_for(platform) == "legacy"
    with pytest.raises(ConfigError) as refused:
        eb(dockercfg_format="dockercfg")
    assert refused.value.message.startswith("dockyard.eb.dockercfg_format: expected one of 'auto', 'legacy', "
                                            "'auths', got 'dockercfg'"), refused.value.message


def test_a_legacy_dockercfg_is_written_only_when_asked_and_the_platform_does_not_read_it(
        eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    bogus = sample_project.inv("eb.dockercfg", "--format", "dockercfg")
    assert bogus.returncode == 2, bogus.stderr
    one_line_error(bogus, "--format: expected one of legacy, auths, got 'dockercfg'")
    assert not eb.s3().list_objects_v2(Bucket=eb.bucket).get("Contents")  # nothing uploaded
    made = sample_project.inv("eb.dockercfg", "--format", "legacy")
    assert made.returncode == 0 and "uploaded a legacy dockercfg" in made.stdout, made.stdout + made.stderr
    uploaded = json.loads(eb.s3().get_object(Bucket=eb.bucket, Key="dockyard/ebsample/dockercfg.json")["Body"].read())
    assert list(uploaded) == [eb.registry.host] and set(uploaded[eb.registry.host]) == {"auth", "email"}
    # the stand-in reads only `auths`, as the AL2/AL2023 platforms do: the legacy file logs in nowhere
    tag_release(sample_project, "1.0.0")
    result = sample_project.inv("deploy", timeout=600)
    assert result.returncode == 10, result.stdout + result.stderr
    one_line_error(result, "registry authentication failed")
    assert sample_project.inv("eb.dockercfg").returncode == 0  # the default format: the deploy goes through
    assert sample_project.inv("deploy", timeout=600).returncode == 0
    assert eb.get("ebsample-prod", "/health/")[0] == 200
