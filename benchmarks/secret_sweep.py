"""Benchmark-style figures of the planted-secret sweep (tests/secret_sweep.py): secrets planted, flows run, places
checked, leaks found, and a per-flow table. Needs moto_server, Docker, docker-registry and the base images.

    python benchmarks/secret_sweep.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from conftest import make_sample_project  # noqa: E402
from fixtures.aws import running_moto  # noqa: E402
from fixtures.registry import running_registry  # noqa: E402
from secret_sweep import Sweep, ecs_flow, publish_flow  # noqa: E402
from test_ecs_deploy import BUCKET, Ecs  # noqa: E402
from test_release_flow import make_rig  # noqa: E402


def ecs_stand(project, aws) -> Ecs:
    """The service tests/test_ecs_deploy.py's ``ecs`` fixture sets up: cluster, service, ECR images, bucket."""
    env = Ecs(project, aws)
    project.configure({"dockyard": {"image": {"repository": env.repository}, "ecs": {
        "cluster": "shop", "service": "shop-web", "containers": ["web"], "bucket": BUCKET, "keep": 3,
        "timeout": 5, "rollback_timeout": 5, "poll_interval": 0}}})
    project.commit("ecs settings")
    project.git("tag", "-a", "v1.2.4", "-m", "release 1.2.4")
    env.ecs.create_cluster(clusterName="shop")
    env.register(f"{env.repository}:1.2.3")
    env.ecs.create_service(cluster="shop", serviceName="shop-web", taskDefinition=project.app, desiredCount=0)
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName=project.app)
    ecr.put_image(repositoryName=project.app, imageTag="1.2.4", imageManifest=json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "config": {"digest": f"sha256:{'0' * 63}4"}, "layers": []}))
    aws.client("s3").create_bucket(Bucket=BUCKET)
    return env


def main() -> None:
    sweep = Sweep()
    with tempfile.TemporaryDirectory(prefix="secret-sweep-") as work:
        workdir = Path(work)
        with running_moto(workdir) as aws:
            stand = ecs_stand(make_sample_project(workdir / "project"), aws)
            for debug in (False, True):
                ecs_flow(sweep, stand, workdir, debug=debug)
        (workdir / "registry").mkdir()
        with running_registry(workdir / "registry") as registry:
            rig = make_rig(make_sample_project(workdir / "release"), workdir, registry)
            try:
                publish_flow(sweep, rig, workdir)
            finally:  # only the images this run built
                tags = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                                       rig.repository], capture_output=True, text=True, timeout=60).stdout.split()
                if tags:
                    subprocess.run(["docker", "image", "rm", *tags], capture_output=True, timeout=120)
    places = sum(r.places for r in sweep.reports)
    print(f"{len(sweep.secrets)} planted, {len(sweep.reports)} flows, {places} places checked, "
          f"{len(sweep.leaks)} leaks")
    print(f"{"flow":<18} {'places':>6} {'leaks':>5}  notes")
    for r in sweep.reports:
        print(f"{r.flow:<18} {r.places:>6} {len(r.leaks):>5}  {'; '.join(r.notes)}")
    for leak in sweep.leaks:
        print(f"LEAK {leak.flow}: {leak.secret} in {leak.place}")
    sys.exit(1 if sweep.leaks else 0)


if __name__ == "__main__":
    main()
