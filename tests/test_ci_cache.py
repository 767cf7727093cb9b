"""`inv ci.cache.save/load`: service images as docker-save archives in a directory, on the real engine."""
from __future__ import annotations

import subprocess

import pytest

from conftest import REPO, unavailable

PYTHONPATH = {"PYTHONPATH": str(REPO)}
SOURCE = "dockyard-base/redis:bookworm"


def image_id(ref: str) -> str:
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


@pytest.fixture
def cached_project(engine, sample_project, tmp_path):
    if not image_id(SOURCE):
        unavailable(f"{SOURCE} missing (run scripts/base-images.sh --only redis)")
    image = f"dockyard-test-ci/{sample_project.app}-redis:7.0.15"  # a tag of our own: removing it is harmless
    subprocess.run(["docker", "tag", SOURCE, image], check=True)
    sample_project.configure({"dockyard": {"ci": {
        "cache_dir": str(tmp_path / "cache"),
        "services": {"mariadb": {"enabled": False}, "redis": {"image": image}}}}})
    yield sample_project, image, tmp_path / "cache"
    subprocess.run(["docker", "image", "rm", image], capture_output=True)


def test_save_then_load_restores_a_missing_image(cached_project):
    project, image, cache = cached_project
    saved = project.inv("ci.cache.save", env=PYTHONPATH)
    assert saved.returncode == 0, saved.stderr
    archives = list(cache.glob("*.tar"))
    assert [a.name for a in archives] == [f"dockyard-test-ci_{project.app}-redis_7.0.15.tar"]
    assert archives[0].with_suffix(".id").read_text().strip() == image_id(image)

    again = project.inv("ci.cache.save", env=PYTHONPATH)
    assert "is up to date" in again.stdout and "Save " not in again.stdout

    skipped = project.inv("ci.cache.load", env=PYTHONPATH)
    assert skipped.returncode == 0 and "already on this engine; skipped" in skipped.stdout

    subprocess.run(["docker", "image", "rm", image], check=True, capture_output=True)
    loaded = project.inv("ci.cache.load", env=PYTHONPATH)
    assert loaded.returncode == 0, loaded.stderr
    assert image_id(image) == image_id(SOURCE)


def test_load_with_an_empty_cache_says_what_will_be_pulled(cached_project):
    project, image, cache = cached_project
    subprocess.run(["docker", "image", "rm", image], check=True, capture_output=True)
    result = project.inv("ci.cache.load", env=PYTHONPATH)
    assert result.returncode == 0, result.stderr
    assert f"{image}: not cached in {cache}; it will be pulled" in result.stdout
