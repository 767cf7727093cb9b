"""`inv --list` CPU and wall time, as a ratio to a bare one-task Invoke file measured in the same run.

Target: at most 1.15x CPU. Three projects are listed, interleaved so each sees the same machine load:

* a bare one-task Invoke file (the reference of the target);
* an Invoke file of the same shape as dockyard's namespace (the same collections, task names, arguments, defaults
  and help, empty bodies, no settings), generated here from dockyard's own collection: what Invoke itself spends
  parsing and listing that many tasks, whoever wrote them (the floor no task collection of this size goes below);
* dockyard (this repository).

The ratio, not the seconds, is the figure: it holds on a busy shared machine. Bytecode: `inv` never writes it
(Invoke sets ``sys.dont_write_bytecode``), so a source checkout compiles dockyard on every run while a pip install
has it compiled; both are measured (``--bytecode`` chooses: both | compiled | source).
Run from the repository root: python benchmarks/list_time.py [--runs N]
"""
from __future__ import annotations

import argparse
import compileall
import os
import shutil
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


SHAPE_SCRIPT = r'''
import inspect, json, sys
sys.path.insert(0, ".")
import tasks

def walk(collection):
    out = {"tasks": [], "collections": {}}
    for name, task in collection.tasks.items():
        params = list(inspect.signature(task.body).parameters.values())[1:]
        out["tasks"].append({"name": name, "doc": (task.__doc__ or "").strip().splitlines()[:1],
                             "params": [[p.name, repr(p.default) if p.default is not p.empty else None]
                                        for p in params],
                             "help": task.help, "positional": list(task.positional or [])})
    for name, sub in collection.collections.items():
        out["collections"][name] = walk(sub)
    return out

print(json.dumps(walk(tasks.ns)))
'''


def same_shape_tasks(root: Path) -> str:
    """An Invoke file with dockyard's collections, tasks, arguments, defaults and help, and empty bodies."""
    import json

    shape = json.loads(subprocess.run([sys.executable, "-c", SHAPE_SCRIPT], cwd=root, check=True,
                                      capture_output=True, text=True).stdout)
    lines = ["from invoke import Collection, task", ""]
    counter = iter(range(10_000))

    def emit(node: dict, variable: str, name: str | None) -> None:
        lines.append(f"{variable} = Collection({name!r})" if name else f"{variable} = Collection()")
        for item in node["tasks"]:
            function = f"t{next(counter)}"
            params = "".join(f", {n}={d}" if d is not None else f", {n}" for n, d in item["params"])
            doc = item["doc"][0] if item["doc"] else ""
            lines.extend([f"@task(name={item['name']!r}, help={item['help']!r}, positional={item['positional']!r})",
                          f"def {function}(c{params}):", f"    {doc!r}", ""])
            lines.append(f"{variable}.add_task({function})")
        for sub_name, sub in node["collections"].items():
            sub_variable = f"c{next(counter)}"
            emit(sub, sub_variable, sub_name)
            lines.append(f"{variable}.add_collection({sub_variable})")

    emit(shape, "ns", None)
    return "\n".join(lines) + "\n"


def measure(cases: dict[str, Path], runs: int) -> dict[str, tuple[float, float]]:
    listing = [sys.executable, "-m", "invoke", "--list"]
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for cwd in cases.values():
        timed(listing, cwd)  # warm the page cache
    for _ in range(runs):  # interleaved, so every case sees the same machine load
        for name, cwd in cases.items():
            samples[name].append(timed(listing, cwd))
    return {name: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
            for name, values in samples.items()}


def report(label: str, medians: dict[str, tuple[float, float]], runs: int) -> None:
    print(f"-- {label}")
    for name, (cpu, wall) in medians.items():
        print(f"inv --list, {name:34s} CPU median {cpu:.3f}s  wall median {wall:.3f}s  ({runs} runs)")
    (bare_cpu, bare_wall), (shape_cpu, _), (ours_cpu, ours_wall) = medians.values()
    print(f"ratio to the bare file: CPU {ours_cpu / bare_cpu:.2f}x  wall {ours_wall / bare_wall:.2f}x  "
          f"(target CPU <= 1.15x); Invoke's own floor for this many tasks: {shape_cpu / bare_cpu:.2f}x; "
          f"dockyard over that floor: {ours_cpu / shape_cpu:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--bytecode", choices=("both", "compiled", "source"), default="both")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        bare, shaped, ours = Path(scratch, "bare"), Path(scratch, "shape"), Path(scratch, "dockyard")
        bare.mkdir()
        shaped.mkdir()
        Path(bare, "tasks.py").write_text(BARE_TASKS)
        Path(shaped, "tasks.py").write_text(same_shape_tasks(ROOT))
        # A copy of the project, so compiling it leaves no __pycache__ in the checkout.
        shutil.copytree(ROOT, ours, ignore=shutil.ignore_patterns(".git", "__pycache__", "node_modules", "tests", "benchmarks"),
                        symlinks=True)
        cases = {"bare one-task Invoke file": bare, "Invoke file of dockyard's shape": shaped,
                 "dockyard (this repository)": ours}
        if options.bytecode in ("both", "source"):
            report("dockyard from source (no bytecode: a checkout run only through `inv`)",
                   measure(cases, options.runs), options.runs)
        if options.bytecode in ("both", "compiled"):
            compileall.compile_dir(str(ours / "dockyard"), quiet=1)
            report("dockyard compiled (as `pip install` and scripts/setup.sh leave it)",
                   measure(cases, options.runs), options.runs)
        heavy = subprocess.run([sys.executable, "-X", "importtime", "-m", "invoke", "--list"], cwd=ours,
                               capture_output=True, text=True).stderr
    loaded = [mod for mod in ("boto3", "botocore", "fabric", "paramiko", "jinja2", "dotenv")
              if f"| {mod}\n" in heavy or f" {mod}\n" in heavy]
    print(f"heavy modules imported by --list: {', '.join(loaded) or 'none'}")


if __name__ == "__main__":
    main()
