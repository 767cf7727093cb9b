"""The one deploy lock over its three stores: an S3 object and an SSM parameter (moto, server mode) and a ``mkdir``
on an SSH host (the sshd fixture). The same refusal from each, exactly one winner of two at once, and an AWS
permission missing on the lock write is one line with exit 8."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone

import pytest
from conftest import REPO
from fixtures.aws import FAKE_CREDENTIALS, running_moto

from dockyard.clients.s3 import S3Client
from dockyard.clients.ssm import SsmClient
from dockyard.core.history import AuditRecord, S3AuditStore
from dockyard.core.locks import DeployLock, HostDirLockStore, LockRecord, S3LockStore, SsmLockStore
from dockyard.errors import AwsError, LockHeld

BUCKET = "lock-bucket"
KEY = "dockyard/shop/locks/prod.json"
PARAMETER = "/dockyard/shop/locks/prod"
STORES = ["s3", "ssm", "ssh-mkdir"]
AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def stores(request, aws, tmp_path):
    """``make(kind)``: a new store object (its own client/connection) on the one lock location of ``kind``."""
    aws.client("s3").create_bucket(Bucket=BUCKET)
    opened = []

    def make(kind: str):
        if kind == "s3":
            return S3LockStore(S3Client(aws.client("s3")), BUCKET, KEY)
        if kind == "ssm":
            return SsmLockStore(SsmClient(aws.session(), endpoint_url=aws.endpoint), PARAMETER)
        host = ssh_host(request.getfixturevalue("sshd_host"))
        opened.append(host)
        return HostDirLockStore(host, str(tmp_path / "lock"), host_name=host.name)

    yield make
    for host in opened:
        host.close()


def ssh_host(sshd):
    from dockyard.clients.ssh import SshHost, SshOptions

    options = SshOptions(key_file=sshd.key_file, use_agent=False, known_hosts=sshd.known_hosts)
    return SshHost(sshd.user, "127.0.0.1", sshd.port, options)


def lock(store, holder: str) -> DeployLock:
    return DeployLock(store, environment="prod", holder=holder, clock=lambda: AT)


@pytest.mark.parametrize("kind", STORES)
def test_a_held_lock_refuses_with_the_holder_and_force_unlock_clears_it(stores, kind):
    first, second = lock(stores(kind), "alice@laptop"), lock(stores(kind), "ci@runner")
    taken = first.acquire("1.2.3")
    assert (taken.holder, taken.version, taken.acquired) == ("alice@laptop", "1.2.3", "2026-03-01T12:00:00+00:00")
    with pytest.raises(LockHeld) as held:
        second.acquire("1.2.4")
    assert held.value.exit_code == 9
    assert held.value.message == (
        f"prod is locked by alice@laptop (deploying 1.2.3 since 2026-03-01T12:00:00+00:00, pid {os.getpid()} on "
        f"{taken.host}): wait for it, or run with --force-unlock if that deploy is dead")
    assert second.current() == taken  # the refused one did not touch it

    first.release()
    first.release()  # twice is harmless
    assert second.current() is None
    second.acquire("1.2.4", action="rollback")
    assert "ci@runner (rolling back to 1.2.4" in lock(stores(kind), "x").current().describe()
    cleared = lock(stores(kind), "ops@desk").force_unlock()
    assert (cleared.holder, cleared.version, cleared.action) == ("ci@runner", "1.2.4", "rollback")
    assert second.current() is None and lock(stores(kind), "x").force_unlock() is None


def test_every_store_refuses_with_the_same_text(stores):
    messages = {}
    for kind in STORES:
        lock(stores(kind), "alice@laptop").acquire("1.2.3")
        with pytest.raises(LockHeld) as held:
            lock(stores(kind), "bob@laptop").acquire("1.2.4")
        messages[kind] = held.value.message
    assert len(set(messages.values())) == 1, messages


@pytest.mark.parametrize("kind", STORES)
def test_of_two_deploys_taking_the_lock_at_once_exactly_one_wins(stores, kind):
    for round_ in range(4):
        takers = [lock(stores(kind), f"taker{n}@host") for n in range(2)]
        start = threading.Barrier(2)
        outcomes: list[str] = []

        def take(taker: DeployLock, start: threading.Barrier, outcomes: list[str], version: str) -> None:
            start.wait()
            try:
                taker.acquire(version)
                outcomes.append("won")
            except LockHeld:
                outcomes.append("refused")

        threads = [threading.Thread(target=take, args=(t, start, outcomes, f"1.0.{round_}")) for t in takers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes) == ["refused", "won"], (round_, outcomes)
        winner = next(t for t in takers if t.held)
        assert takers[0].current().holder == winner.holder
        winner.release()


def test_waiting_for_a_lock_takes_it_when_the_holder_lets_go(stores):
    holder = lock(stores("s3"), "alice@laptop")
    held = holder.acquire("1.2.3")
    now = [0.0]
    said: list[str] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] >= 2:
            holder.release()

    waiting = DeployLock(stores("s3"), environment="prod", holder="bob@laptop", clock=lambda: AT, sleep=sleep,
                         monotonic=lambda: now[0])
    assert waiting.acquire("1.2.4", wait=10, say=said.append).holder == "bob@laptop"
    assert said == [f"waiting up to 10s for the lock of prod, held by {held.describe()}"]

    impatient = DeployLock(stores("s3"), environment="prod", holder="carol@laptop", clock=lambda: AT, sleep=sleep,
                           monotonic=lambda: now[0])  # the clock of the holder's heartbeat: bob is alive
    now[0] = 0.0
    with pytest.raises(LockHeld, match=r"prod is locked by bob@laptop .*\(waited 3s\): wait for it"):
        impatient.acquire("1.2.5", wait=3)


def test_a_lock_written_by_hand_or_unreadable_still_counts_as_held():
    legacy = LockRecord.parse("holder: someone@ci\naction: deploy\nversion: v9\n", "staging")
    assert (legacy.holder, legacy.version, legacy.environment) == ("someone@ci", "v9", "staging")
    assert legacy.describe() == "someone@ci (deploying v9 since ?)"
    assert LockRecord.parse(b"\x00garbage", "prod").holder == "unknown"
    assert LockRecord.parse(json.dumps({"holder": "a@b", "version": "1", "acquired": "t", "pid": "x",
                                        "future_field": 1}), "prod").pid == 0


# --- a permission missing on the lock write -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def moto_with_iam(tmp_path_factory):
    """A moto server that enforces IAM after the first ``SETUP_CALLS`` requests (the test's own set-up)."""
    enforcing = {"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS)}
    with running_moto(tmp_path_factory.mktemp("moto-iam"), enforcing) as server:
        yield server.endpoint


SETUP_CALLS = 4  # create_bucket, create_user, put_user_policy, create_access_key

NO_PUT_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:DeleteObject"], "Resource": f"arn:aws:s3:::{BUCKET}/*"},
    {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{BUCKET}"},
]}

TASKS = '''
from invoke import Collection, task

from dockyard.tasks.common import edge


@task
@edge
def take(c):
    """Take the deploy lock the way a deploy does: S3 store, S3 client from the session."""
    import boto3

    from dockyard.clients.s3 import S3Client
    from dockyard.core.locks import DeployLock, S3LockStore

    s3 = boto3.Session().client("s3", endpoint_url={endpoint!r})
    DeployLock(S3LockStore(S3Client(s3), {bucket!r}, {key!r}), environment="prod").acquire("1.2.3")


ns = Collection(take)
'''


def test_an_access_denied_on_the_lock_write_is_one_line_and_exit_8(moto_with_iam, tmp_path):
    import boto3

    root = boto3.Session(**{k.lower(): v for k, v in FAKE_CREDENTIALS.items() if k != "AWS_DEFAULT_REGION"},
                         region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"])
    root.client("s3", endpoint_url=moto_with_iam).create_bucket(Bucket=BUCKET)
    iam = root.client("iam", endpoint_url=moto_with_iam)
    iam.create_user(UserName="deployer")
    iam.put_user_policy(UserName="deployer", PolicyName="no-put", PolicyDocument=json.dumps(NO_PUT_POLICY))
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    deployer = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                "AWS_DEFAULT_REGION": "us-east-1"}

    # In-process: the client's error is dockyard's, naming the call, the object and the missing permission.
    s3 = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                       region_name="us-east-1").client("s3", endpoint_url=moto_with_iam)
    store = S3LockStore(S3Client(s3), BUCKET, KEY)
    assert store.read("prod") is None  # reading is allowed: the identity is known, only the write is denied
    with pytest.raises(AwsError) as denied:
        DeployLock(store, environment="prod").acquire("1.2.3")
    assert denied.value.exit_code == 8
    assert denied.value.message == (f"s3:PutObject on s3://{BUCKET}/{KEY} was denied (AccessDenied): the deploying "
                                    "identity needs s3:PutObject on that bucket")
    record = AuditRecord(action="deploy", environment="prod", target="shop-prod", version="1.2.3", label="1.2.3",
                         who="me@here", started="2026-03-01T12:00:00+00:00", result="failed")
    with pytest.raises(AwsError, match=r"^s3:PutObject on s3://lock-bucket/dockyard/shop/audit/prod/\S+ was denied "
                                       r"\(AccessDenied\)"):
        S3AuditStore(S3Client(s3), BUCKET, "dockyard/shop").write(record)  # the audit write alike

    # Through an Invoke task's edge, as `inv deploy` runs it: one line on stderr, exit 8, no traceback.
    (tmp_path / "tasks.py").write_text(textwrap.dedent(TASKS).format(endpoint=moto_with_iam, bucket=BUCKET, key=KEY))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([sys.executable, "-m", "invoke", "take"], cwd=tmp_path, capture_output=True, text=True,
                            env={**env, **deployer, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 8, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [f"dockyard: {denied.value.message}"]


@pytest.mark.parametrize("kind", STORES)
def test_force_unlock_on_acquire_clears_a_dead_deploys_lock_and_says_whose(stores, kind):
    dead = lock(stores(kind), "ci@runner-7").acquire("0.9.0")
    said: list[str] = []
    taken = lock(stores(kind), "ops@desk").acquire("1.0.0", force_unlock=True, say=said.append)
    assert said == [f"cleared the lock of {dead.describe()}"] and taken.holder == "ops@desk"
    assert lock(stores(kind), "x").current() == taken


# --- heartbeat, dead holders ----------------------------------------------------------------------------------------

class Beats:
    """A heartbeat's sleep the test paces: each :meth:`tick` lets one beat happen, and waits until it did."""

    def __init__(self) -> None:
        self.go = threading.Semaphore(0)
        self.slept = threading.Semaphore(0)
        self.intervals: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.intervals.append(seconds)
        self.slept.release()
        self.go.acquire()

    def tick(self, lock: DeployLock) -> None:
        """One beat of ``lock``'s heartbeat, finished (or the heartbeat ended)."""
        assert self.slept.acquire(timeout=30), "the heartbeat never slept"
        beats = lock.heartbeat.beats
        self.go.release()
        for _ in range(3000):
            if lock.heartbeat.beats > beats or not lock.heartbeat.running:
                return
            threading.Event().wait(0.01)
        raise AssertionError("the heartbeat did not beat")


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.at += timedelta(seconds=seconds)


def beating(store, holder: str, clock: Clock, beats: Beats, **options) -> DeployLock:
    return DeployLock(store, environment="prod", holder=holder, clock=clock, heartbeat=10, beat_sleep=beats.sleep,
                      **options)


@pytest.mark.parametrize("kind", STORES)
def test_the_holder_refreshes_its_heartbeat_every_interval_until_it_releases(stores, kind):
    clock, beats = Clock(AT), Beats()
    holder = beating(stores(kind), "alice@laptop", clock, beats)
    taken = holder.acquire("1.2.3")
    assert (taken.heartbeat, taken.interval) == ("2026-03-01T12:00:00+00:00", 10)
    for n in (1, 2):
        clock.advance(10)
        beats.tick(holder)
        stored = lock(stores(kind), "x").current()
        assert stored.heartbeat == f"2026-03-01T12:00:{10 * n}+00:00" and stored.same_holding(taken)
    assert beats.intervals[:2] == [10, 10]
    holder.release()
    beats.go.release()  # let the sleeping heartbeat wake: it must see it was stopped, and beat no more
    holder.heartbeat._thread.join(10)
    assert not holder.heartbeat.running and holder.heartbeat.beats == 2
    assert lock(stores(kind), "x").current() is None


@pytest.mark.parametrize("kind", STORES)
def test_a_heartbeat_never_writes_back_a_lock_someone_cleared_and_release_leaves_the_new_holder(stores, kind):
    clock, beats = Clock(AT), Beats()
    stuck = beating(stores(kind), "ci@runner-7", clock, beats)
    stuck.acquire("0.9.0")
    ops = lock(stores(kind), "ops@desk")
    taken = ops.acquire("1.0.0", force_unlock=True)  # someone judged ci@runner-7 dead and took over
    clock.advance(10)
    beats.tick(stuck)
    assert stuck.lost and not stuck.heartbeat.running
    assert lock(stores(kind), "x").current() == taken  # not overwritten by the stale holder's heartbeat
    with pytest.raises(LockHeld, match="the deploy lock of prod that this deploy took is now held by ops@desk"):
        stuck.acquire("0.9.0")  # the plan's lock step: the lock is no longer this deploy's
    stuck.release()
    assert lock(stores(kind), "x").current() == taken  # the stale holder's release left ops@desk's lock


def exited_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


@pytest.mark.parametrize("kind", STORES)
def test_a_refused_deploy_says_the_holder_is_dead_when_its_pid_is_gone_and_takes_nothing(stores, kind):
    import socket

    pid = exited_pid()
    dead = LockRecord(holder="ci@runner-7", environment="prod", version="0.9.0", acquired="2026-03-01T11:00:00+00:00",
                      pid=pid, host=socket.gethostname(), heartbeat="2026-03-01T11:59:50+00:00", interval=30)
    assert stores(kind).create(dead)
    refused = DeployLock(stores(kind), environment="prod", holder="alice@laptop", clock=lambda: AT,
                         clear="inv ecs.deploy --env prod --version 1.2.3 --force-unlock")
    with pytest.raises(LockHeld) as held:
        refused.acquire("1.2.3", wait=30)  # a dead holder is not waited for
    assert held.value.exit_code == 9
    assert held.value.message == (
        f"prod is locked by a deploy that looks dead: ci@runner-7 (deploying 0.9.0 since 2026-03-01T11:00:00+00:00, "
        f"pid {pid} on {socket.gethostname()}, last heartbeat 2026-03-01T11:59:50+00:00): pid {pid} is not running "
        f"on {socket.gethostname()}; if it is dead, clear the lock with "
        "`inv ecs.deploy --env prod --version 1.2.3 --force-unlock`")
    assert "\n" not in held.value.message and not refused.held
    assert lock(stores(kind), "x").current() == dead  # never taken over without --force-unlock


def test_a_holder_on_another_machine_is_dead_after_three_missed_heartbeats():
    from datetime import timedelta

    from dockyard.core.locks import dead_reason

    record = LockRecord(holder="ci@runner-7", environment="prod", version="0.9.0", acquired="2026-03-01T11:00:00+00:00",
                        pid=4242, host="runner-7", heartbeat="2026-03-01T12:00:00+00:00", interval=30)
    alive = lambda pid: True  # noqa: E731 - another machine's pid says nothing here
    assert dead_reason(record, now=AT + timedelta(seconds=90), this_host="laptop", running=alive) == ""
    assert dead_reason(record, now=AT + timedelta(seconds=91), this_host="laptop", running=alive) == \
        "no heartbeat for 91s (it beats every 30s)"
    # a record of an older dockyard has no heartbeat: only its pid can say it is dead, on its own machine
    legacy = LockRecord.parse(json.dumps({"holder": "a@b", "version": "1", "acquired": "t", "pid": 4242,
                                          "host": "runner-7"}), "prod")
    assert (legacy.heartbeat, legacy.interval) == ("", 0)
    assert dead_reason(legacy, now=AT + timedelta(days=30), this_host="laptop", running=alive) == ""
    assert dead_reason(legacy, now=AT, this_host="runner-7", running=lambda pid: False) == \
        "pid 4242 is not running on runner-7"
    assert LockRecord.parse("holder: someone@ci\nversion: v9\n", "staging").describe() == \
        "someone@ci (deploying v9 since ?)"


def test_status_shows_a_dead_holder_s_lock_as_stale(stores):
    import socket

    from dockyard.core.locks import lock_status

    pid = exited_pid()
    store = stores("s3")
    assert lock_status(lock(store, "x")) == f"free (s3://{BUCKET}/{KEY})"
    store.create(LockRecord(holder="ci@runner-7", environment="prod", version="0.9.0", acquired="t", pid=pid,
                            host=socket.gethostname()))
    assert lock_status(lock(store, "x")) == (
        f"held by ci@runner-7 (deploying 0.9.0 since t, pid {pid} on {socket.gethostname()}; STALE: pid {pid} is "
        f"not running on {socket.gethostname()})")
