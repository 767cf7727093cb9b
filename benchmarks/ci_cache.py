"""ci.test cold (empty image cache, no layer cache) against warm (ci.cache.load + unchanged code), same machine.

A throw-away copy of the sample project; its service images (redis, mariadb) are served by a local
docker-registry standing in for Docker Hub, so the cold run really pulls them. Prints figures; asserts nothing.

    python benchmarks/ci_cache.py [--runs N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import free_port, make_sample_project, remove_test_artifacts  # noqa: E402

SOURCES = {"redis": "dockyard-base/redis:bookworm", "mariadb": "dockyard-base/mariadb:bookworm"}


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def timed(project, *args: str) -> float:
    started = time.monotonic()
    result = project.inv(*args, env={"PYTHONPATH": str(REPO)})
    if result.returncode != 0:
        raise SystemExit(f"inv {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    runs = parser.parse_args().runs
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-bench-ci-"))
    port = free_port()
    (workdir / "registry.yml").write_text(
        f"version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {workdir / 'registry'}}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    registry = subprocess.Popen([shutil.which("docker-registry") or "registry", "serve", str(workdir / "registry.yml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    project = None
    images: dict[str, str] = {}
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        project = make_sample_project(workdir / "project")
        for name, source in SOURCES.items():
            images[name] = f"127.0.0.1:{port}/bench/{project.app}-{name}:pinned"
            sh("docker", "tag", source, images[name])
            sh("docker", "push", images[name])
        project.configure({"dockyard": {"ci": {
            "reports_dir": str(workdir / "reports"), "cache_dir": str(workdir / "cache"),
            "services": {name: {"image": image} for name, image in images.items()}}}})
        project.commit("bench settings")
        cold, warm = [], []
        for _ in range(runs):
            # cold: a fresh CI machine with an empty cache directory -- pull services, build without layer cache
            shutil.rmtree(workdir / "cache", ignore_errors=True)
            sh("docker", "image", "rm", *images.values(), check=False)
            started = time.monotonic()
            timed(project, "ci.test", "--no-cache")
            timed(project, "ci.cache.save")
            cold.append(time.monotonic() - started)
            # warm: the provider restored the cache directory; same commit, layer cache present
            sh("docker", "image", "rm", *images.values(), check=False)
            started = time.monotonic()
            timed(project, "ci.cache.load")
            timed(project, "ci.test")
            timed(project, "ci.cache.save")
            warm.append(time.monotonic() - started)
        c, w = statistics.median(cold), statistics.median(warm)
        print(f"ci.test cold (pull services, --no-cache build, save cache): median {c:.1f}s  runs {cold}")
        print(f"ci.test warm (cache.load, layer cache, same commit, save): median {w:.1f}s  runs {warm}")
        print(f"warm / cold = {100 * w / c:.0f} %  (target: under 40 %; the recipe got ~55 %)")
    finally:
        registry.terminate()
        registry.wait(timeout=10)
        for image in images.values():
            sh("docker", "image", "rm", image, check=False)
        if project is not None:
            remove_test_artifacts(project.app)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(REPO))
    main()
