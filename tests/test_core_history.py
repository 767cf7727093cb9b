"""The one audit record and "previous good release" finder over the three stores (S3 and SSM in moto's server mode, a
host's log over real SSH), the actor, and AWS failures other than a denial as dockyard's one-line exit 8."""
from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest
from test_core_locks import ssh_host

from dockyard.clients.aws import AwsApi
from dockyard.clients.s3 import S3Client
from dockyard.clients.ssm import SsmClient
from dockyard.core.actor import actor
from dockyard.core.history import (AuditRecord, HostAuditLog, S3AuditStore, SsmAuditStore, parse_audit,
                                   previous_good_release)
from dockyard.errors import AwsError, NoCredentials

BUCKET = "audit-bucket"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)

# (action, version, result), oldest first: 1.2.5 is live (its deploy was not waited for); 1.2.6 failed after it.
HISTORY = [("deploy", "1.2.2", "succeeded"), ("deploy", "1.2.3", "succeeded"), ("deploy", "1.2.4", "rolled back"),
           ("deploy", "1.2.5", "started"), ("deploy", "1.2.6", "health-failed")]


def records() -> list[AuditRecord]:
    out = []
    for n, (action, version, result) in enumerate(HISTORY):
        at = T0 + timedelta(minutes=n)
        out.append(AuditRecord(action=action, environment="prod", target="shop-prod", version=version, label=version,
                               who="carol@laptop", started=at.isoformat(timespec="seconds"),
                               finished=(at + timedelta(seconds=30)).isoformat(timespec="seconds"), result=result,
                               previous_label=out[-1].label if out else "", image=f"reg/shop:{version}"))
    return out


@pytest.fixture
def stores(request, aws, tmp_path):
    """Each target's store, holding the same history."""
    aws.client("s3").create_bucket(Bucket=BUCKET)
    ticks = iter(T0 + timedelta(seconds=n) for n in range(100))
    host = ssh_host(request.getfixturevalue("sshd_host"))
    made = {
        "s3": S3AuditStore(S3Client(aws.client("s3")), BUCKET, "dockyard/shop"),
        "ssm": SsmAuditStore(SsmClient(aws.session(), endpoint_url=aws.endpoint), "dockyard/shop",
                             clock=lambda: next(ticks)),
        "host": HostAuditLog(host, str(tmp_path / "audit.log")),
    }
    for store in made.values():
        for record in records():
            store.write(record)
    yield made
    host.close()


def test_every_store_reads_back_the_same_records_newest_first(stores):
    read = {kind: store.records("prod") for kind, store in stores.items()}
    wanted = [(r.action, r.version, r.label, r.result, r.who, r.previous_label, r.image) for r in records()[::-1]]
    for kind, found in read.items():
        assert [(r.action, r.version, r.label, r.result, r.who, r.previous_label, r.image) for r in found] == wanted, \
            kind
    assert stores["s3"].records("staging") == [] and stores["ssm"].records("staging") == []


@pytest.mark.parametrize("live, available, expected", [
    ("1.2.5", None, "1.2.3"),  # skips the unwaited live one, the rolled-back and the failed ones
    ("1.2.5", {"1.2.5", "1.2.2"}, "1.2.2"),  # only what can still go live (ECS: ACTIVE; staging: retained)
    ("1.2.3", None, "1.2.2"),  # records newer than the live one's are not "before" it
    ("9.9.9", None, "1.2.3"),  # live set outside dockyard: every record counts
    ("1.2.2", None, None),  # nothing good before the first
])
def test_every_store_gives_the_same_previous_good_release(stores, live, available, expected):
    answers = {kind: previous_good_release(store.records("prod"), live, available) for kind, store in stores.items()}
    assert {kind: (found.version if found else None) for kind, found in answers.items()} == \
        dict.fromkeys(stores, expected)


