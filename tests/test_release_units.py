"""Pure parts of releases: versions, lines, changelogs, the release/publish checks, the record."""
from __future__ import annotations

import io

import pytest

from dockyard.core.versions import BadVersion, ReleaseVersion, read_version, versions_from_tags
from dockyard.errors import Refused
from dockyard.plan import run_plan
from dockyard.release import (
    Commit,
    PublishState,
    ReleaseRecord,
    ReleaseState,
    changelog,
    check_publish,
    check_release,
    last_release,
    previous_release,
    release_plan,
)

V = ReleaseVersion.parse
HEAD = "a" * 40
OTHER = "b" * 40


# --- versions -----------------------------------------------------------------------------------------------------


def test_version_parses_each_number_whole():
    assert V("1.2.10") == ReleaseVersion(1, 2, 10)  # the old script read this as patch 0
    assert V("1.2.10").patch == 10
    assert str(V("10.20.30")) == "10.20.30"


def test_version_prerelease():
    v = V("1.2.3-rc.1")
    assert v.prerelease == ("rc", "1") and v.is_prerelease
    assert str(v) == "1.2.3-rc.1"
    assert v.tag() == "v1.2.3-rc.1" and v.image_tag == "1.2.3-rc.1"


@pytest.mark.parametrize("text, expected", [
    ("1.2", "did you mean 1.2.0?"),
    ("01.2.3", "leading zero"),
    ("1.02.3", "did you mean 1.2.3?"),
    ("1.2.3.4", "has 4 numbers"),
    ("latest", "moving name"),
    ("1.2.3+build.5", "build metadata"),
    ("banana", "not a release version"),
    ("", "no version given"),
    ("1.2.3-", "invalid pre-release"),
    ("1.2.3-rc.01", "invalid pre-release"),
])
def test_bad_versions_get_a_verdict(text, expected):
    with pytest.raises(BadVersion) as info:
        read_version(text)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_v_prefix_is_accepted_and_said():
    version, note = read_version("v1.2.3")
    assert version == V("1.2.3")
    assert note and "1.2.3" in note and "v1.2.3" in note
    assert read_version("1.2.3") == (V("1.2.3"), None)


def test_v_prefix_still_strict():
    with pytest.raises(BadVersion):
        read_version("v1.2")


def test_ordering_follows_semver():
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
               "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.9", "1.2.10", "1.10.0", "2.0.0"]
    versions = [V(t) for t in ordered]
    assert sorted(reversed(versions)) == versions
    assert V("1.2.10") > V("1.2.9")


def test_line_and_branch():
    assert V("1.2.3").line.branch() == "release-v1.2"
    assert V("1.2.3").line.branch("maint/") == "maint/1.2"
    assert V("1.2.0").opens_line and not V("1.2.1").opens_line


def test_versions_from_tags_ignores_other_tags():
    found = versions_from_tags(["v1.0.0", "v1.2", "nightly", "v2.0.0-rc.1", "x1.0.0"])
    assert set(found) == {V("1.0.0"), V("2.0.0-rc.1")}
    assert found[V("1.0.0")] == "v1.0.0"


def test_last_and_previous_release():
    releases = [V("1.0.0"), V("1.0.1"), V("1.1.0"), V("2.0.0")]
    assert last_release(releases, V("1.0.2")) == V("1.0.1")
    assert last_release(releases, V("1.2.0")) == V("2.0.0")
    assert last_release(releases, V("3.0.1")) is None
    assert previous_release([V("1.0.0"), V("1.0.1")], V("1.0.2")) == V("1.0.1")
    assert previous_release([], V("1.0.0")) is None


def test_changelog_lines():
    commits = [Commit("0123456789abcdef", "Fix the login", "Ada"), Commit("fedcba9876543210", "Add x", "Bob")]
    assert changelog(commits) == "* Fix the login (0123456, Ada)\n* Add x (fedcba9, Bob)"


# --- release checks -----------------------------------------------------------------------------------------------


def state(version="1.0.0", **changes) -> ReleaseState:
    v = V(version)
    values = dict(
        version=v, head=HEAD, current_branch="main", dirty_files=(), local_tags=frozenset(),
        remote_tags=frozenset(), releases=(), line_branch=v.line.branch(), line_branch_ref="", line_branch_sha="",
        head_on_line_branch=False, previous=None, commits=(Commit(HEAD, "initial", "Ada"),),
    )
    values.update(changes)
    return ReleaseState(**values)


def decide(s: ReleaseState, allow_empty=False):
    return check_release(s, main_branch="main", tag_prefix="v", allow_empty=allow_empty,
                         repository="reg.example/app", note="")


def refusal(s: ReleaseState, allow_empty=False) -> str:
    with pytest.raises(Refused) as info:
        decide(s, allow_empty)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_first_release_opens_its_line():
    d = decide(state())
    assert d.tag == "v1.0.0" and d.create_branch == "release-v1.0" and d.commit == HEAD
    assert d.image_tags == ("reg.example/app:1.0.0",)
    assert "* initial (aaaaaaa, Ada)" in d.message and d.message.startswith("Release 1.0.0")


def test_refuses_dirty_tree_listing_files():
    message = refusal(state(dirty_files=("app/views.py", "new.txt")))
    assert "app/views.py, new.txt" in message and "commit" in message


def test_refuses_existing_tags():
    assert "already exists" in refusal(state(local_tags=frozenset({"v1.0.0"})))
    assert "on the remote" in refusal(state(remote_tags=frozenset({"v1.0.0"})))


