"""Two real deploys at once, on every target: exactly one wins, the other exits 9 naming the winner, and the winner's
audit record is right. And the order that makes it so: a deploy takes the lock before it reads any state.

Each trial starts two ``inv`` processes and holds them at a gate after their imports, then lets both go at once
(their start-up takes far longer than a deploy's first steps, so without the gate they would rarely overlap).
The stores are real: S3 and SSM on moto in server mode (ECS with and without a bucket, EB with the stand-in), and
the ``mkdir`` lock on an sshd host (staging). ``DOCKYARD_RACE_TRIALS`` sets the trials per target (3 in the suite;
``benchmarks/concurrent_deploys.py`` runs 20), ``DOCKYARD_RACE_REPORT`` names a file each target's figures are
appended to (one JSON line: target, trials, exactly_one_won).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import library_path
from fixtures.eb import tag_release
from fixtures.tcp_proxy import TcpProxy, tcp_proxy
from test_ecs_deploy import BUCKET, Ecs, audit_records, ecs  # noqa: F401 - ecs is the fixture
from test_ecs_ssm import ecs_ssm, lock_parameter, ssm_lock, ssm_records  # noqa: F401 - ecs_ssm is the fixture
from test_staging_e2e import staging, staging_images  # noqa: F401 - fixtures

from dockyard.core.history import parse_audit

TRIALS = int(os.environ.get("DOCKYARD_RACE_TRIALS") or 3)
HOST = socket.gethostname()

# Imports what a deploy needs, says it is ready, waits for the word, then runs `inv ARGS...` as `python -m invoke`.
GATE = """
import sys
import boto3, botocore.session, fabric, invoke.main  # noqa
import dockyard.ecs.service, dockyard.eb.service, dockyard.staging.service, dockyard.tasks  # noqa
sys.stderr.write("ready\\n")
sys.stderr.flush()
sys.stdin.readline()
invoke.main.program.run(["invoke", *sys.argv[1:]])
"""


@dataclass
class Ran:
    pid: int
    returncode: int
    stdout: str
    stderr: str


def race(project, args: tuple[str, ...], env: dict[str, str] | None = None, timeout: float = 600) -> list[Ran]:
    """Two ``inv ARGS`` processes in the project, let go at the same moment; their outcomes."""
    full_env = {**os.environ, "PYTHONPATH": library_path(), **project.env, **(env or {})}
    procs = [subprocess.Popen([sys.executable, "-c", GATE, *args], cwd=project.root, env=full_env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    try:
        for proc in procs:
            line = proc.stderr.readline()
            assert line == "ready\n", line + proc.stderr.read()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        ran = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            ran.append(Ran(proc.pid, proc.returncode, out, err))
        return ran
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def judge(ran: list[Ran], environment: str, version: str) -> tuple[Ran | None, list[str]]:
    """(the winner, what was wrong): one exited 0, the other 9 with one line naming the winner's lock."""
    problems = []
    winners = [r for r in ran if r.returncode == 0]
    losers = [r for r in ran if r.returncode != 0]
    if len(winners) != 1:
        codes = [r.returncode for r in ran]
        return None, [f"exit codes {codes}: " + " | ".join(r.stderr.strip()[-300:] for r in ran)]
    winner, loser = winners[0], losers[0]
    lines = loser.stderr.strip().splitlines()
    if loser.returncode != 9:
        problems.append(f"the loser exited {loser.returncode}: {loser.stderr.strip()[-300:]}")
    elif len(lines) != 1 or not lines[0].startswith(f"dockyard: {environment} is locked by "):
        problems.append(f"the loser did not say in one line who holds the lock: {loser.stderr!r}")
    elif f"deploying {version} since " not in lines[0] or f"pid {winner.pid} on {HOST}" not in lines[0]:
        problems.append(f"the loser's refusal does not name the winner (pid {winner.pid}): {lines[0]}")
    if "Traceback" in loser.stderr + winner.stderr:
        problems.append("a traceback")
    return winner, problems


def holder_named(ran: list[Ran]) -> str:
    """Who the loser's refusal says holds the lock (``user@host``)."""
    loser = next(r for r in ran if r.returncode == 9)
    line = loser.stderr.strip().splitlines()[0]
    return line.split(" is locked by ", 1)[1].split(" (", 1)[0]


def report(target: str, trials: int, won: int, problems: list[str]) -> None:
    path = os.environ.get("DOCKYARD_RACE_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"target": target, "trials": trials, "exactly_one_won": won,
                                  "problems": problems[:5]}) + "\n")
    print(f"{target}: exactly one of two concurrent deploys won in {won} of {trials} trials")
    assert won == trials, problems


# --- ECS, S3 and SSM stores -------------------------------------------------------------------------------------


def ecs_live(ecs: Ecs) -> str:  # noqa: F811
    return ecs.service()["taskDefinition"].rsplit("/", 1)[1]


