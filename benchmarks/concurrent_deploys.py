"""Two deploys at once, on every target: how often exactly one wins (the other refused by the lock, exit 9).

Runs the race tests of tests/test_concurrent_deploys.py with ``--trials`` trials per target (the suite runs 3):
each trial starts two real ``inv`` deploy processes held at a gate after their imports and lets both go at the
same moment, against moto in server mode (ECS with the S3 lock and with the SSM lock, EB with the stand-in) and an
sshd host (staging's ``mkdir`` lock). A trial counts when one deploy exited 0, the other exited 9 with one line
naming the winner's pid, the winner's audit record is right and no lock is left.

Run: ``python benchmarks/concurrent_deploys.py [--trials 20] [--targets ecs,eb,staging]`` (needs moto_server; EB
and staging also need Docker, the registry and sshd, as the tests do). Prints trials and exactly-one-won per target.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = {
    "ecs": ["test_two_concurrent_ecs_deploys_with_the_s3_lock_exactly_one_wins",
            "test_two_concurrent_ecs_deploys_with_the_ssm_lock_exactly_one_wins"],
    "eb": ["test_two_concurrent_eb_deploys_exactly_one_wins"],
    "staging": ["test_two_concurrent_staging_deploys_exactly_one_wins"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per target (default 20)")
    parser.add_argument("--targets", default="ecs,eb,staging", help="comma-separated: ecs, eb, staging")
    args = parser.parse_args()
    wanted = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in TESTS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}: choose from {', '.join(TESTS)}")
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "race.jsonl"
        selection = " or ".join(name for target in wanted for name in TESTS[target])
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_concurrent_deploys.py",
             "-k", selection],
            cwd=REPO, env={**os.environ, "DOCKYARD_RACE_TRIALS": str(args.trials), "DOCKYARD_RACE_REPORT": str(report)},
            capture_output=True, text=True)
        took = time.monotonic() - started
        rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    print(f"{'TARGET':32} {'TRIALS':>6} {'EXACTLY ONE WON':>16}")
    for row in rows:
        print(f"{row['target']:32} {row['trials']:>6} {row['exactly_one_won']:>16}")
        for problem in row.get("problems") or []:
            print(f"    {problem}")
    print(f"({took:.0f}s in all)")
    if run.returncode != 0 and len(rows) < sum(len(TESTS[t]) for t in wanted):
        print(run.stdout[-3000:] + run.stderr[-2000:], file=sys.stderr)
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
