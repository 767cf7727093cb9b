"""image.build cold (empty local cache) against warm from the registry's cache (image.cache), code-only change.

A throw-away minimal project whose Dockerfile has a dependency step (a stand-in for `pip install`: the standard
library copied and byte-compiled at three optimisation levels, a real CPU cost and a layer of tens of MB), then
`COPY site/`. Each run: cold `inv image.build dev` (a fresh nonce in the dependency step, so no local cache has
it), push <repo>:dev to a loopback docker-registry, remove the app's local images and this run's build-cache
records, change a file of site/ and commit, then warm `inv image.build dev` (which imports the cache through
--cache-from <repo>:dev).
Prints cold and warm seconds and warm/cold; asserts nothing (target: warm <= 30% of cold).

    python benchmarks/build_cache.py [--runs N] [--cache inline|registry]

registry mode needs a Buildx builder with the docker-container or remote driver (image.builder: NAME).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import free_port, remove_test_artifacts  # noqa: E402
from minimal_app import make_minimal_project  # noqa: E402
from test_build_cache import drop_build_cache  # noqa: E402

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
WORKDIR /srv
RUN echo deps {nonce} > /srv/deps.txt \\
    && cp -r "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')" /srv/deps \\
    && python3 -m compileall -q -f -o 0 -o 1 -o 2 /srv/deps > /dev/null
COPY site/ /srv/
ENTRYPOINT ["python3"]
CMD ["-m", "http.server", "8000"]
"""


def timed(project, *args: str) -> float:
    started = time.monotonic()
    result = project.inv(*args, env={"PYTHONPATH": str(REPO)})
    if result.returncode != 0:
        raise SystemExit(f"inv {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    if args[0] == "image.build" and "CACHED" not in result.stdout + result.stderr:
        print("  (no CACHED step in this build)")
    return time.monotonic() - started


def one_run(workdir: Path, port: int, cache: str, builder: str) -> tuple[float, float]:
    nonce = uuid.uuid4().hex
    project = make_minimal_project(workdir / f"project-{nonce[:6]}", dockerfile=DOCKERFILE.replace("{nonce}", nonce))
    image = {"repository": f"127.0.0.1:{port}/bench/{project.app}", "cache": cache}
    if builder:
        image["builder"] = builder
    project.configure({"dockyard": {"image": image}})
    project.commit("bench")
    try:
        cold = timed(project, "image.build", "dev")
        subprocess.run(["docker", "push", f"{project.repository}:dev"], capture_output=True, check=True, timeout=600)
        remove_test_artifacts(project.app)
        drop_build_cache(nonce)
        (project.root / "site" / "index.html").write_text(f"<p>code-only change {nonce}</p>\n")
        project.commit("code only")
        warm = timed(project, "image.build", "dev")
        return cold, warm
    finally:
        remove_test_artifacts(project.app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--cache", choices=("inline", "registry"), default="inline")
    parser.add_argument("--builder", default="", help="image.builder (a Buildx builder's name for registry mode)")
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-bench-build-cache-"))
    port = free_port()
    (workdir / "registry.yml").write_text(
        f"version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {workdir / 'registry'}}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    registry = subprocess.Popen([shutil.which("docker-registry") or "registry", "serve", str(workdir / "registry.yml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        colds, warms = [], []
        for number in range(1, options.runs + 1):
            cold, warm = one_run(workdir, port, options.cache, options.builder)
            colds.append(cold)
            warms.append(warm)
            print(f"run {number}: cold {cold:.1f} s, warm {warm:.1f} s, warm/cold {warm / cold:.0%}")
        cold, warm = statistics.median(colds), statistics.median(warms)
        print(f"image.cache: {options.cache}; median of {options.runs}: cold {cold:.1f} s, warm {warm:.1f} s, "
              f"warm/cold {warm / cold:.0%} (target <= 30%)")
    finally:
        registry.terminate()
        registry.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
