"""Each refusal of `inv release` / `inv publish`: one line naming the problem and the fix, exit != 0, no traceback,
and nothing changed (no tag, no branch, no image tag, no push, no record)."""
from __future__ import annotations

import subprocess

import pytest

from conftest import engine_reachable, free_port, git
from test_release_flow import ReleaseRig, assert_one_line_refusal, make_rig


@pytest.fixture
def rig(sample_project, tmp_path) -> ReleaseRig:
    """No registry and no engine needed: every refusal below happens before a build or a push."""
    return make_rig(sample_project, tmp_path)


def refused(rig: ReleaseRig, *args: str, words: tuple[str, ...] = ()) -> None:
    before = rig.snapshot() if engine_reachable() else {**rig.snapshot(), "images": None}
    result = rig.inv(*args)
    assert_one_line_refusal(result, *words)
    after = rig.snapshot() if engine_reachable() else {**rig.snapshot(), "images": None}
    assert after == before


def test_release_refuses_dirty_tree(rig):
    (rig.project.root / "app" / "manage.py").write_text("# edited\n")
    (rig.project.root / "notes.txt").write_text("untracked\n")
    refused(rig, "release", "1.0.0", words=("uncommitted changes", "app/manage.py", "notes.txt"))


def test_release_refuses_existing_local_tag(rig):
    rig.project.git("tag", "v1.0.0")
    refused(rig, "release", "1.0.0", words=("tag v1.0.0 already exists",))


def test_release_refuses_tag_that_exists_on_the_remote(rig, tmp_path):
    other = tmp_path / "other-clone"
    git(tmp_path, "clone", "-q", str(rig.origin), str(other))
    git(other, "tag", "v1.0.0")
    git(other, "push", "-q", "origin", "v1.0.0")
    rig.project.git("fetch", "-q", "--tags", "origin")  # what release's own fetch brings is not a change it made
    refused(rig, "release", "1.0.0", words=("v1.0.0 already exists",))


def test_release_refuses_version_not_greater_than_the_last(rig):
    rig.project.git("tag", "v1.2.0")
    rig.commit_file("app/NEW.txt", "x\n", "More")
    refused(rig, "release", "1.1.0", words=("not greater than 1.2.0",))


def test_minor_release_refused_outside_main(rig):
    rig.project.git("switch", "-q", "-c", "feature")
    refused(rig, "release", "1.0.0", words=("must be made from 'main'", "git switch main"))


def test_patch_release_refused_without_release_branch(rig):
    refused(rig, "release", "1.0.1", words=("branch release-v1.0 does not exist",))


def test_patch_release_refused_when_commit_is_not_on_release_branch(rig):
    rig.project.git("tag", "-a", "-m", "Release 1.0.0", "v1.0.0")
    rig.project.git("branch", "release-v1.0")
    rig.commit_file("app/NEW.txt", "x\n", "Work on main")
    refused(rig, "release", "1.0.1", words=("is not on release-v1.0",))


def test_patch_release_from_main_behind_its_line_names_the_line(rig):
    rig.project.git("tag", "-a", "-m", "Release 0.1.0", "v0.1.0")
    rig.project.git("switch", "-q", "-c", "release-v0.1")
    rig.commit_file("app/FIX.txt", "fix\n", "Fix")
    rig.project.git("tag", "-a", "-m", "Release 0.1.1", "v0.1.1")
    rig.project.git("switch", "-q", "main")
    refused(rig, "release", "0.1.2", words=("(main) is not on release-v0.1, whose line is at 0.1.1",
                                            "git switch release-v0.1"))


