"""eb.secret_keys as Elastic Beanstalk environment secrets, end to end: moto (SSM, Secrets Manager), the stand-in
(which fetches environmentsecrets ARNs as EB does and refuses {{resolve:ssm:}} on a SecureString), the engine."""
from __future__ import annotations

import json
import subprocess

import pytest
from fixtures.eb import tag_release
from test_eb_failures import one_line_error

SECRETS_NS = "aws:elasticbeanstalk:application:environmentsecrets"
KEY = "DJANGO_SECRET_KEY"


def write_env(project, secret: str) -> None:
    (project.root / "environments/prod/.env").write_text(
        f"{KEY}={secret}\nDJANGO_DEBUG=0\nDJANGO_ALLOWED_HOSTS=*\nAPP_ENV=prod\n")


def container_value(eb, name: str = KEY) -> str | None:
    """The variable as the running container of ebsample-prod has it."""
    ids = eb.standin._container_ids(eb.standin.environments["ebsample-prod"])
    assert ids, "no container runs"
    env = json.loads(subprocess.run(["docker", "inspect", "--format", "{{json .Config.Env}}", ids[0]],
                                    capture_output=True, text=True, check=True, timeout=30).stdout)
    found = [e.split("=", 1)[1] for e in env if e.startswith(f"{name}=")]
    return found[0] if found else None


def secret_options(eb) -> dict[str, str]:
    options = eb.standin.snapshot()["environments"]["ebsample-prod"]["options"]
    return {k[len(SECRETS_NS) + 1:]: v for k, v in options.items() if k.startswith(SECRETS_NS + ":")}


@pytest.mark.parametrize("backend", ["ssm", "secretsmanager"])
def test_deploy_gives_the_container_the_secret_and_rollback_restores_the_old_one(eb, eb_release_images,
                                                                                 sample_project, backend):
    first, second = "first-Secret/value+1", "second-Secret/value+2"
    eb.configure(sample_project, platform="v1", secret_keys=[KEY], secrets_backend=backend)
    eb.upload_dockercfg(sample_project)
    write_env(sample_project, first)
    tag_release(sample_project, "1.0.0")
    dry = sample_project.inv("deploy", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    deployed = sample_project.inv("deploy", timeout=600)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert container_value(eb) == first
    arn = secret_options(eb)[KEY]
    if backend == "ssm":
        assert arn.startswith("arn:aws:ssm:") and arn.endswith(":parameter/ebsample/prod/DJANGO_SECRET_KEY")
        stored = eb.moto.client("ssm").get_parameter(Name="/ebsample/prod/DJANGO_SECRET_KEY")["Parameter"]
        assert stored["Type"] == "SecureString"
    else:
        assert arn.startswith("arn:aws:secretsmanager:") and ":secret:ebsample/prod/DJANGO_SECRET_KEY-" in arn
    if backend == "ssm":
        assert arn in dry.stdout  # the plan names the ARN, never the value
    label = eb.state("ebsample-prod")["VersionLabel"]
    # the secret changes: eb.setenv stores the new value, the container gets it
    write_env(sample_project, second)
    redeploy = sample_project.inv("eb.setenv", timeout=600)
    assert redeploy.returncode == 0, redeploy.stdout + redeploy.stderr
    assert container_value(eb) == second
    rolled = sample_project.inv("eb.rollback", "--label", label, timeout=600)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert container_value(eb) == first
    assert secret_options(eb)[KEY] == arn
    for result in (dry, deployed, redeploy, rolled):
        out = result.stdout + result.stderr
        assert first not in out and second not in out


def test_a_key_moved_out_of_secret_keys_loses_its_secret_option_and_becomes_plain(eb, eb_release_images,
                                                                                  sample_project):
    eb.configure(sample_project, platform="v1", secret_keys=[KEY])
    eb.upload_dockercfg(sample_project)
    write_env(sample_project, "was-a-secret-1")
    tag_release(sample_project, "1.0.0")
    assert sample_project.inv("deploy", timeout=600).returncode == 0
    assert KEY in secret_options(eb)
    eb.configure(sample_project, platform="v1", secret_keys=[])
    moved = sample_project.inv("deploy", timeout=600)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert KEY not in secret_options(eb)
    assert container_value(eb) == "was-a-secret-1"
    assert "was-a-secret-1" not in moved.stdout + moved.stderr


def test_the_standin_refuses_resolve_ssm_on_a_securestring_as_aws_does(eb, eb_release_images, sample_project):
    eb.moto.client("ssm").put_parameter(Name="/ebsample/prod/LEGACY", Value="never-resolved", Type="SecureString")
    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    eb.client().update_environment(EnvironmentName="ebsample-prod", OptionSettings=[
        {"Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "LEGACY",
         "Value": "{{resolve:ssm:/ebsample/prod/LEGACY}}"}])
    eb.standin.wait_idle(60)
    tag_release(sample_project, "1.0.0")
    failed = sample_project.inv("deploy", timeout=600)
    assert failed.returncode == 10, failed.stdout + failed.stderr
    assert "SecureString" in failed.stdout + failed.stderr and "never-resolved" not in failed.stdout + failed.stderr


def test_an_unknown_secrets_backend_is_one_line_exit_2(eb, sample_project):
    eb.configure(sample_project, platform="v1", secret_keys=[KEY], secrets_backend="vault")
    refused = sample_project.inv("deploy", "--dry-run")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    one_line_error(refused, "dockyard.eb.secrets_backend", "'secretsmanager'", "vault")


@pytest.mark.parametrize("backend", ["ssm", "secretsmanager"])
def test_a_failed_deploy_that_changed_a_secret_rolls_back_with_the_old_value(eb, eb_release_images, sample_project,
                                                                           backend):
    old, new = "old-Secret/value+1", "new-Secret/value+2"
    eb.configure(sample_project, platform="v1", secret_keys=[KEY], secrets_backend=backend)
    eb.upload_dockercfg(sample_project)
    write_env(sample_project, old)
    tag_release(sample_project, "1.0.0")
    first = sample_project.inv("deploy", timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    good = eb.state("ebsample-prod")["VersionLabel"]
    write_env(sample_project, new)
    tag_release(sample_project, "1.0.1", "a release whose health check fails")
    dry = sample_project.inv("deploy", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"roll back to {good} with the secret values it ran with ({KEY})" in dry.stdout
    failed = sample_project.inv("deploy", timeout=600)
    assert failed.returncode == 11, failed.stdout + failed.stderr
    assert f"restored the secret values {good} ran with ({KEY})" in failed.stdout
    assert eb.state("ebsample-prod")["VersionLabel"] == good
    assert container_value(eb) == old  # 1.0.0 serves with the value it was deployed with, not the failed one's
    for result in (first, dry, failed):
        assert old not in result.stdout + result.stderr and new not in result.stdout + result.stderr
