"""`inv image.push ENV` refusals and its dry run (the push itself runs in tests/test_ci_pipeline_e2e.py)."""
from __future__ import annotations

from conftest import REPO

PYTHONPATH = {"PYTHONPATH": str(REPO)}


def test_push_refuses_a_dirty_tree(sample_project):
    (sample_project.root / "app" / "NEW.txt").write_text("not committed\n")
    result = sample_project.inv("image.push", "staging", "--dry-run", env=PYTHONPATH)
    assert result.returncode == 5, result.stderr
    assert result.stderr.strip().splitlines() == [
        ("dockyard: the tree has uncommitted changes (app/NEW.txt): commit them; a commit image is built from "
         "exactly its commit")]


def test_push_refuses_when_ci_names_another_commit(sample_project):
    result = sample_project.inv("image.push", "staging", "--dry-run", env={**PYTHONPATH, "GITHUB_SHA": "f" * 40})
    assert result.returncode == 5
    sha = sample_project.git("rev-parse", "HEAD").stdout.strip()
    assert f"GITHUB_SHA is fffffff but the checkout is at {sha[:7]}" in result.stderr


def test_push_dry_run_shows_the_tag_staging_deploys_by_default(sample_project):
    sha = sample_project.git("rev-parse", "HEAD").stdout.strip()
    result = sample_project.inv("image.push", "staging", "--dry-run", env={**PYTHONPATH, "CI": "true"})
    assert result.returncode == 0, result.stderr
    ref = f"{sample_project.repository}:staging-{sha[:7]}"
    assert f"push the commit image {ref}" in result.stdout
    assert f"build {ref} from {sha[:7]}" in result.stdout and f"$ docker push {ref}" in result.stdout
    assert "--file" in result.stdout and "docker/app/Dockerfile" in result.stdout  # no compose file: the app's
    assert "(dry run: nothing was changed)" in result.stdout
    assert not (sample_project.root / ".git" / "dockyard" / "images").exists()


def test_push_dry_run_shows_the_cache_options_of_image_cache(sample_project, buildx):
    sample_project.configure({"dockyard": {"image": {"cache": "inline"}}})
    sample_project.commit("inline cache")
    result = sample_project.inv("image.push", "staging", "--dry-run", env={**PYTHONPATH, "CI": "true"})
    assert result.returncode == 0, result.stderr
    build = next(line for line in result.stdout.splitlines() if " buildx build " in line and "--tag" in line)
    assert f"--cache-to type=inline --cache-from {sample_project.repository}:staging" in build
