"""Staging deploys cut short at every named step: how many cases the deploy survives.

Everything is real and local: a private registry (Debian's docker-registry, htpasswd auth) with the sample app as
v1 and v2, and a staging host that is this machine's sshd with a ``ForceCommand`` wrapper that logs each remote
command and injects a fault when one matches (the connection dropped before or after it, a failure, a read-only
path, Ctrl-C or SIGTERM to dockyard; see ``tests/fixtures/faults.py``). Each case (``tests/staging_fault_cases.py``)
starts with v1 live, deploys v2 with its fault armed, checks the exit code and its one line, what the public port
serves, the lock, the audit record and ``staging.status``, then deploys v2 again and checks the same.

It prints one line per case and the figures: cases, survived, failed, wall time. Run:
``python benchmarks/staging_faults.py [--case SUBSTRING]`` (needs Docker, openssh-server, docker-registry,
apache2-utils, the base images, and root for ``chattr``; cleans up after itself).
"""
from __future__ import annotations

import argparse
import getpass
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import free_port, make_sample_project
from fixtures.faults import FaultHost, wrapper_config
from fixtures.registry import Registry, _wait_http
from fixtures.sshd import SshdHost, _keygen, host_key_line, start_sshd
from staging_fault_cases import CASES, reset, run_case, served
from test_staging_e2e import StagingProject


def sh(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, **kwargs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="", help="run only the cases whose name holds this text")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each problem of a failed case")
    args = parser.parse_args()
    cases = [c for c in CASES if args.case in c.name]

    work = Path(tempfile.mkdtemp(prefix="dockyard-faults-"))
    procs: list[subprocess.Popen] = []
    staging = None
    images: list[str] = []
    started = time.monotonic()
    try:
        password = f"pw-{uuid.uuid4().hex[:10]}"
        sh("htpasswd", "-Bbc", str(work / "htpasswd"), "dockyard", password)
        port = free_port()
        (work / "registry.yml").write_text(
            f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {work / 'data'}}}}}\n"
            f"http: {{addr: 127.0.0.1:{port}}}\n"
            f"auth: {{htpasswd: {{realm: faults, path: {work / 'htpasswd'}}}}}\n")
        binary = shutil.which("docker-registry") or shutil.which("registry")
        procs.append(subprocess.Popen([binary, "serve", str(work / "registry.yml")], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        _wait_http(f"http://127.0.0.1:{port}/v2/", time.monotonic() + 20)
        registry = Registry(f"127.0.0.1:{port}", "dockyard", password, work)

        _keygen(work / "client")
        (work / "authorized_keys").write_text((work / "client.pub").read_text())
        server = start_sshd(work / "sshd", work / "authorized_keys", wrapper_config(work / "faults"))
        procs.append(server.process)
        (work / "known_hosts").write_text(host_key_line(work / "sshd", server.port) + "\n")
        host = SshdHost(getpass.getuser(), server.port, work / "client", work / "known_hosts")
        faults = FaultHost(work / "faults")

        repo = registry.repository(f"bench/faults-{uuid.uuid4().hex[:6]}")
        config = work / "docker-config"
        sh("docker", "--config", str(config), "login", "--username", "dockyard", "--password-stdin", registry.host,
           input=password)
        print("building and pushing v1 and v2 of the sample app...", flush=True)
        for version in ("v1", "v2"):
            ref = f"{repo}:{version}"
            sh("docker", "build", "-q", "-f", "docker/app/Dockerfile", "--build-arg",
               "PYTHON_IMAGE=dockyard-base/python:bookworm", "--build-arg", f"APP_VERSION={version}", "-t", ref,
               str(REPO))
            sh("docker", "--config", str(config), "push", ref)
            images.append(ref)

        staging = StagingProject(make_sample_project(work / "project"), [host], registry, repo)
        staging.inv("staging.setup", check=True)
        staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
        assert served(staging.ports[0]) == "v1"

        outcomes = []
        for case in cases:
            outcome = run_case(staging, faults, case)
            outcomes.append(outcome)
            print(f"{case.name:<36} {'survived' if outcome.survived else 'FAILED':<9} {outcome.seconds:5.1f}s",
                  flush=True)
            if args.verbose or not outcome.survived:
                for problem in outcome.problems:
                    print(f"    {problem}")
            if args.verbose:
                print(f"    phases: {outcome.phases}")
                print("    | " + outcome.transcript.rstrip().replace("\n", "\n    | "))
        reset(staging)
        survived = sum(o.survived for o in outcomes)
        print(f"\ncases {len(outcomes)}  survived {survived}  failed {len(outcomes) - survived}  "
              f"wall time {time.monotonic() - started:.0f}s")
        return 0 if survived == len(outcomes) else 1
    finally:
        if staging is not None:
            FaultHost.thaw(staging.state_dir())
            staging.cleanup()
            remove = [sys.executable, "-c", ("import sys; sys.path.insert(0, 'tests'); "
                                             "from conftest import remove_test_artifacts as r; r(sys.argv[1])"),
                      staging.project.app]
            subprocess.run(remove, cwd=REPO, capture_output=True, check=False)
        if images:
            subprocess.run(["docker", "image", "rm", "-f", *images], capture_output=True, check=False)
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
