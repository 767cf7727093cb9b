"""Benchmark `inv deploy` against the Elastic Beanstalk stand-in.

Prints, per deploy: the time dockyard takes beyond the platform's own (from the stand-in turning the environment
Ready/Green to `inv deploy` returning; the target is under one poll interval), the number of EB API calls, and the
bundle's size against `git archive` of the repository. Needs a Docker engine with the base images and moto_server.

    python benchmarks/eb_deploy.py [--deploys 3] [--poll 1.0]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import PYTHON_BASE, free_port, library_path, make_sample_project  # noqa: E402
from eb_standin.server import Server  # noqa: E402
from fixtures.aws import FAKE_CREDENTIALS  # noqa: E402

IMAGE = "ebbench/sample"


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **FAKE_CREDENTIALS})
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
            return proc, endpoint
        except OSError:
            time.sleep(0.2)
    raise SystemExit("moto_server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deploys", type=int, default=3)
    parser.add_argument("--poll", type=float, default=1.0)
    args = parser.parse_args()
    subprocess.run(["docker", "build", "--quiet", "--build-arg", f"PYTHON_IMAGE={PYTHON_BASE}", "-f",
                    str(REPO / "docker/app/Dockerfile"), "-t", f"{IMAGE}:base", str(REPO)], check=True,
                   capture_output=True)
    moto, endpoint = start_moto()
    server = Server(endpoint).start()
    workdir = Path(tempfile.mkdtemp(prefix="eb-bench-"))
    tags = []
    try:
        import boto3

        session = boto3.Session(**{"aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                   "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                   "region_name": "us-east-1"})
        session.client("s3", endpoint_url=endpoint).create_bucket(Bucket="eb-bench")
        eb = session.client("elasticbeanstalk", endpoint_url=server.endpoint)
        eb.create_application(ApplicationName="ebbench")
        eb.create_environment(ApplicationName="ebbench", EnvironmentName="ebbench-prod", OptionSettings=[
            {"Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "DJANGO_SECRET_KEY",
             "Value": "bench-secret-key-0123456789"}])
        project = make_sample_project(workdir / "project", app="ebbench")
        project.configure({"dockyard": {
            "image": {"repository": IMAGE}, "registry": {"username": ""},
            "eb": {"application": "ebbench", "bucket": "eb-bench", "endpoint_url": server.endpoint, "auth": "none",
                   "platform": "v1", "poll_interval": args.poll, "health_window": 0, "timeout": 300},
            "environments": {"prod": {"target": "eb", "eb": {"name": "ebbench-prod"}}}}})
        env = {**os.environ, **FAKE_CREDENTIALS, "INVOKE_DOCKYARD_AWS_ENDPOINT_URL": endpoint,
               "PYTHONPATH": library_path()}
        print(f"poll interval {args.poll:g}s, health window 0s, platform v1")
        for n in range(args.deploys):
            version = f"1.0.{n}"
            tag = f"{IMAGE}:{version}"
            subprocess.run(["docker", "tag", f"{IMAGE}:base", tag], check=True)
            tags.append(tag)
            (project.root / "RELEASE").write_text(version)
            project.commit(f"release {version}")
            project.git("tag", "-a", f"v{version}", "-m", f"release {version}")
            calls_before = len(server.standin.calls)
            started = time.monotonic()
            result = subprocess.run([sys.executable, "-m", "invoke", "deploy"], cwd=project.root, env=env,
                                    capture_output=True, text=True)
            returned = time.monotonic()
            if result.returncode != 0:
                raise SystemExit(f"deploy {version} failed:\n{result.stdout}\n{result.stderr}")
            state = server.standin.snapshot()["environments"]["ebbench-prod"]
            calls = server.standin.calls[calls_before:]
            platform_done = max(state["green_at"], state["ready_at"])
            print(f"deploy {version}: total {returned - started:5.1f}s, beyond the platform "
                  f"{returned - platform_done:4.2f}s, EB API calls {len(calls)} "
                  f"({sum(1 for c in calls if c[1] in ('DescribeEvents', 'DescribeEnvironments'))} polls)")
        bundle = workdir / "bundle.zip"
        subprocess.run([sys.executable, "-m", "invoke", "eb.bundle", "--output", str(bundle)], cwd=project.root,
                       env=env, check=True, capture_output=True)
        archive = workdir / "archive.zip"
        subprocess.run(["git", "archive", "--format=zip", "-o", str(archive), "HEAD"], cwd=project.root, check=True)
        print(f"bundle {bundle.stat().st_size} bytes; git archive of the project {archive.stat().st_size} bytes "
              f"({archive.stat().st_size / bundle.stat().st_size:.0f}x larger)")
        for platform in ("v2", "compose"):
            out = workdir / f"{platform}.zip"
            subprocess.run([sys.executable, "-m", "invoke", "eb.bundle", "--platform", platform, "--output", str(out)],
                           cwd=project.root, env=env, check=True, capture_output=True)
            print(f"{platform} bundle {out.stat().st_size} bytes")
    finally:
        server.stop()
        moto.terminate()
        moto.wait(timeout=10)
        subprocess.run(["docker", "image", "rm", f"{IMAGE}:base", *tags], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