def run_ecs_trials(ecs: Ecs, target: str, records, lock_left) -> None:  # noqa: F811
    won, problems = 0, []
    for trial in range(TRIALS):
        version = "1.2.4" if trial % 2 == 0 else "1.2.3"
        before, live_before = records(ecs), ecs_live(ecs)
        ran = race(ecs.project, ("ecs.deploy", "--version", version, "--no-wait"),
                            env={**ecs.aws.env, "PYTHONPATH": library_path()})
        winner, wrong = judge(ran, "prod", version)
        new = records(ecs)[len(before):]
        if winner is not None:
            if len(new) != 1:
                wrong.append(f"{len(new)} new audit records")
            else:
                record = new[0]
                seen = (record["action"], record["version"], record["result"], record["previous_label"],
                        record["label"])
                if seen != ("deploy", version, "started", live_before, ecs_live(ecs)):
                    wrong.append(f"the winner's record {seen}, live before {live_before}, now {ecs_live(ecs)}")
                if not wrong and record["who"] != holder_named(ran):
                    wrong.append(f"the record's who {record['who']} is not the holder the loser named")
            if ecs.definition(int(ecs_live(ecs).rsplit(":", 1)[1]))["containerDefinitions"][0]["image"] != \
                    f"{ecs.repository}:{version}":
                wrong.append("the service does not run the winner's image")
        if lock_left(ecs):
            wrong.append("a lock was left behind")
        won += not wrong
        problems += [f"trial {trial}: {p}" for p in wrong]
    report(target, TRIALS, won, problems)


def s3_lock_left(ecs: Ecs) -> bool:  # noqa: F811
    return any("/locks/" in o["Key"] for o in ecs.aws.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents") or [])


def test_two_concurrent_ecs_deploys_with_the_s3_lock_exactly_one_wins(ecs):  # noqa: F811
    run_ecs_trials(ecs, "ecs (S3 lock)", audit_records, s3_lock_left)


def test_two_concurrent_ecs_deploys_with_the_ssm_lock_exactly_one_wins(ecs_ssm):  # noqa: F811
    run_ecs_trials(ecs_ssm, "ecs (SSM lock)", ssm_records, lambda e: lock_parameter(e) is not None)


# --- the order: the lock before any state -----------------------------------------------------------------------


def s3_holder(ecs: Ecs):  # noqa: F811
    from dockyard.clients.s3 import S3Client
    from dockyard.core.locks import DeployLock, S3LockStore

    store = S3LockStore(S3Client(ecs.aws.client("s3")), BUCKET, f"dockyard/{ecs.project.app}/locks/prod.json")
    return DeployLock(store, environment="prod", holder="alice@build-7")


@pytest.mark.parametrize("store", ["s3", "ssm"])
def test_an_ecs_deploy_refused_by_the_lock_has_read_no_service_state(ecs, store):  # noqa: F811
    """With the old order (state, then lock) this deploy read the service first: it showed the diff and, the
    service gone, failed on that instead of on the lock."""
    if store == "ssm":
        ecs.project.configure({"dockyard": {"ecs": {"bucket": ""}}})
        ecs.project.commit("no bucket")
    holder = ssm_lock(ecs) if store == "ssm" else s3_holder(ecs)
    holder.acquire("1.2.3")
    try:
        ecs.ecs.delete_service(cluster="shop", service="shop-web", force=True)
        refused = ecs.inv("ecs.deploy", "--version", "1.2.4")
        assert refused.returncode == 9, refused.stdout + refused.stderr
        refusal = (f"dockyard: prod is locked by {holder.record.describe()}: wait for it, or run with --force-unlock "
                   "if that deploy is dead")
        assert refused.stderr.strip().splitlines() == [refusal]
        assert "Changed image" not in refused.stdout and "shop/shop-web" not in refused.stdout
    finally:
        holder.release()


def test_a_dead_holder_is_named_with_the_command_that_clears_it_and_status_says_stale(ecs):  # noqa: F811
    from dockyard.core.locks import LockRecord

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    record = LockRecord(holder="ci@runner-7", environment="prod", version="1.2.3", acquired="2026-12-01T10:00:00+00:00",
                        pid=pid, host=HOST, heartbeat="2026-12-01T10:05:00+00:00", interval=30)
    key = f"dockyard/{ecs.project.app}/locks/prod.json"
    ecs.aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=record.to_json().encode())
    refused = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert refused.returncode == 9, refused.stdout + refused.stderr
    line, = refused.stderr.strip().splitlines()
    assert line.startswith("dockyard: prod is locked by a deploy that looks dead: ci@runner-7 (deploying 1.2.3")
    assert f"pid {pid} on {HOST}, last heartbeat 2026-12-01T10:05:00+00:00): pid {pid} is not running" in line
    assert line.endswith("clear the lock with `inv ecs.deploy --env prod --version 1.2.4 --force-unlock`")
    assert s3_lock_left(ecs) and ecs_live(ecs).endswith(":1")  # not taken over
    status = ecs.inv("ecs.status")
    assert status.returncode == 0 and f"STALE: pid {pid} is not running on {HOST}" in status.stdout, status.stdout
    cleared = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait", "--force-unlock")
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    assert "cleared the lock of ci@runner-7" in cleared.stdout and not s3_lock_left(ecs)


