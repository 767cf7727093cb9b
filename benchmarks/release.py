"""How release bookkeeping scales with history: `inv release X --dry-run` and `inv releases --offline` in a repository
with many release tags, plus parsing and sorting versions in-process.

Both tasks fetch/list once and ask git for all tags in one call, so their time should stay near `inv --list` plus a
few git calls whatever the number of tags. Needs git (and the Docker engine for the local-image column of
`releases`; without it the column shows "?"). Run from the repository root: python benchmarks/release.py [--tags N]
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
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from conftest import git, make_sample_project  # noqa: E402


def timed_inv(project, *args: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        project.inv(*args, check=True)
        times.append(time.perf_counter() - started)
    return times


def tag_history(project, count: int) -> None:
    """``count`` commits on main, each tagged v0.<n>.0 (annotated), made with git fast-import for speed."""
    head = project.git("rev-parse", "HEAD").stdout.strip()
    lines = []
    for n in range(1, count + 1):
        lines += [f"commit refs/heads/main", f"mark :{n}", "committer Bench <b@example.invalid> 1700000000 +0000",
                  f"data {len(f'change {n}')}", f"change {n}"]
        lines += [f"from {head}" if n == 1 else f"from :{n - 1}",
                  f"M 644 inline bench/{n}.txt", f"data {len(str(n))}", str(n)]
        lines += [f"tag v0.{n}.0", f"from :{n}", "tagger Bench <b@example.invalid> 1700000000 +0000",
                  f"data {len(f'Release 0.{n}.0')}", f"Release 0.{n}.0"]
    done = subprocess.run(["git", "fast-import", "--quiet", "--force"], cwd=project.root,
                          input="\n".join(lines) + "\n", text=True, capture_output=True)
    if done.returncode:
        raise SystemExit(f"git fast-import failed: {done.stderr.strip()}")
    project.git("reset", "-q", "--hard", "main")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from dockyard.core.versions import ReleaseVersion, versions_from_tags

    names = [f"v{a}.{b}.{c}" for a in range(10) for b in range(20) for c in range(50)]
    started = time.perf_counter()
    ordered = sorted(versions_from_tags(names))
    elapsed = time.perf_counter() - started
    assert ordered[-1] == ReleaseVersion(9, 19, 49)
    print(f"parse + sort {len(names)} version tags in-process      {elapsed * 1000:.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        project = make_sample_project(Path(tmp) / "project", app="benchrelease")
        project.env["CI"] = "true"
        origin = Path(tmp) / "origin.git"
        git(Path(tmp), "init", "-q", "--bare", "--initial-branch=main", str(origin))
        project.git("remote", "add", "origin", str(origin))
        for tags in (0, args.tags):
            if tags:
                tag_history(project, tags)
                project.git("push", "-q", "origin", "main", "--tags")
                (project.root / "bench-new.txt").write_text("new\n")
                project.commit("unreleased change")
            else:
                project.git("push", "-q", "origin", "main")
            version = f"0.{tags + 1}.0"
            dry = timed_inv(project, "release", version, "--dry-run", runs=args.runs)
            listing = timed_inv(project, "releases", "--offline", runs=args.runs) if tags else []
            print(f"{tags:4d} release tags: release --dry-run  median {statistics.median(dry):.3f}s"
                  + (f"   releases --offline median {statistics.median(listing):.3f}s" if listing else ""))
    base = [time.perf_counter()]
    subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=ROOT, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"(floor: one `inv --list` here took {time.perf_counter() - base[0]:.3f}s)")


if __name__ == "__main__":
    main()
