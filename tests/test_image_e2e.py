"""image.build / destroy / update / list / prune against the real engine."""
from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = pytest.mark.engine


def inspect(ref: str) -> dict | None:
    out = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True)
    return json.loads(out.stdout)[0] if out.returncode == 0 else None


def test_build_tags_by_environment_and_commit_with_oci_labels(engine, sample_project):
    sha = sample_project.git("rev-parse", "HEAD").stdout.strip()
    committed = sample_project.git("log", "-1", "--format=%cI").stdout.strip()
    repo = sample_project.repository
    sample_project.git("remote", "add", "origin", "https://ci-bot:tok3n-value@git.example/team/shop.git")

    sample_project.inv("image.build", "prod", check=True)
    image = inspect(f"{repo}:prod")
    assert image is not None
    assert f"{repo}:{sha[:7]}" in image["RepoTags"]
    labels = image["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.created"] == committed
    assert labels["org.opencontainers.image.version"] == sha[:7]
    assert labels["org.opencontainers.image.source"] == "https://git.example/team/shop.git"  # no credentials

    # An unchanged rebuild is served from the layer cache and yields the very same image.
    sample_project.inv("image.build", "prod", check=True)
    assert inspect(f"{repo}:prod")["Id"] == image["Id"]

    # A dirty tree is marked so it is never mistaken for the commit.
    (sample_project.root / "app" / "NOTE.txt").write_text("wip\n")
    sample_project.inv("image.build", "dev", check=True)
    dev = inspect(f"{repo}:dev")
    assert f"{repo}:dev-{sha[:7]}-dirty" in dev["RepoTags"]
    assert dev["Config"]["Labels"]["dev.dockyard.dirty"] == "true"

    listing = sample_project.inv("image.list", check=True)
    assert "prod" in listing.stdout and sha[:7] in listing.stdout
    cells = [line.split()[1] for line in listing.stdout.splitlines() if len(line.split()) > 1]
    assert ",".join(sorted([sha[:7], "prod"])) in cells  # the tags, not "5000/dockyard-test/<app>:prod"
    assert "5000/" not in listing.stdout


def test_images_leave_secrets_out(engine, sample_project):
    env_file = sample_project.root / "environments/prod/.env"
    env_file.write_text(env_file.read_text() + "SECRET_CANARY=canary-7f3a9b\n")
    sample_project.inv("image.build", "prod", check=True)
    files = subprocess.run(["docker", "run", "--rm", "--entrypoint", "sh", f"{sample_project.repository}:prod", "-c",
                            "find / -name .env -not -path '/proc/*' 2>/dev/null; grep -rl canary-7f3a9b /app || true"],
                           capture_output=True, text=True)
    assert files.returncode == 0, files.stderr
    assert files.stdout.strip() == ""


def test_destroy_refuses_while_running_then_removes(engine, sample_project):
    repo = sample_project.repository
    sample_project.inv("dev.start", check=True)
    refused = sample_project.inv("image.destroy", "dev")
    assert refused.returncode == 5
    assert f"{repo}:dev is in use by" in refused.stderr and "inv dev.stop" in refused.stderr
    assert inspect(f"{repo}:dev") is not None  # nothing changed

    sample_project.inv("dev.down", check=True)
    sample_project.inv("image.destroy", "dev", check=True)
    assert inspect(f"{repo}:dev") is None

    # update builds when there is nothing, and replaces the old image when the code changed
    sample_project.inv("image.update", "dev", check=True)
    first = inspect(f"{repo}:dev")["Id"]
    (sample_project.root / "app" / "sample" / "extra.py").write_text("X = 1\n")
    sample_project.commit("more code")
    sample_project.inv("image.update", "dev", check=True)
    second = inspect(f"{repo}:dev")["Id"]
    assert second != first
    assert inspect(first) is None or inspect(first)["RepoTags"], "the replaced image was left dangling"
