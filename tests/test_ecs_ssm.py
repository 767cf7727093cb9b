"""ECS deploys with no bucket (lock and audit records as SSM parameters), the previous-good rollback, and env-file
values/secrets in the task definition: against moto's ECS, SSM and S3 (server mode).

moto never moves a service's PRIMARY deployment off the revision the service was created with: a waited deploy of a
new revision fails (and rolls back), while waiting for the creation revision succeeds. The rollback test uses that:
only the revision it must choose can pass the wait.
"""
from __future__ import annotations

import json

import pytest

from test_ecs_deploy import BUCKET, Ecs, audit_records, ecs  # noqa: F401 - ecs is the fixture

LOCK = "/dockyard/{app}/locks/prod"


@pytest.fixture
def ecs_ssm(ecs):  # noqa: F811
    """The same service, with no bucket configured: lock and records go to SSM."""
    ecs.project.configure({"dockyard": {"ecs": {"bucket": ""}}})
    ecs.project.commit("no bucket")
    return ecs


def ssm_lock(ecs: Ecs, holder: str = "alice@build-7"):
    """The lock another deploy would take (dockyard's own class, through the same moto server)."""
    from dockyard.clients.ssm import SsmClient
    from dockyard.core.locks import DeployLock, SsmLockStore

    store = SsmLockStore(SsmClient(ecs.aws.session(), endpoint_url=ecs.aws.endpoint), LOCK.format(app=ecs.project.app))
    return DeployLock(store, environment="prod", holder=holder)


def ssm_records(ecs: Ecs) -> list[dict]:
    ssm = ecs.aws.client("ssm")
    found, token = {}, None
    while True:
        kwargs = {"Path": f"/dockyard/{ecs.project.app}/audit/prod", "Recursive": True, "MaxResults": 10}
        if token:
            kwargs["NextToken"] = token
        page = ssm.get_parameters_by_path(**kwargs)
        found.update({p["Name"]: json.loads(p["Value"]) for p in page["Parameters"]})
        token = page.get("NextToken")
        if not token:
            return [found[name] for name in sorted(found)]  # oldest first


