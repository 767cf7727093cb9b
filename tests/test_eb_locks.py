"""The deploy lock and audit log against moto's S3 (throttling retries: test_aws_retries.py)."""
from __future__ import annotations

import pytest

from dockyard.clients.s3 import S3Client
from dockyard.core.history import AuditRecord, S3AuditStore
from dockyard.core.locks import DeployLock, S3LockStore
from dockyard.errors import LockHeld


@pytest.fixture
def s3(aws):
    client = aws.client("s3")
    client.create_bucket(Bucket="locks-bucket")
    return client


def s3_lock(s3, holder: str | None = None) -> DeployLock:
    return DeployLock(S3LockStore(S3Client(s3), "locks-bucket", "app/locks/prod.json"), environment="prod",
                      holder=holder)


def test_only_one_holder_and_release(s3):
    first = s3_lock(s3, holder="alice@laptop")
    second = s3_lock(s3, holder="ci@runner")
    first.acquire("1.0.0")
    with pytest.raises(LockHeld) as held:
        second.acquire("1.0.1")
    assert "locked by alice@laptop (deploying 1.0.0 since" in held.value.message
    first.release()
    second.acquire("1.0.1")
    assert second.current().holder == "ci@runner"
    assert s3_lock(s3).force_unlock().version == "1.0.1"
    assert second.current() is None


def test_audit_records_newest_first(s3):
    log = S3AuditStore(S3Client(s3), "locks-bucket", "dockyard/app")
    for n, result in enumerate(["succeeded", "rolled back"]):
        log.write(AuditRecord(action="deploy", environment="prod", target="app-prod", version=f"1.0.{n}",
                              label=f"1.0.{n}-abc", who="me@here", started=f"2026-01-0{n + 1}T00:00:00+00:00",
                              result=result))
    records = log.records("prod")
    assert [r.label for r in records] == ["1.0.1-abc", "1.0.0-abc"]
    assert log.records("staging") == []
