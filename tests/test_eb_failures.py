"""Deploys that go wrong, against the stand-in: rollback, bad credentials, the lock, and bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import library_path
from fixtures.eb import tag_release, wait_for


def one_line_error(result, *words: str) -> str:
    """The task failed with exactly one line on stderr, no traceback, naming ``words``."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]
    return lines[0]


def objects(eb) -> list[str]:
    found = eb.s3().list_objects_v2(Bucket=eb.bucket).get("Contents") or []
    return sorted(o["Key"] for o in found)


def versions(eb) -> list[str]:
    return sorted(v["VersionLabel"] for v in eb.client().describe_application_versions(
        ApplicationName=eb.application)["ApplicationVersions"])


def test_failing_release_is_detected_and_rolled_back(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0")
    first = sample_project.inv("deploy", timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    good = eb.state("ebsample-prod")["VersionLabel"]
    tag_release(sample_project, "1.0.1", "a release whose health check fails")
    second = sample_project.inv("deploy", timeout=600)
    assert second.returncode == 11, second.stdout + second.stderr
    line = one_line_error(second, "rolled back to " + good)
    assert "Red" in line
    state = eb.state("ebsample-prod")
    assert (state["Status"], state["VersionLabel"], state["Health"]) == ("Ready", good, "Green")
    assert eb.get("ebsample-prod", "/health/")[0] == 200
    audit = [k for k in objects(eb) if "/audit/prod/" in k]
    results = [json.loads(eb.s3().get_object(Bucket=eb.bucket, Key=k)["Body"].read())["result"] for k in audit]
    assert sorted(results) == ["rolled back", "succeeded"]
    assert not [k for k in objects(eb) if "/locks/" in k]
    # eb.rollback with no label finds the previous good one in the audit records; here that is the live one,
    # so it names no other: the versions list still shows which failed
    listing = sample_project.inv("eb.versions")
    assert listing.returncode == 0 and "rolled back" in listing.stdout


def test_wrong_dockercfg_says_authentication_failed(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project, password="not-the-password")
    tag_release(sample_project, "1.0.0")
    result = sample_project.inv("deploy", timeout=600)
    assert result.returncode == 10
    one_line_error(result, "authentication failed")
    assert "VersionLabel" not in eb.state("ebsample-prod")


def test_second_concurrent_deploy_is_refused_by_the_lock(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0")
    env = {**os.environ, "PYTHONPATH": library_path(), **sample_project.env}
    procs = [subprocess.Popen([sys.executable, "-m", "invoke", "deploy"], cwd=sample_project.root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = sorted((p.wait(timeout=600), p.stderr.read()) for p in procs)
    assert [code for code, _ in outcomes] == [0, 9], outcomes
    assert "is locked by" in outcomes[1][1] and "--force-unlock" in outcomes[1][1]


def test_stale_lock_refuses_then_force_unlock_clears_it(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0")
    eb.s3().put_object(Bucket=eb.bucket, Key="dockyard/ebsample/locks/prod.json", Body=json.dumps(
        {"holder": "ci@runner-7", "environment": "prod", "version": "0.9.0", "acquired": "2026-01-01T00:00:00+00:00"}))
    before = objects(eb)
    refused = sample_project.inv("deploy")
    assert refused.returncode == 9
    one_line_error(refused, "locked by ci@runner-7", "0.9.0")
    assert objects(eb) == before and eb.mutating_calls() == ["CreateApplication", "CreateEnvironment"]
    forced = sample_project.inv("deploy", "--force-unlock", timeout=600)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "cleared the lock of ci@runner-7" in forced.stdout


def test_dry_run_changes_nothing(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v2")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0")
    before = objects(eb)
    result = sample_project.inv("deploy", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Dockerrun.aws.json" in result.stdout and "containerDefinitions" in result.stdout
    assert "docker/nginx/default.conf" in result.stdout
    assert "eb.update_environment(application='ebsample', name='ebsample-prod'" in result.stdout and "(dry run: nothing was changed)" in result.stdout
    assert "+++ this deploy" in result.stdout
    assert objects(eb) == before
    assert eb.mutating_calls() == ["CreateApplication", "CreateEnvironment"]


def test_same_release_twice_reuses_bundle_and_version(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0")
    assert sample_project.inv("deploy", timeout=600).returncode == 0
    again = sample_project.inv("deploy", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "not uploading it again" in again.stdout and "reusing it" in again.stdout
    assert len(versions(eb)) == 1


# --- bad input: one line, exit != 0, nothing uploaded or changed -------------------------------------------------


@pytest.fixture
def ready(eb, sample_project):
    eb.configure(sample_project, platform="v2")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0")
    return sample_project


def assert_nothing_changed(eb, before):
    assert objects(eb) == before
    assert eb.mutating_calls() == ["CreateApplication", "CreateEnvironment"]
    assert versions(eb) == []


@pytest.mark.parametrize("args, overrides, env, words", [
    (("--env", "nope"), {}, {}, ("unknown environment 'nope'",)),
    (("--env", "dev"), {}, {}, ("not deployed to Elastic Beanstalk",)),
    ((), {"eb": {"application": "missing-app"}}, {}, ("application 'missing-app' does not exist",)),
    ((), {"eb": {"bucket": "no-such-bucket"}}, {}, ("bucket 'no-such-bucket' does not exist",)),
    ((), {"environments": {"prod": {"eb": {"name": "ghost"}}}}, {}, ("environment 'ghost' does not exist",)),
    (("--version", "9.9.9"), {}, {}, ("release 9.9.9 is not published",)),
    ((), {}, {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
              "AWS_CONFIG_FILE": "/nonexistent"}, ("no AWS credentials",)),
    ((), {"eb": {"platform": "v9"}}, {}, ("dockyard.eb.platform",)),
])
def test_bad_input(eb, eb_release_images, ready, args, overrides, env, words):
    if overrides:
        ready.configure({"dockyard": overrides})
    before = objects(eb)
    result = ready.inv("deploy", *args, env=env)
    one_line_error(result, *words)
    assert_nothing_changed(eb, before)


def test_version_not_in_registry(eb, ready):
    tag_release(ready, "7.0.0")  # tagged in git, never pushed
    before = objects(eb)
    result = ready.inv("deploy")
    one_line_error(result, "7.0.0 is not published", "not in the registry")
    assert_nothing_changed(eb, before)


def test_compose_key_without_v2_equivalent(eb, eb_release_images, ready):
    compose = ready.root / "docker/prod/compose.yml"
    text = compose.read_text().replace("    mem_limit: 128m\n", "    mem_limit: 128m\n    network_mode: host\n")
    compose.write_text(text)
    ready.commit("host networking")
    before = objects(eb)
    result = ready.inv("deploy")
    assert result.returncode == 2
    one_line_error(result, "service 'nginx'", "'network_mode'")
    assert_nothing_changed(eb, before)


def foreign_s3(eb, account: str):
    """An S3 client acting as another AWS account (moto takes the account from this header)."""
    client = eb.s3()
    client.meta.events.register("before-sign.s3.*",
                                lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return client


def test_bucket_of_another_account_is_refused(eb, eb_release_images, ready):
    foreign = foreign_s3(eb, "111122223333")
    foreign.create_bucket(Bucket="someone-elses-bundles")
    assert eb.s3().head_bucket(Bucket="someone-elses-bundles")  # reachable: only its owner tells it apart
    ready.configure({"dockyard": {"eb": {"bucket": "someone-elses-bundles"}}})
    ready.commit("a bucket that is not ours")
    before = objects(eb)
    result = ready.inv("deploy")
    assert result.returncode == 5, result.stdout + result.stderr
    one_line_error(result, "bucket 'someone-elses-bundles' is not ours", "another account than 123456789012")
    assert foreign.list_objects_v2(Bucket="someone-elses-bundles").get("KeyCount") == 0
    assert_nothing_changed(eb, before)
    dockercfg = ready.inv("eb.dockercfg")
    assert dockercfg.returncode == 5
    one_line_error(dockercfg, "is not ours")
    assert foreign.list_objects_v2(Bucket="someone-elses-bundles").get("KeyCount") == 0


def test_label_conflict(eb, eb_release_images, ready):
    sha = ready.git("rev-parse", "v1.0.0^{commit}").stdout.strip()
    label = f"1.0.0-{sha[:7]}"
    eb.s3().put_object(Bucket=eb.bucket, Key="other.zip", Body=b"not ours")
    eb.client().create_application_version(ApplicationName=eb.application, VersionLabel=label,
                                           SourceBundle={"S3Bucket": eb.bucket, "S3Key": "other.zip"})
    before = objects(eb)
    result = ready.inv("deploy")
    assert result.returncode == 5
    one_line_error(result, f"version {label} already exists with a different bundle")
    assert objects(eb) == before


def test_environment_not_ready_is_refused(eb, eb_release_images, ready):
    started = ready.inv("deploy", "--no-wait", timeout=600)
    assert started.returncode == 0, started.stdout + started.stderr
    result = ready.inv("deploy")
    assert result.returncode == 5
    one_line_error(result, "is Updating, not Ready", "wait until it is Ready")


def test_sigterm_while_waiting_frees_the_lock_and_audits_interrupted(eb, eb_release_images, sample_project):
    """What CI cancel and `timeout` send, during the wait for Ready: like Ctrl-C, with exit 143."""
    import signal

    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0")
    env = {**os.environ, "PYTHONPATH": library_path(), **sample_project.env}
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "deploy"], cwd=sample_project.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "] wait for Ready" in line:
                break
        assert proc.poll() is None, seen
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, ("".join(seen), out, err)
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "dockyard: interrupted by SIGTERM", err
    assert not [k for k in objects(eb) if "/locks/" in k]
    audit = [k for k in objects(eb) if "/audit/prod/" in k]
    records = [json.loads(eb.s3().get_object(Bucket=eb.bucket, Key=k)["Body"].read()) for k in audit]
    assert [(r["version"], r["result"]) for r in records] == [("1.0.0", "interrupted")]
    again = sample_project.inv("deploy", timeout=600)
    if again.returncode == 5:  # the interrupted update may still run on the platform: refused by its state, no lock
        assert "is Updating, not Ready" in again.stderr, again.stderr
        assert wait_for(lambda: eb.state("ebsample-prod")["Status"] == "Ready", timeout=300)
        again = sample_project.inv("deploy", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