def lock_parameter(ecs: Ecs) -> dict | None:
    ssm = ecs.aws.client("ssm")
    try:
        return json.loads(ssm.get_parameter(Name=LOCK.format(app=ecs.project.app))["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


# --- 1. a lock that needs no bucket --------------------------------------------------------------------------------

def test_deploy_without_a_bucket_locks_and_audits_in_ssm(ecs_ssm):
    result = ecs_ssm.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SSM parameter {LOCK.format(app=ecs_ssm.project.app)}" in result.stdout, result.stdout
    assert lock_parameter(ecs_ssm) is None  # released
    assert [(r["action"], r["version"], r["result"], r["label"]) for r in ssm_records(ecs_ssm)] == \
        [("deploy", "1.2.4", "started", f"{ecs_ssm.project.app}:2")]
    assert not ecs_ssm.aws.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents")


def test_a_second_deploy_is_refused_with_the_holders_details_and_force_unlock_clears_it(ecs_ssm):
    held = ssm_lock(ecs_ssm)
    held.acquire("1.2.3")
    result = ecs_ssm.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert result.returncode == 9, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("dockyard: prod is locked by alice@build-7 (deploying 1.2.3 since ")
    assert "--force-unlock" in last
    assert ecs_ssm.active() == [1] and ecs_ssm.service()["taskDefinition"].endswith(":1")
    assert lock_parameter(ecs_ssm)["holder"] == "alice@build-7"  # the refused deploy did not touch it

    result = ecs_ssm.inv("ecs.deploy", "--version", "1.2.4", "--no-wait", "--force-unlock")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cleared the lock of alice@build-7 (deploying 1.2.3" in result.stdout
    assert ecs_ssm.service()["taskDefinition"].endswith(f"/{ecs_ssm.project.app}:2")
    assert lock_parameter(ecs_ssm) is None


def test_only_one_of_two_lock_takers_wins(ecs_ssm):
    first, second = ssm_lock(ecs_ssm, "a@one"), ssm_lock(ecs_ssm, "b@two")
    first.acquire("1.2.4")
    from dockyard.errors import LockHeld

    with pytest.raises(LockHeld, match="locked by a@one"):
        second.acquire("1.2.5")
    first.release()
    second.acquire("1.2.5")
    assert lock_parameter(ecs_ssm)["holder"] == "b@two"


def test_a_failed_deploy_releases_the_ssm_lock_and_records_the_outcome(ecs_ssm):
    result = ecs_ssm.inv("ecs.deploy", "--version", "1.2.4")  # moto: PRIMARY never becomes ours -> roll back
    assert result.returncode == 11, result.stdout + result.stderr
    assert lock_parameter(ecs_ssm) is None
    assert [(r["result"], r["label"]) for r in ssm_records(ecs_ssm)] == [("rolled back", f"{ecs_ssm.project.app}:2")]
    assert ecs_ssm.inv("ecs.deploy", "--version", "1.2.4", "--no-wait").returncode == 0  # not left locked


# --- 2. rollback to the previous good release ----------------------------------------------------------------------

def write_record(ecs: Ecs, bucketless: bool, **fields) -> None:
    """An audit record as dockyard writes one (its own writer, into the same store)."""
    from dockyard.clients.s3 import S3Client
    from dockyard.clients.ssm import SsmClient
    from dockyard.core.history import AuditRecord, S3AuditStore, SsmAuditStore

    record = AuditRecord(environment="prod", target="ecs:shop/shop-web", who="carol@laptop",
                         started="2026-01-01T10:00:00+00:00", finished="2026-01-01T10:05:00+00:00", **fields)
    if bucketless:
        ssm = SsmClient(ecs.aws.session(), endpoint_url=ecs.aws.endpoint)
        SsmAuditStore(ssm, f"dockyard/{ecs.project.app}").write(record)
    else:
        S3AuditStore(S3Client(ecs.aws.client("s3")), BUCKET, f"dockyard/{ecs.project.app}").write(record)


@pytest.mark.parametrize("bucketless", [True, False], ids=["ssm-records", "s3-records"])
def test_rollback_goes_to_the_last_good_release_not_the_previous_revision(ecs, bucketless):  # noqa: F811
    app = ecs.project.app
    if bucketless:
        ecs.project.configure({"dockyard": {"ecs": {"bucket": ""}}})
    # history: 1.2.3 went out fine (app:1); 1.2.4 failed and was rolled back (app:2); 1.2.4 again, not waited (app:3)
    write_record(ecs, bucketless, action="deploy", version="1.2.3", label=f"{app}:1", result="succeeded")
    assert ecs.inv("ecs.deploy", "--version", "1.2.4").returncode == 11
    assert ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait").returncode == 0
    assert ecs.service()["taskDefinition"].endswith(f"/{app}:3") and ecs.active() == [1, 2, 3]

    result = ecs.inv("ecs.rollback")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f"rolling back to {app}:1: the last successful deploy before {app}:3 (version 1.2.3, by carol@laptop"
            in result.stdout)
    assert ecs.service()["taskDefinition"].endswith(f"/{app}:1")  # not app:2, the previous ACTIVE revision
    records = ssm_records(ecs) if bucketless else audit_records(ecs)
    assert (records[-1]["action"], records[-1]["result"], records[-1]["label"]) == ("rollback", "succeeded", f"{app}:1")

    again = ecs.inv("ecs.rollback")  # app:1 is live; nothing good is older
    assert again.returncode == 5 and f"no successful deploy of prod before {app}:1" in again.stderr


# --- 3. env file -> environment and SSM secrets --------------------------------------------------------------------

SECRET = "s3cr3t-Value-that-must-not-leak"


@pytest.fixture
def ecs_env(ecs):  # noqa: F811
    env_file = ecs.project.root / "environments" / "prod" / ".env"
    text = env_file.read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("DJANGO_SECRET_KEY="))
    env_file.write_text(text + f"\nDJANGO_SECRET_KEY={SECRET}\n")
    ecs.project.configure({"dockyard": {"ecs": {"env_file": True, "secret_keys": ["DJANGO_SECRET_KEY"]}}})
    return ecs


def test_env_file_becomes_environment_and_secrets_in_ssm_never_printed(ecs_env):
    app = ecs_env.project.app
    diff = ecs_env.inv("ecs.diff", "--version", "1.2.4")
    assert diff.returncode == 0, diff.stderr
    name = f"/{app}/prod/DJANGO_SECRET_KEY"
    assert f'Set secret "DJANGO_SECRET_KEY" in SSM {name} (SecureString) to: "********"' in diff.stdout
    assert 'Added secret "DJANGO_SECRET_KEY" to container "web": "arn:aws:ssm:us-east-1:' in diff.stdout

    result = ecs_env.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert result.returncode == 0, result.stdout + result.stderr
    for output in (diff.stdout, diff.stderr, result.stdout, result.stderr):
        assert SECRET not in output

    web = {c["name"]: c for c in ecs_env.definition(2)["containerDefinitions"]}["web"]
    account = ecs_env.aws.client("sts").get_caller_identity()["Account"]
    assert web["secrets"] == [{"name": "DJANGO_SECRET_KEY",
                               "valueFrom": f"arn:aws:ssm:us-east-1:{account}:parameter{name}"}]
    environment = {e["name"]: e["value"] for e in web["environment"]}
    assert environment == {"APP_ENV": "prod", "DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "*"}
    assert {c["name"]: c for c in ecs_env.definition(2)["containerDefinitions"]}["nginx"].get("secrets") is None

    stored = ecs_env.aws.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert (stored["Type"], stored["Value"]) == ("SecureString", SECRET)

    unchanged = ecs_env.inv("ecs.diff", "--version", "1.2.4")  # the value is in SSM now: no write planned
    assert "Set secret" not in unchanged.stdout


def test_a_secret_key_missing_from_the_env_file_is_refused(ecs_env):
    ecs_env.project.configure({"dockyard": {"ecs": {"secret_keys": ["DJANGO_SECRET_KEY", "NOPE"]}}})
    result = ecs_env.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "dockyard.ecs.secret_keys: NOPE not in" in lines[0]
    assert ecs_env.active() == [1]


def test_debug_output_of_a_deploy_never_carries_the_env_file_values(ecs_env):
    """`inv -d` shows botocore's debug log (API parameters, request bodies): the values are masked there too."""
    result = ecs_env.inv("-d", "ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "PutParameter" in result.stderr and "botocore" in result.stderr  # the debug log was on
    assert SECRET not in result.stdout + result.stderr
    assert "********" in result.stderr
    stored = ecs_env.aws.client("ssm").get_parameter(Name=f"/{ecs_env.project.app}/prod/DJANGO_SECRET_KEY",
                                                     WithDecryption=True)["Parameter"]
    assert stored["Value"] == SECRET  # masked in what people read, not in what was sent
