"""`inv --list` wall time (median of repeated runs) and what the dockyard import costs by itself.

Target: under 0.3 s, which needs boto3, Fabric and jinja2 imported only inside the tasks that use them.
Run from the repository root: python benchmarks/list_time.py [--runs N]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    python = sys.executable
    cases = {
        "python -c pass (interpreter floor)": [python, "-c", "pass"],
        "python -m invoke --list": [python, "-m", "invoke", "--list"],
    }
    for name, argv in cases.items():
        timed(argv)  # warm the page cache
        times = [timed(argv) for _ in range(runs)]
        print(f"{name:40s} median {statistics.median(times):.3f}s  min {min(times):.3f}s  ({runs} runs)")
    heavy = subprocess.run(
        [python, "-X", "importtime", "-m", "invoke", "--list"], cwd=ROOT, capture_output=True, text=True
    ).stderr
    loaded = [mod for mod in ("boto3", "botocore", "fabric", "paramiko", "jinja2", "dotenv")
              if f"| {mod}\n" in heavy or f" {mod}\n" in heavy]
    print(f"heavy modules imported by --list: {', '.join(loaded) or 'none'}")


if __name__ == "__main__":
    main()
