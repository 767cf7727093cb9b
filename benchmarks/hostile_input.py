"""Issue 11's hostile input (tests/hostile_cases.py) run through real `inv`, and how each case ended.

A case is clean when it ends in one line on stderr naming the problem, its documented exit code, no traceback and
no change to the project's files or git state. Later parts of the issue add their figures here (signals, leaks).
Run from the repository root: python benchmarks/hostile_input.py [--verbose]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import engine_reachable, make_sample_project  # noqa: E402
from hostile_cases import CASES, run_case  # noqa: E402

OFFLINE = {"PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}


def verdict(outcome) -> str:
    if outcome.traceback:
        return "traceback"
    if len(outcome.lines) != 1:
        return "multi-line"
    if outcome.changed:
        return "changed state"
    if outcome.code != outcome.case.code:
        return "wrong exit code"
    if outcome.case.fragment not in outcome.lines[0]:
        return "unclear line"
    return "clean"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="print every case's line")
    verbose = parser.parse_args().verbose
    engine = engine_reachable()
    counts: Counter[str] = Counter()
    for case in CASES:
        if case.engine and not engine:
            counts["skipped (no engine)"] += 1
            continue
        with tempfile.TemporaryDirectory() as tmp:
            outcome = run_case(make_sample_project(Path(tmp) / "project"), case, OFFLINE)
        result = verdict(outcome)
        counts[result] += 1
        if verbose or result != "clean":
            print(f"{result:16} exit {outcome.code:3}  {case.name}: {' | '.join(outcome.lines)[:160]}")
    total = sum(counts.values())
    others = [f"{n} {kind}" for kind, n in sorted(counts.items()) if kind != "clean"]
    print(f"hostile input: {total} cases, {counts['clean']} clean" + "".join(", " + o for o in others))


if __name__ == "__main__":
    main()