def test_minor_release_only_from_main():
    assert "must be made from 'main'" in refusal(state("1.1.0", current_branch="feature"))
    assert "detached HEAD" in refusal(state("1.1.0", current_branch=""))


def test_patch_release_needs_its_branch_and_the_commit_on_it():
    assert "does not exist" in refusal(state("1.0.1", current_branch="release-v1.0"))
    message = refusal(state("1.0.1", line_branch_ref="refs/heads/release-v1.0", line_branch_sha=OTHER,
                            head_on_line_branch=False))
    assert "not on release-v1.0" in message
    d = decide(state("1.0.1", current_branch="release-v1.0", line_branch_ref="refs/heads/release-v1.0",
                     line_branch_sha=HEAD, head_on_line_branch=True, releases=(V("1.0.0"),), previous=V("1.0.0")))
    assert d.create_branch == "" and "since 1.0.0" in d.message


def test_patch_from_main_behind_the_line_names_the_branch_not_empty_history():
    # main is at v0.1.0 (reachable from release-v0.1, which went on to 0.1.1): nothing new since v0.1.0 on main,
    # but the real problem is that HEAD is not on the line
    message = refusal(state("0.1.2", current_branch="main", line_branch_ref="refs/heads/release-v0.1",
                            line_branch_sha=OTHER, head_on_line_branch=True, releases=(V("0.1.0"), V("0.1.1")),
                            previous=V("0.1.0"), commits=()))
    assert message.startswith(f"the current commit {HEAD[:7]} (main) is not on release-v0.1, whose line is at 0.1.1")
    assert "git switch release-v0.1" in message and "no new commits" not in message


def test_version_must_be_greater_than_the_last_of_its_line():
    on_branch = dict(current_branch="release-v1.0", line_branch_ref="refs/heads/release-v1.0", line_branch_sha=HEAD,
                     head_on_line_branch=True)
    assert "not greater than 1.0.3" in refusal(state("1.0.2", releases=(V("1.0.0"), V("1.0.3")), **on_branch))
    assert "not greater than 2.0.0" in refusal(state("1.5.0", releases=(V("2.0.0"),)))


def test_refuses_empty_release_unless_allowed():
    s = state("1.1.0", releases=(V("1.0.0"),), previous=V("1.0.0"), commits=())
    assert "no new commits since v1.0.0" in refusal(s) and "--allow-empty" in refusal(s)
    assert decide(s, allow_empty=True).tag == "v1.1.0"


def test_line_branch_existing_elsewhere_refuses_new_minor():
    message = refusal(state("1.1.0", line_branch_ref="refs/heads/release-v1.1", line_branch_sha=OTHER))
    assert "release-v1.1 already exists" in message


def test_prerelease_does_not_create_the_branch():
    assert decide(state("2.0.0-rc.1")).create_branch == ""


def test_plan_builds_before_tagging():
    calls = []

    class Actions:
        def build_image(self, decision): calls.append("build")
        def create_branch(self, name, commit): calls.append(f"branch {name}")
        def create_tag(self, name, commit, message): calls.append(f"tag {name}")
        def record(self, decision): calls.append("record")

    plan = release_plan(decide(state()))
    text = plan.render()
    assert "release-v1.0" in text and "v1.0.0" in text and "reg.example/app:1.0.0" in text
    run_plan(plan, {"release": Actions()}, stream=io.StringIO())
    assert calls == ["build", "branch release-v1.0", "tag v1.0.0", "record"]


# --- publish checks -----------------------------------------------------------------------------------------------


def pstate(**changes) -> PublishState:
    values = dict(
        version=V("1.0.0"), tag="v1.0.0", tag_commit=HEAD, tag_object="c" * 40, image_ref="r/app:1.0.0",
        image_id="sha256:" + "1" * 64, image_revision=HEAD, remote_image_id=None, remote_tag_object="",
        branch="release-v1.0", branch_sha=HEAD, remote_branch_sha="",
    )
    values.update(changes)
    return PublishState(**values)


def test_publish_pushes_what_is_missing():
    d = check_publish(pstate(), release_hint="inv release 1.0.0")
    assert d.push_image and d.git_refspecs == ("refs/tags/v1.0.0", "refs/heads/release-v1.0")


def test_publish_twice_pushes_nothing():
    d = check_publish(pstate(remote_image_id="sha256:" + "1" * 64, remote_tag_object="c" * 40,
                             remote_branch_sha=HEAD), release_hint="x")
    assert d.nothing_to_do


@pytest.mark.parametrize("changes, expected", [
    (dict(tag_commit=""), "there is no tag v1.0.0"),
    (dict(image_id=""), "not on this machine"),
    (dict(image_revision=OTHER), "was built from bbbbbbb"),
    (dict(remote_image_id="sha256:" + "9" * 64), "different image"),
    (dict(remote_tag_object="d" * 40), "differs from the local one"),
])
def test_publish_refusals(changes, expected):
    with pytest.raises(Refused) as info:
        check_publish(pstate(**changes), release_hint="inv release 1.0.0")
    assert expected in str(info.value)


def test_record_round_trip():
    record = ReleaseRecord(version="1.0.0", tag="v1.0.0", commit=HEAD, image_id="sha256:1", image_tags=("r:1.0.0",))
    assert ReleaseRecord.from_json(record.to_json()) == record