def test_a_real_deploy_says_its_lock_came_first_and_a_dry_run_that_it_took_none(ecs):  # noqa: F811
    dry = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait", "--dry-run")
    assert dry.returncode == 0 and "a dry run takes no lock" in dry.stdout, dry.stdout + dry.stderr
    real = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait")
    assert real.returncode == 0, real.stdout + real.stderr
    lines = real.stdout.splitlines()
    taken = next(n for n, line in enumerate(lines) if line.startswith("[1/"))
    assert "taken before the state this plan was made from was read" in lines[taken + 1]


# --- Elastic Beanstalk (S3 lock) --------------------------------------------------------------------------------


def eb_records(eb) -> list[dict]:
    s3 = eb.s3()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=eb.bucket).get("Contents") or [] if "/audit/" in o["Key"])
    return [json.loads(s3.get_object(Bucket=eb.bucket, Key=k)["Body"].read()) for k in keys]


def eb_lock_left(eb) -> bool:
    return any("/locks/" in o["Key"] for o in eb.s3().list_objects_v2(Bucket=eb.bucket).get("Contents") or [])


def test_two_concurrent_eb_deploys_exactly_one_wins(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0", "first release")
    won, problems = 0, []
    for trial in range(TRIALS):
        before = eb_records(eb)
        ran = race(sample_project, ("deploy",))
        winner, wrong = judge(ran, "prod", "1.0.0")
        new = eb_records(eb)[len(before):]
        if winner is not None:
            if len(new) != 1:
                wrong.append(f"{len(new)} new audit records")
            else:
                seen = (new[0]["action"], new[0]["version"], new[0]["result"])
                if seen != ("deploy", "1.0.0", "succeeded") or new[0]["label"] != eb.state("ebsample-prod")[
                        "VersionLabel"]:
                    wrong.append(f"the winner's record {seen} {new[0]['label']}")
                elif new[0]["who"] != holder_named(ran):
                    wrong.append(f"the record's who {new[0]['who']} is not the holder the loser named")
        if eb_lock_left(eb):
            wrong.append("a lock was left behind")
        won += not wrong
        problems += [f"trial {trial}: {p}" for p in wrong]
        eb.standin.wait_idle(60)
    report("eb (S3 lock)", TRIALS, won, problems)


def test_an_eb_deploy_refused_by_the_lock_has_called_elastic_beanstalk_not_once(eb, eb_release_images, sample_project):
    """With the old order the refused deploy had already described the application and the environment."""
    from dockyard.clients.s3 import S3Client
    from dockyard.core.locks import DeployLock, S3LockStore

    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0", "first release")
    store = S3LockStore(S3Client(eb.s3()), eb.bucket, "dockyard/ebsample/locks/prod.json")
    holder = DeployLock(store, environment="prod", holder="alice@build-7")
    holder.acquire("0.9.0")
    try:
        calls_before = len(eb.calls())
        refused = sample_project.inv("deploy")
        assert refused.returncode == 9, refused.stdout + refused.stderr
        assert "prod is locked by alice@build-7 (deploying 0.9.0" in refused.stderr
        assert eb.calls()[calls_before:] == []
    finally:
        holder.release()


# --- staging over SSH (the mkdir lock on the first host) --------------------------------------------------------


def test_two_concurrent_staging_deploys_exactly_one_wins(staging):  # noqa: F811
    """Staging reads each host's state before it takes the lock, and checks it again under the lock (see
    dockyard/staging/service.py HostBatches): a stale plan is refused, not run."""
    staging.inv("staging.setup", check=True)
    audit_log = Path(staging.state_dir()) / "audit.log"
    won, problems = 0, []
    for trial in range(TRIALS):
        version = "v1" if trial % 2 == 0 else "v2"
        before = parse_audit(audit_log.read_text() if audit_log.exists() else "", "staging")
        ran = race(staging.project, ("staging.ssh-deploy", "--version", version))
        winner, wrong = judge(ran, "staging", version)
        after = parse_audit(audit_log.read_text() if audit_log.exists() else "", "staging")
        new = after[len(before):]
        if winner is not None:
            if len(new) != 1:
                wrong.append(f"{len(new)} new audit lines")
            elif (new[0].action, new[0].version, new[0].result) != ("deploy", version, "succeeded"):
                wrong.append(f"the winner's record {new[0]}")
            elif new[0].who != holder_named(ran):
                wrong.append(f"the record's who {new[0].who} is not the holder the loser named")
            if staging.live_version() != version:
                wrong.append(f"live is {staging.live_version()}, not {version}")
        if (Path(staging.state_dir()) / "lock").exists():
            wrong.append("a lock was left behind")
        won += not wrong
        problems += [f"trial {trial}: {p}" for p in wrong]
    report("staging (mkdir lock over SSH)", TRIALS, won, problems)


# --- interrupts: SIGHUP and Ctrl-C release the lock (heartbeat and all) and record `interrupted` ------------------
# (SIGTERM on ECS and EB: test_ecs_deploy.py, test_eb_failures.py; every signal on staging: test_staging_e2e.py)


def interrupt_when(project, args: tuple[str, ...], marker: str, signum: int, env: dict[str, str],
                   proxy: TcpProxy | None = None) -> tuple[int, str]:
    """Run ``inv ARGS``, send ``signum`` once it printed ``marker``; (exit code, stderr).

    With ``proxy`` (the process's AWS endpoint), AWS is frozen from the marker until just after the signal, so the
    deploy is certainly mid-way when the signal arrives (moto can end a deploy in well under a second), and thawed
    so that the interrupted process can release its lock and write its record."""
    proc = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=project.root, text=True,
                            env={**os.environ, "PYTHONPATH": library_path(), **project.env, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if marker in line:
                if proxy:
                    proxy.freeze()
                break
        assert proc.poll() is None, seen
        proc.send_signal(signum)
        if proxy:
            time.sleep(0.5)
            proxy.thaw()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


@pytest.mark.parametrize("signum, code", [(signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_sighup_and_ctrl_c_mid_ecs_deploy_free_the_lock_and_audit_interrupted(ecs, signum, code):  # noqa: F811
    ecs.project.configure({"dockyard": {"ecs": {"timeout": 120, "poll_interval": 1}}})
    with tcp_proxy(ecs.aws.endpoint) as proxy:
        returncode, err = interrupt_when(ecs.project, ("ecs.deploy", "--version", "1.2.4"), "registered", signum,
                                         {**ecs.aws.env, "INVOKE_DOCKYARD_AWS_ENDPOINT_URL": proxy.endpoint}, proxy)
    assert returncode == code and "Traceback" not in err, err
    assert not s3_lock_left(ecs)
    assert [(r["version"], r["result"]) for r in audit_records(ecs)] == [("1.2.4", "interrupted")]


def test_sighup_mid_eb_deploy_frees_the_lock_and_audits_interrupted(eb, eb_release_images, sample_project):
    eb.configure(sample_project, platform="v1")
    eb.upload_dockercfg(sample_project)
    tag_release(sample_project, "1.0.0")
    returncode, err = interrupt_when(sample_project, ("deploy",), "] wait for Ready", signal.SIGHUP, {})
    assert returncode == 129 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "dockyard: interrupted by SIGHUP", err
    assert not eb_lock_left(eb)
    assert [(r["version"], r["result"]) for r in eb_records(eb)] == [("1.0.0", "interrupted")]
    eb.standin.wait_idle(120)


def test_the_lock_of_a_killed_ecs_deploy_is_recognised_and_cleared_only_when_asked(ecs):  # noqa: F811
    """SIGKILL leaves no chance to clean up: the lock stays, and the next deploy names it as dead (same machine,
    its pid gone), refuses (exit 9) and says how to clear it."""
    ecs.project.configure({"dockyard": {"ecs": {"timeout": 120, "poll_interval": 1}}})
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "ecs.deploy", "--version", "1.2.4"],
                            cwd=ecs.project.root, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": library_path(), **ecs.project.env, **ecs.aws.env})
    try:
        for line in proc.stdout:
            if "registered" in line:
                break
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert s3_lock_left(ecs)
    refused = ecs.inv("ecs.deploy", "--version", "1.2.3", "--no-wait")
    assert refused.returncode == 9, refused.stdout + refused.stderr
    line, = refused.stderr.strip().splitlines()
    assert "is locked by a deploy that looks dead: " in line and f"pid {proc.pid} on {HOST}" in line, line
    assert f"pid {proc.pid} is not running on {HOST}" in line and "last heartbeat 20" in line, line
    assert line.endswith("clear the lock with `inv ecs.deploy --env prod --version 1.2.3 --force-unlock`")
    assert s3_lock_left(ecs)
    assert f"STALE: pid {proc.pid} is not running" in ecs.inv("ecs.status").stdout
    cleared = ecs.inv("ecs.deploy", "--version", "1.2.3", "--no-wait", "--force-unlock")
    assert cleared.returncode == 0 and "cleared the lock of " in cleared.stdout, cleared.stdout + cleared.stderr
