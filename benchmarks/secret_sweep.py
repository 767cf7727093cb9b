"""Benchmark-style figures of the planted-secret sweep (tests/secret_sweep.py): secrets planted, flows run, places
checked, leaks found, and a per-flow table. Needs moto_server, Docker, docker-registry and the base images.

    python benchmarks/secret_sweep.py
"""
from __future__ import annotations

import getpass
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
from fixtures.sshd import SshdHost, _keygen, _stop, host_key_line, start_sshd  # noqa: E402
from secret_sweep import Sweep, ecs_flow, publish_flow, staging_flow  # noqa: E402
from test_deploy_hooks import Webhook  # noqa: E402
from test_ecs_deploy import BUCKET, Ecs  # noqa: E402
from test_release_flow import make_rig  # noqa: E402
from test_staging_e2e import PYTHON_BASE, StagingProject  # noqa: E402


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


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=600, **kwargs)


def staging_sweep(sweep: Sweep, workdir: Path, registry) -> None:
    """The staging flow against one loopback sshd host and the htpasswd registry, v1 and v2 of the sample pushed."""
    _keygen(workdir / "client")
    (workdir / "authorized_keys").write_text((workdir / "client.pub").read_text())
    server = start_sshd(workdir / "sshd", workdir / "authorized_keys")
    (workdir / "known_hosts").write_text(host_key_line(workdir / "sshd", server.port) + "\n")
    host = SshdHost(getpass.getuser(), server.port, workdir / "client", workdir / "known_hosts")
    repo = registry.repository("dockyard-test/sweep-staging")
    config = workdir / "push-config"
    config.mkdir()
    refs = [f"{repo}:{version}" for version in ("v1", "v2")]
    staging = None
    try:
        run("docker", "--config", str(config), "login", "--username", registry.username, "--password-stdin",
            registry.host, input=registry.password)
        for ref in refs:
            run("docker", "build", "-q", "-f", "docker/app/Dockerfile", "--build-arg", f"PYTHON_IMAGE={PYTHON_BASE}",
                "--build-arg", f"APP_VERSION={ref.rsplit(':', 1)[1]}", "-t", ref, str(REPO))
            run("docker", "--config", str(config), "push", ref)
        staging = StagingProject(make_sample_project(workdir / "staging"), [host], registry, repo)
        with Webhook() as webhook:
            staging_flow(sweep, staging, webhook, workdir)
    finally:
        if staging is not None:
            staging.cleanup()
        subprocess.run(["docker", "image", "rm", "-f", *refs], capture_output=True, timeout=120)
        _stop(server)


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
            staging_sweep(sweep, workdir, registry)
    places = sum(r.places for r in sweep.reports)
    print(f"{len(sweep.secrets)} planted, {len(sweep.reports)} flows, {places} places checked, "
          f"{len(sweep.leaks)} leaks")
    print(f"{'flow':<18} {'places':>6} {'leaks':>5}  notes")
    for r in sweep.reports:
        print(f"{r.flow:<18} {r.places:>6} {len(r.leaks):>5}  {'; '.join(r.notes)}")
    for leak in sweep.leaks:
        print(f"LEAK {leak.flow}: {leak.secret} in {leak.place}")
    sys.exit(1 if sweep.leaks else 0)


if __name__ == "__main__":
    main()