def test_release_refused_without_new_commits_unless_allowed(rig):
    rig.project.git("tag", "-a", "-m", "Release 1.0.0", "v1.0.0")
    refused(rig, "release", "1.1.0", words=("no new commits since v1.0.0", "--allow-empty"))
    result = rig.inv("release", "1.1.0", "--allow-empty", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "create annotated tag v1.1.0" in result.stdout


@pytest.mark.parametrize("version, words", [
    ("1.2", ("did you mean 1.2.0",)),
    ("01.2.3", ("leading zero",)),
    ("1.2.3.4", ("has 4 numbers",)),
    ("latest", ("moving name",)),
])
def test_release_refuses_bad_versions(rig, version, words):
    refused(rig, "release", version, words=words)


def test_release_reports_a_failed_fetch(rig, tmp_path):
    rig.project.git("remote", "set-url", "origin", str(tmp_path / "gone.git"))
    refused(rig, "release", "1.0.0", words=("git fetch origin", "failed"))


def test_release_refuses_without_the_remote(rig):
    rig.project.git("remote", "remove", "origin")
    refused(rig, "release", "1.0.0", words=("git remote 'origin' is not configured",))


def test_publish_refuses_without_tag(rig):
    refused(rig, "publish", "1.0.0", words=("there is no tag v1.0.0", "inv release 1.0.0"))


def test_publish_refuses_without_local_image(engine, rig):
    rig.project.git("tag", "-a", "-m", "Release 1.0.0", "v1.0.0")
    refused(rig, "publish", "1.0.0", words=("is not on this machine",))


def test_publish_refuses_image_from_another_commit(engine, rig):
    rig.project.git("tag", "-a", "-m", "Release 1.0.0", "v1.0.0")
    ref = f"{rig.repository}:1.0.0"
    subprocess.run(["docker", "tag", "dockyard-base/debian:bookworm", ref], check=True)
    try:
        refused(rig, "publish", "1.0.0", words=("was built from no revision label", "rebuild it"))
    finally:
        subprocess.run(["docker", "image", "rm", ref], capture_output=True)


def labelled_image(rig: ReleaseRig, ref: str, revision: str) -> None:
    """A tiny real image labelled as built from ``revision`` (no RUN step: built in well under a second)."""
    subprocess.run(["docker", "build", "-q", "-t", ref, "--label", f"org.opencontainers.image.revision={revision}",
                    "--label", f"dev.dockyard.app={rig.project.app}", "-"],
                   input="FROM dockyard-base/debian:bookworm\n", text=True, capture_output=True, check=True)


def test_publish_reports_wrong_password(engine, registry, sample_project, tmp_path):
    rig = make_rig(sample_project, tmp_path, registry)
    rig.project.git("tag", "-a", "-m", "Release 1.0.0", "v1.0.0")
    labelled_image(rig, f"{rig.repository}:1.0.0", rig.project.git("rev-parse", "HEAD").stdout.strip())
    before = rig.snapshot()
    result = rig.inv("publish", "1.0.0", env={"DOCKYARD_REGISTRY_PASSWORD": "not-the-password"})
    assert_one_line_refusal(result, "check the password")
    assert "not-the-password" not in result.stdout + result.stderr
    assert rig.snapshot() == before


def test_publish_reports_unreachable_registry(engine, sample_project, tmp_path):
    rig = make_rig(sample_project, tmp_path)
    port = free_port()
    rig.project.configure({"dockyard": {"image": {"repository": f"127.0.0.1:{port}/t/{rig.project.app}"},
                                        "registry": {"username": "someone"}}})
    rig.project.commit("unreachable registry")
    rig.project.git("tag", "-a", "-m", "Release 1.0.0", "v1.0.0")
    labelled_image(rig, f"{rig.repository}:1.0.0", rig.project.git("rev-parse", "HEAD").stdout.strip())
    before = rig.snapshot()
    result = rig.inv("publish", "1.0.0", env={"DOCKYARD_REGISTRY_PASSWORD": "pw-unused"})
    assert_one_line_refusal(result, f"registry 127.0.0.1:{port} is unreachable")
    assert rig.snapshot() == before


def test_publish_refuses_without_password_under_ci(engine, registry, sample_project, tmp_path):
    rig = make_rig(sample_project, tmp_path, registry)
    rig.project.git("tag", "-a", "-m", "Release 1.0.0", "v1.0.0")
    labelled_image(rig, f"{rig.repository}:1.0.0", rig.project.git("rev-parse", "HEAD").stdout.strip())
    before = rig.snapshot()
    result = rig.inv("publish", "1.0.0", env={"DOCKYARD_REGISTRY_PASSWORD": ""})
    assert_one_line_refusal(result, "DOCKYARD_REGISTRY_PASSWORD")
    assert rig.snapshot() == before
