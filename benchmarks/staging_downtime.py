"""Failed requests during a redeploy: `inv staging.ssh-deploy` against the naive `docker rm -f` + `docker run`.

Everything is real and local: sshd on a loopback port (the staging host is this machine), Debian's
docker-registry on a loopback port, the sample app image in two versions. A bounded load loop (``--rate``
requests/s for the duration of each redeploy, loopback only) runs against

  (a) the proxy's public port while `inv staging.ssh-deploy --version v2` runs (v1 live), and
  (b) the app's published port while the recipe's `docker rm -f app && docker run -p PORT:8000 ... v2` runs.

It prints requests sent, failed, the longest gap between two successful answers, and the deploy's wall time
(the image already pulled). The deploy runs the staging release command (``--release-command``, a Django
migration by default) on the host before it switches. Run: ``python benchmarks/staging_downtime.py`` (needs Docker, openssh-server,
docker-registry and the base images; cleans up after itself).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import free_port, make_sample_project  # noqa: E402
from fixtures.sshd import _keygen, host_key_line, start_sshd  # noqa: E402


class LoadLoop:
    """``rate`` GETs per second from a few threads, each request on a fresh connection; until stopped."""

    def __init__(self, url: str, rate: int, threads: int = 8) -> None:
        self.url = url
        self.interval = threads / rate
        self.stop = threading.Event()
        self.sent = 0
        self.failed = 0
        self.last_ok = time.monotonic()
        self.longest_gap = 0.0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, args=(n,), daemon=True) for n in range(threads)]

    def loop(self, n: int) -> None:
        next_at = time.monotonic() + n * self.interval / len(self.threads)
        while not self.stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += self.interval
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    ok = response.status == 200
                    response.read()
            except Exception:  # noqa: BLE001 - every failure counts
                ok = False
            now = time.monotonic()
            with self.lock:
                self.sent += 1
                if ok:
                    self.longest_gap = max(self.longest_gap, now - self.last_ok)
                    self.last_ok = now
                else:
                    self.failed += 1

    def __enter__(self) -> "LoadLoop":
        self.started = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
        self.elapsed = time.monotonic() - self.started

    def report(self, label: str, wall: float) -> str:
        return (f"{label:<32} sent {self.sent:5d}  failed {self.failed:4d}  longest gap {self.longest_gap * 1000:6.0f} ms"
                f"  rate {self.sent / self.elapsed:5.0f} req/s  deploy wall time {wall:5.1f} s")


def sh(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, **kwargs)


def wait_ok(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception:  # noqa: BLE001
            time.sleep(0.2)
    raise RuntimeError(f"{url} never answered 200")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=150, help="requests per second (default 150)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds of load before and after each redeploy")
    parser.add_argument("--release-command", default="python manage.py migrate --noinput",
                        help="the staging environment's release_command, run by each deploy before the switch "
                             "('' for none)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
    procs: list[subprocess.Popen] = []
    cleanup: list[list[str]] = []
    try:
        # The registry (plain docker-registry, no auth: the benchmark measures the swap, not the login).
        registry_port = free_port()
        (work / "registry.yml").write_text(
            f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {work / 'data'}}}}}\n"
            f"http: {{addr: 127.0.0.1:{registry_port}}}\n")
        binary = shutil.which("docker-registry") or shutil.which("registry")
        procs.append(subprocess.Popen([binary, "serve", str(work / "registry.yml")], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        # The staging host: sshd on loopback, logging in as this user with a generated key.
        _keygen(work / "client")
        (work / "authorized_keys").write_text((work / "client.pub").read_text())
        server = start_sshd(work / "sshd", work / "authorized_keys")
        procs.append(server.process)
        (work / "known_hosts").write_text(host_key_line(work / "sshd", server.port) + "\n")

        repo = f"127.0.0.1:{registry_port}/bench/staging"
        print("building and pushing v1 and v2 of the sample app...", flush=True)
        for version in ("v1", "v2"):
            sh("docker", "build", "-q", "-f", "docker/app/Dockerfile", "--build-arg",
               "PYTHON_IMAGE=dockyard-base/python:bookworm", "--build-arg", f"APP_VERSION={version}",
               "-t", f"{repo}:{version}", str(REPO))
            sh("docker", "push", f"{repo}:{version}")
        cleanup.append(["docker", "image", "rm", "-f", f"{repo}:v1", f"{repo}:v2"])

        project = make_sample_project(work / "project", app="bench")
        proxy_port = free_port()
        project.configure({"dockyard": {
            "image": {"repository": repo},
            "registry": {"username": ""},
            "ssh": {"hosts": [f"{os.environ.get('USER', 'root')}@127.0.0.1:{server.port}"],
                    "key_file": str(work / "client"), "known_hosts": str(work / "known_hosts"), "use_agent": False,
                    "proxy_port": proxy_port, "proxy_bind": "127.0.0.1", "prefix": "bench-staging",
                    "drain_seconds": 1},
            "environments": {"staging": {"target": "ssh", "release_command": args.release_command,
                                         "release_command_timeout": 120}},
        }})
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cleanup.append(["sh", "-c", "docker rm -f $(docker ps -aq --filter label=dev.dockyard.ssh.prefix=bench-staging)"
                        " >/dev/null 2>&1; docker network rm bench-staging >/dev/null 2>&1; "
                        "rm -rf ~/.dockyard/bench-staging"])

        def inv(*argv: str) -> str:
            return sh(sys.executable, "-m", "invoke", *argv, cwd=project.root, env=env).stdout

        inv("staging.setup")
        inv("staging.ssh-deploy", "--version", "v1")
        wait_ok(f"http://127.0.0.1:{proxy_port}/health/")
        sh("docker", "pull", "--quiet", f"{repo}:v2")  # the deploy of v1 pruned it: measure with it pulled

        with LoadLoop(f"http://127.0.0.1:{proxy_port}/health/", args.rate) as dockyard_load:
            time.sleep(args.settle)
            started = time.monotonic()
            progress = [line.strip() for line in inv("staging.ssh-deploy", "--version", "v2").splitlines()
                        if re.search(r"\(\d+\.\ds\)$", line.rstrip())]
            dockyard_wall = time.monotonic() - started
            time.sleep(args.settle)

        # The recipe: the app publishes its port itself; rm -f, then run the new version.
        app_port = free_port()
        name = "bench-naive-app"
        cleanup.append(["docker", "rm", "-f", name])
        env_file = project.root / "environments" / "staging" / ".env"
        run = ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{app_port}:8000", "--env-file", str(env_file)]
        sh(*run, f"{repo}:v1")
        wait_ok(f"http://127.0.0.1:{app_port}/health/")
        with LoadLoop(f"http://127.0.0.1:{app_port}/health/", args.rate) as naive_load:
            time.sleep(args.settle)
            started = time.monotonic()
            sh("docker", "rm", "-f", name)
            sh(*run, f"{repo}:v2")
            naive_wall = time.monotonic() - started
            wait_ok(f"http://127.0.0.1:{app_port}/health/")
            time.sleep(args.settle)

        ran = "with the release command " + repr(args.release_command) if args.release_command else "no release command"
        print(f"\nredeploy v1 -> v2 under a steady load of {args.rate} req/s (loopback), {ran}:")
        print(dockyard_load.report("dockyard staging.ssh-deploy", dockyard_wall))
        print(naive_load.report("naive docker rm -f + docker run", naive_wall))
        print("dockyard's phases: " + "; ".join(progress))
    finally:
        for command in reversed(cleanup):
            subprocess.run(command, capture_output=True)
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
