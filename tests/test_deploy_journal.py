"""The journal beside an AWS target's lock: a deploy killed outright (SIGKILL: an OOM kill, a lost CI runner)
writes no audit record, so `status` shows what it left and the next deploy records it as interrupted."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
from fixtures.tcp_proxy import tcp_proxy
from test_ecs_deploy import BUCKET as BUCKET_OF_ECS
from test_ecs_deploy import PYTHONPATH, audit_records, ecs  # noqa: F401 - ecs is a fixture

from dockyard.core.history import AuditRecord
from dockyard.core.journal import DeployJournal, JournalEntry, journal_line, settle


class MemoryJournal:
    where = "memory"

    def __init__(self) -> None:
        self.entry: JournalEntry | None = None
        self.writes: list[JournalEntry] = []

    def read(self):
        return self.entry

    def write(self, entry):
        self.entry = entry
        self.writes.append(entry)

    def remove(self):
        self.entry = None


class MemoryAudit:
    def __init__(self) -> None:
        self.written: list[AuditRecord] = []

    def write(self, record):
        self.written.append(record)
        return "memory audit"

    def records(self, environment, *, limit=200):
        return list(reversed(self.written))


NOW = datetime(2026, 12, 2, 11, 0, tzinfo=timezone.utc)


def entry(**changes) -> JournalEntry:
    base = dict(deploy="ci@runner:1@t", action="deploy", environment="prod", target="ecs:shop/web", version="1.2.4",
                previous_label="shop:3", started="2026-12-02T10:59:00+00:00", who="ci@runner")
    return JournalEntry(**{**base, **changes})


def test_a_deploy_records_each_step_and_removes_its_entry_when_it_closes():
    store = MemoryJournal()
    journal = DeployJournal(store, entry(), clock=lambda: NOW)
    journal.begin()
    journal.reached(1, 3, "Take the lock")
    journal.reached(2, 3, "Update service")
    assert [(e.step, e.description) for e in store.writes] == [(0, ""), (1, "Take the lock"), (2, "Update service")]
    assert "in progress: deploy of 1.2.4 at step 2/3 (Update service)" == journal_line(store, "held by ci@runner")
    journal.close()
    assert store.entry is None and journal_line(store, "free (memory)") == ""


def test_close_leaves_an_entry_another_deploy_wrote_after_a_force_unlock():
    store = MemoryJournal()
    journal = DeployJournal(store, entry(), clock=lambda: NOW)
    journal.begin()
    store.write(entry(deploy="other@host:2@t"))
    journal.close()
    assert store.entry is not None and store.entry.deploy == "other@host:2@t"


def test_settle_writes_the_missing_record_once_and_says_where_it_stopped():
    store, audit, said = MemoryJournal(), MemoryAudit(), []
    store.write(entry(step=4, total=5, description="Wait until the PRIMARY deployment runs it"))
    record = settle(store, audit, say=said.append, clock=lambda: NOW)
    assert record is not None and audit.written == [record]
    assert (record.result, record.version, record.previous_label) == ("interrupted", "1.2.4", "shop:3")
    assert "at step 4/5 (Wait until the PRIMARY deployment runs it)" in record.detail
    assert store.entry is None and len(said) == 1 and "recorded it as interrupted" in said[0]
    assert settle(store, audit, say=said.append) is None and len(audit.written) == 1


def test_status_calls_an_entry_whose_lock_is_free_or_stale_interrupted():
    store = MemoryJournal()
    store.write(entry(step=2, total=5, description="Register"))
    for lock in ("free (s3://b/k)", "held by ci@runner (deploying 1.2.4 since x, pid 9 on h; STALE: pid 9 is gone)"):
        assert journal_line(store, lock).startswith("INTERRUPTED: deploy of 1.2.4 by ci@runner"), lock


def test_a_journal_that_is_not_ours_is_ignored():
    assert JournalEntry.from_json("not json") is None
    assert JournalEntry.from_json(json.dumps({"deploy": "x"})) is None
    assert JournalEntry.from_json(json.dumps(["a"])) is None


# --- against moto: ECS ------------------------------------------------------------------------------------------


def journal_keys(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents") or [] if "/journal/" in o["Key"]]


def test_ecs_deploy_killed_after_registering_is_shown_by_status_and_settled_by_the_next_deploy(aws, ecs):  # noqa: F811
    s3 = aws.client("s3")
    with tcp_proxy(aws.endpoint) as proxy:
        env = {**os.environ, **aws.env, **PYTHONPATH, "INVOKE_DOCKYARD_AWS_ENDPOINT_URL": proxy.endpoint}
        proc = subprocess.Popen([sys.executable, "-m", "invoke", "ecs.deploy", "--version", "1.2.4"],
                                cwd=ecs.project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, env=env)
        seen = []
        try:
            for line in proc.stdout:
                seen.append(line)
                if line.strip().startswith("registered "):
                    proxy.freeze()  # the next call (the journal's next step) hangs: the process is mid-deploy
                    break
            assert proc.poll() is None, seen
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        proxy.reset()  # the held requests never arrive
    assert audit_records(ecs) == []  # the killed process wrote none
    assert len(journal_keys(s3, BUCKET_OF_ECS)) == 1

    status = ecs.inv("ecs.status")
    assert status.returncode == 0, status.stderr
    journal = [line for line in status.stdout.splitlines() if "journal:" in line]
    assert len(journal) == 1 and "INTERRUPTED: deploy of 1.2.4" in journal[0], status.stdout
    assert "Register a new revision" in journal[0], journal[0]

    refused = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert refused.returncode == 9 and "--force-unlock" in refused.stderr, refused.stderr
    assert audit_records(ecs) == [] and len(journal_keys(s3, BUCKET_OF_ECS)) == 1  # refused: nothing changed

    settled = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait", "--force-unlock")
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert "an earlier deploy of 1.2.4" in settled.stdout and "recorded it as interrupted" in settled.stdout
    records = audit_records(ecs)
    assert [(r["version"], r["result"]) for r in records] == [("1.2.4", "interrupted"), ("1.2.4", "started")]
    assert "Register a new revision" in records[0]["detail"]
    assert journal_keys(s3, BUCKET_OF_ECS) == []
    assert "journal:" not in ecs.inv("ecs.status").stdout


def test_ecs_deploys_that_end_leave_no_journal(aws, ecs):  # noqa: F811
    assert ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait").returncode == 0
    failed = ecs.inv("ecs.deploy", "--version", "1.2.3")  # moto never moves PRIMARY: fails, rolls back
    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert journal_keys(aws.client("s3"), BUCKET_OF_ECS) == []
    assert [r["result"] for r in audit_records(ecs)] == ["started", "failed"]


# --- against the EB stand-in: a deploy killed while it waits for Ready -----------------------------------------


def test_eb_deploy_killed_while_waiting_is_shown_by_status_and_settled_by_the_next_deploy(eb, eb_release_images,
                                                                                           sample_project):
    from fixtures.eb import tag_release
    from test_concurrent_deploys import eb_lock_left, eb_records

    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0")
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "deploy"], cwd=sample_project.root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env={**os.environ, **PYTHONPATH, **sample_project.env})
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "] wait for Ready" in line:
                break
        assert proc.poll() is None, seen
        # the journal records the wait (its last step) as it starts; kill once it is there (bounded)
        s3, deadline = eb.s3(), time.monotonic() + 30
        while not any(json.loads(s3.get_object(Bucket=eb.bucket, Key=o["Key"])["Body"].read()).get("step") == 5
                      for o in s3.list_objects_v2(Bucket=eb.bucket).get("Contents") or [] if "/journal/" in o["Key"]):
            assert time.monotonic() < deadline and proc.poll() is None, seen
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    eb.standin.wait_idle(120)  # the update the killed process started goes on without it
    assert eb_records(eb) == [] and eb_lock_left(eb)  # no record written; the lock stays

    status = sample_project.inv("eb.status")
    assert status.returncode == 0, status.stderr
    journal = [line for line in status.stdout.splitlines() if "journal:" in line]
    assert len(journal) == 1 and "INTERRUPTED: deploy of 1.0.0" in journal[0], status.stdout
    assert "stopped at step 5/5 (wait for Ready, 1.0.0-" in journal[0], journal[0]

    refused = sample_project.inv("deploy")
    assert refused.returncode == 9 and "--force-unlock" in refused.stderr, refused.stderr
    assert eb_records(eb) == []  # refused: nothing settled

    settled = sample_project.inv("deploy", "--force-unlock")
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert "recorded it as interrupted" in settled.stdout + settled.stderr
    assert [r["result"] for r in eb_records(eb)][:1] == ["interrupted"], eb_records(eb)
    assert eb_records(eb)[-1]["result"] == "succeeded"
    s3 = eb.s3()
    assert not [o["Key"] for o in s3.list_objects_v2(Bucket=eb.bucket).get("Contents") or [] if "/journal/" in o["Key"]]
