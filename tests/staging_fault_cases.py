"""Staging deploys cut short at named steps, and what must hold after each: shared by the e2e test and
``benchmarks/staging_faults.py``.

Each case starts with v1 live on a fault-injecting host (:mod:`fixtures.faults`), arms its rules, deploys v2 and
checks what a user would: the exit code and its one line, what the public port serves, the lock, the audit record
of the attempt and what ``status`` says. Then it deploys v2 again with no fault and checks the same (v2 serves,
the lock is free, the audit says succeeded, status says live v2), and puts v1 back for the next case.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from conftest import library_path

HEALTH_INSPECT = r"State\.Status\}\} \{\{with index .*\}\}' {prefix}-app-v2$"  # the health gate's inspect


@dataclass(frozen=True)
class FaultCase:
    name: str
    rules: tuple[dict, ...]  # faults.json; "{state}" and "{prefix}" are filled in, "pid" with the deploy's
    code: int  # the exit of the faulted deploy
    serves: frozenset[str]  # what the public port may serve after it
    outcome: str  # the audit outcome of the v2 attempt after it ("": no record, nothing was done)
    env_value_bytes: int = 0  # a .env value this long for the faulted deploy
    retained: bool = False  # v2 was deployed before and is retained (stopped): the deploy re-creates it
    notes: str = ""

    def armed(self, state_dir: str, prefix: str, pid: int) -> list[dict]:
        out = []
        for rule in self.rules:
            filled = {k: v.replace("{state}", state_dir).replace("{prefix}", prefix) if isinstance(v, str) else v
                      for k, v in rule.items()}
            if filled["action"] == "signal":
                filled["pid"] = pid
            out.append(filled)
        return out


def _case(name, rule, code, serves, outcome, **kw) -> FaultCase:
    return FaultCase(name, (rule,) if isinstance(rule, dict) else tuple(rule), code, frozenset(serves), outcome, **kw)


APP_V2_RUN = r"run --detach --name {prefix}-app-v2 "
CASES = [
    _case("drop at docker login", {"match": r" login --username", "action": "drop"}, 7, {"v1"}, "failed"),
    _case("drop at docker pull", {"match": r" pull --quiet ", "action": "drop"}, 7, {"v1"}, "failed"),
    _case("drop after docker run", {"match": APP_V2_RUN, "action": "drop", "when": "after"}, 7, {"v1"}, "failed"),
    _case("drop at the health-gate inspect", {"match": HEALTH_INSPECT, "action": "drop"}, 7, {"v1"}, "failed"),
    _case("drop before the nginx reload", {"match": r"nginx -s reload", "action": "drop"}, 7, {"v1"}, "failed",
          notes="upstream.conf already names v2"),
    _case("drop after the nginx reload", {"match": r"nginx -s reload", "action": "drop", "when": "after"}, 7,
          {"v2"}, "succeeded"),
    _case("nginx -t refuses the config", {"match": r"nginx -s reload", "action": "fail",
                                          "said": "nginx: [emerg] host not found in upstream"}, 3, {"v1"}, "failed"),
    _case("drop at docker stop of v1", {"match": r" stop --time \S+ {prefix}-app-v1", "action": "drop"}, 7, {"v2"},
          "succeeded"),
    _case("drop at the audit append", {"match": r"printf .*audit\.log", "action": "drop"}, 7, {"v2"}, "succeeded"),
    _case("drop at the lock release", {"match": r"rm -rf .*/lock$", "action": "drop"}, 0, {"v2"}, "succeeded",
          notes="freed on a new connection"),
    _case("read-only audit.log", {"match": APP_V2_RUN, "action": "readonly", "path": "{state}/audit.log"}, 3,
          {"v2"}, "", notes="the record is written by the rerun"),
    _case("read-only proxy directory", {"match": APP_V2_RUN, "action": "readonly", "path": "{state}/proxy"}, 3,
          {"v1"}, "failed"),
    _case("Ctrl-C in the health gate", {"match": HEALTH_INSPECT, "action": "signal", "signum": int(signal.SIGINT),
                                        "seconds": 1}, 130, {"v1"}, "interrupted"),
    _case("SIGTERM at the nginx reload", {"match": r"nginx -s reload", "action": "signal",
                                          "signum": int(signal.SIGTERM)}, 143, {"v1", "v2"}, "interrupted"),
    _case("a 1 MB .env value", (), 2, {"v1"}, "", env_value_bytes=1 << 20),
    _case("docker run fails re-creating a retained v2", {"match": APP_V2_RUN, "action": "fail",
                                                          "said": "docker: Error response from daemon"},
          3, {"v1"}, "failed", retained=True),
]
#: The handful the test suite runs (the benchmark runs them all).
QUICK = ("drop at the health-gate inspect", "drop before the nginx reload", "read-only proxy directory",
         "Ctrl-C in the health gate", "docker run fails re-creating a retained v2")


@dataclass
class Outcome:
    case: FaultCase
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    transcript: str = ""  # what the faulted deploy printed
    phases: dict[str, float] = field(default_factory=dict)

    def timed(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.phases[name] = round(now - since, 1)
        return now

    @property
    def survived(self) -> bool:
        return not self.problems


def served(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5) as response:
            return json.loads(response.read().decode())["version"]
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"no answer ({exc})"


def audit_lines(staging) -> list[str]:
    log = staging.state_dir() / "audit.log"
    return log.read_text().splitlines() if log.exists() else []


def running_apps(prefix: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "--format", "{{.Names}}", "--filter", f"label=dev.dockyard.ssh.prefix={prefix}",
                          "--filter", "label=dev.dockyard.ssh.role=app"], capture_output=True, text=True, check=False).stdout
    return sorted(out.split())


class Checks:
    def __init__(self, outcome: Outcome, when: str) -> None:
        self.outcome = outcome
        self.when = when

    def that(self, ok: bool, what: str) -> None:
        if not ok:
            self.outcome.problems.append(f"{self.when}: {what}")


def check_truth(checks: Checks, staging, *, serves: set[str], outcome: str, audited_before: int) -> str:
    """What serves, the lock, the audit record of the attempt, what status says; returns what serves."""
    now = served(staging.ports[0])
    checks.that(now in serves, f"the public port serves {now}, expected {'/'.join(sorted(serves))}")
    checks.that(not (staging.state_dir() / "lock").exists(), "the lock is still held")
    new = [line for line in audit_lines(staging)[audited_before:] if "version=v2" in line]
    if outcome:
        checks.that(bool(new) and f"outcome={outcome}" in new[-1], f"audit: expected outcome={outcome}, got {new}")
    else:
        checks.that(not new, f"audit: expected no record, got {new}")
    status = staging.inv("staging.status")
    checks.that(status.returncode == 0, f"status exited {status.returncode}: {status.stderr.strip()[-300:]}")
    checks.that(f"live {now} " in status.stdout, f"status does not say live {now}: {status.stdout.strip()[:300]}")
    checks.that("lock: free" in status.stdout, "status does not say lock: free")
    apps = running_apps(staging.prefix)
    checks.that(apps == [f"{staging.prefix}-app-{now}"], f"running app containers {apps}, expected only {now}'s")
    return now


def deploy_with_faults(staging, fault_host, case: FaultCase) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": library_path(), **staging.project.env}
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "staging.ssh-deploy", "--version", "v2"],
                            cwd=staging.project.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    fault_host.arm(*case.armed(str(staging.state_dir()), staging.prefix, proc.pid))
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_case(staging, fault_host, case: FaultCase) -> Outcome:
    """Fault, check, rerun, check, and put v1 back (live, alone) for the next case."""
    outcome = Outcome(case)
    started = time.monotonic()
    env_file = staging.project.root / "environments" / "staging" / ".env"
    saved_env = env_file.read_text()
    try:
        if case.retained:
            staging.inv("staging.ssh-deploy", "--version", "v2", check=True)
            staging.inv("staging.rollback", "--version", "v1", check=True)
        before = len(audit_lines(staging))
        if case.env_value_bytes:
            env_file.write_text(saved_env + f"BIG_VALUE={'x' * case.env_value_bytes}\n")
        faulted = deploy_with_faults(staging, fault_host, case)
        fired = fault_host.fired()
        fault_host.disarm()
        env_file.write_text(saved_env)
        outcome.transcript = f"{faulted.stdout}{faulted.stderr}"
        mark = outcome.timed("faulted deploy", started)
        checks = Checks(outcome, "after the fault")
        checks.that(bool(fired) or not case.rules, "the fault never fired (its command did not run)")
        text = faulted.stdout + faulted.stderr
        checks.that(faulted.returncode == case.code, f"exit {faulted.returncode}, expected {case.code}: "
                                                     f"{faulted.stderr.strip()[-400:]}")
        checks.that("Traceback" not in text, "a traceback")
        if case.code:
            lines = [line for line in faulted.stderr.splitlines() if line.strip()]
            checks.that(len(lines) == 1 and lines[0].startswith("dockyard: "), f"stderr is not one line: {lines}")
        thaw(fault_host, staging)
        now = check_truth(checks, staging, serves=set(case.serves), outcome=case.outcome, audited_before=before)
        if case.retained:
            kept = subprocess.run(["docker", "inspect", "--format", "{{.State.Status}}", f"{staging.prefix}-app-v2"],
                                  capture_output=True, text=True, check=False).stdout.strip()
            checks.that(kept == "exited", f"the retained v2 container is {kept or 'gone'}, expected it kept (exited)")
        mark = outcome.timed("checks", mark)

        checks = Checks(outcome, "after a rerun")
        again = staging.inv("staging.ssh-deploy", "--version", "v2")
        mark = outcome.timed("rerun", mark)
        checks.that(again.returncode == 0, f"the rerun exited {again.returncode}: {again.stderr.strip()[-400:]}")
        # v2 served already: the rerun has nothing to do, and the record of the cut deploy stays the last one
        last = (case.outcome or "succeeded") if now == "v2" else "succeeded"
        check_truth(checks, staging, serves={"v2"}, outcome=last, audited_before=before)
        mark = outcome.timed("checks again", mark)
    finally:
        fault_host.disarm()
        thaw(fault_host, staging)
        env_file.write_text(saved_env)
        mark = time.monotonic()
        reset(staging)
        outcome.timed("reset", mark)
        outcome.seconds = time.monotonic() - started
    return outcome


def thaw(fault_host, staging) -> None:
    fault_host.thaw(staging.state_dir())


def reset(staging) -> None:
    """v1 live and alone again (v2's container removed), whatever the case left."""
    if served(staging.ports[0]) != "v1":
        staging.inv("staging.rollback", "--version", "v1", "--force-unlock")
    subprocess.run(["docker", "rm", "-f", f"{staging.prefix}-app-v2"], capture_output=True, check=False)
    if served(staging.ports[0]) != "v1":
        staging.inv("staging.ssh-deploy", "--version", "v1", "--force-unlock", check=True)
