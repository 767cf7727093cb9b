"""`inv --list` CPU and wall time, as a ratio to a bare one-task Invoke file measured in the same run.

Target: at most 1.15x CPU, which needs the task modules to import only Invoke at load (boto3, Fabric and jinja2
inside the tasks that use them). The ratio, not the seconds, is the figure: it holds on a busy shared machine.
Run from the repository root: python benchmarks/list_time.py [--runs N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE_TASKS = '''from invoke import task


@task
def hello(c):
    """Say hello."""
    print("hello")
'''


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(CPU seconds of the child, user + system; wall seconds)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd}: {process.stderr.read().decode()[-400:]}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    listing = [sys.executable, "-m", "invoke", "--list"]
    with tempfile.TemporaryDirectory() as bare:
        Path(bare, "tasks.py").write_text(BARE_TASKS)
        cases = {"bare one-task Invoke file": Path(bare), "dockyard (this repository)": ROOT}
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for cwd in cases.values():
            timed(listing, cwd)  # warm the page cache and the bytecode
        for _ in range(runs):  # interleaved, so both see the same machine load
            for name, cwd in cases.items():
                samples[name].append(timed(listing, cwd))
    medians = {}
    for name, values in samples.items():
        cpu = statistics.median(v[0] for v in values)
        wall = statistics.median(v[1] for v in values)
        medians[name] = (cpu, wall)
        print(f"inv --list, {name:28s} CPU median {cpu:.3f}s  wall median {wall:.3f}s  ({runs} runs)")
    (bare_cpu, bare_wall), (ours_cpu, ours_wall) = medians.values()
    print(f"ratio to the bare file: CPU {ours_cpu / bare_cpu:.2f}x  wall {ours_wall / bare_wall:.2f}x  "
          "(target CPU <= 1.15x)")
    heavy = subprocess.run([sys.executable, "-X", "importtime", "-m", "invoke", "--list"], cwd=ROOT,
                           capture_output=True, text=True).stderr
    loaded = [mod for mod in ("boto3", "botocore", "fabric", "paramiko", "jinja2", "dotenv")
              if f"| {mod}\n" in heavy or f" {mod}\n" in heavy]
    print(f"heavy modules imported by --list: {', '.join(loaded) or 'none'}")


if __name__ == "__main__":
    main()
