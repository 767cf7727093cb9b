"""`inv image.build prod` when nothing changed, against a --no-cache build of the same image.

The Dockdj script always rebuilt without the cache; dockyard uses the layer cache by default.
Target: the unchanged rebuild under 2 s. Needs the Docker engine and the base images (scripts/setup.sh).
Run from the repository root: python benchmarks/image_rebuild.py [--runs N]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import make_sample_project, remove_test_artifacts  # noqa: E402


def timed_inv(project, *args: str) -> float:
    started = time.perf_counter()
    project.inv(*args, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        project = make_sample_project(Path(tmp) / "project", app="benchrebuild")
        try:
            first = timed_inv(project, "image.build", "prod")
            cached = [timed_inv(project, "image.build", "prod") for _ in range(runs)]
            no_cache = [timed_inv(project, "image.build", "prod", "--no-cache") for _ in range(max(1, runs // 2))]
        finally:
            remove_test_artifacts(project.app)
    print(f"first build (base layers cached)   {first:.2f}s")
    print(f"unchanged rebuild, layer cache      median {statistics.median(cached):.2f}s  ({len(cached)} runs)")
    print(f"--no-cache rebuild (Dockdj's way)   median {statistics.median(no_cache):.2f}s  ({len(no_cache)} runs)")
    print(f"speed-up                            {statistics.median(no_cache) / statistics.median(cached):.1f}x")


if __name__ == "__main__":
    main()