def test_a_host_log_is_a_line_per_record_and_older_lines_still_read():
    text = ("2026-01-01T00:00:00Z deploy version=v1 previous=- by=a outcome=ok\n"
            "garbage\n"
            "2026-01-02T00:00:00+00:00 rollback version=v0 previous=v1 by=b@c outcome='rolled back' image=x:v0\n")
    old, new = parse_audit(text, "staging")
    assert (old.version, old.label, old.result, old.previous_label, old.environment) == ("v1", "v1", "succeeded", "",
                                                                                        "staging")
    assert (new.action, new.result, new.who, new.image) == ("rollback", "rolled back", "b@c", "x:v0")
    legacy = AuditRecord.from_dict({"action": "deploy", "environment": "prod", "version": "1", "a_future_key": 1})
    assert (legacy.label, legacy.who, legacy.result) == ("", "", "")


def test_the_actor_is_the_ci_user_or_the_os_user_at_this_host(monkeypatch):
    import getpass

    here = socket.gethostname()
    for variable in ("DOCKYARD_ACTOR", "GITHUB_ACTOR", "CIRCLE_USERNAME", "GITLAB_USER_LOGIN"):
        monkeypatch.delenv(variable, raising=False)
    assert actor() == f"{getpass.getuser()}@{here}"
    monkeypatch.setenv("GITLAB_USER_LOGIN", "gitlab-user")
    assert actor() == f"gitlab-user@{here}"
    monkeypatch.setenv("CIRCLE_USERNAME", "circle-user")
    assert actor() == f"circle-user@{here}"
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    assert actor() == f"octocat@{here}"
    monkeypatch.setenv("DOCKYARD_ACTOR", "release-bot")
    assert actor() == f"release-bot@{here}"


# --- AWS failures other than a denial ---------------------------------------------------------------------------------

def test_an_unreachable_endpoint_is_exit_7_a_bad_request_and_no_credentials_exit_8_one_line_each(aws, monkeypatch):
    import boto3
    from botocore.config import Config
    from conftest import free_port

    dead = aws.session().client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}",
                                config=Config(retries={"total_max_attempts": 1}, connect_timeout=2))
    with pytest.raises(AwsError) as unreachable:
        S3Client(dead).read(BUCKET, "k")
    assert unreachable.value.exit_code == 7  # a lost connection (issue 11), still an AwsError
    assert unreachable.value.message.startswith(f"s3:GetObject on s3://{BUCKET}/k: cannot reach http://127.0.0.1:")
    assert "check dockyard.aws.region and dockyard.aws.endpoint_url" in unreachable.value.message

    with pytest.raises(AwsError) as invalid:
        AwsApi(aws.client("s3")).call("put_object", f"s3://{BUCKET}", Bucket=BUCKET)  # no Key
    assert invalid.value.message.startswith(f"s3:PutObject on s3://{BUCKET}: invalid request (")
    assert "\n" not in invalid.value.message

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    anonymous = boto3.Session(region_name="us-east-1").client("ssm", endpoint_url=aws.endpoint)
    with pytest.raises(NoCredentials) as none:
        AwsApi(anonymous).call("get_parameter", "/x", Name="/x")
    assert none.value.exit_code == 8
    assert none.value.message.startswith("ssm:GetParameter on /x: no AWS credentials found: set AWS_PROFILE")


def test_a_missing_object_or_parameter_is_none_not_an_error(aws):
    aws.client("s3").create_bucket(Bucket=BUCKET)
    s3 = S3Client(aws.client("s3"))
    assert s3.read(BUCKET, "nothing") is None and s3.metadata(BUCKET, "nothing") is None
    assert s3.create(BUCKET, "once", b"1") is True and s3.create(BUCKET, "once", b"2") is False
    assert s3.read_text(BUCKET, "once") == "1" and s3.keys(BUCKET, "on") == ["once"]
    ssm = SsmClient(aws.session(), endpoint_url=aws.endpoint)
    assert ssm.get("/nothing") is None and ssm.delete("/nothing") is False
