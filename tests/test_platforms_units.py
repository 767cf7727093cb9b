"""Multi-platform releases as values: build order, platform tags, the index check, the publish plan and refusals."""
from __future__ import annotations

import pytest

from dockyard.core.platforms import (
    IndexEntry, PlatformImage, build_order, fingerprint, index_problems, local_platform, parse_fingerprint,
    platform_tag,
)
from dockyard.core.versions import ReleaseVersion
from dockyard.errors import Refused
from dockyard.release import PublishState, check_publish, differences, publish_plan

AMD, ARM = "sha256:" + "a" * 64, "sha256:" + "b" * 64
COMMIT = "c" * 40


def test_platform_tags_and_the_order_builds_run_in():
    assert platform_tag("1.2.3-rc.1", "linux/arm64") == "1.2.3-rc.1-linux-arm64"
    assert platform_tag("1.2.3", "linux/arm/v7") == "1.2.3-linux-arm-v7"
    assert platform_tag("1.2.3", "linux/arm64/v8") == "1.2.3-linux-arm64"
    both = ("linux/amd64", "linux/arm64")
    assert build_order(both, "linux/amd64") == ("linux/arm64", "linux/amd64")  # the engine's own last
    assert build_order(both, "linux/arm64/v8") == ("linux/amd64", "linux/arm64")
    assert local_platform(both, "linux/s390x") == "linux/amd64"  # not listed: the first
    assert build_order((), "linux/amd64") == ()


def test_fingerprints_ignore_order_and_read_back():
    one = fingerprint({"linux/arm64": ARM, "linux/amd64": AMD})
    assert one == fingerprint({"linux/amd64": AMD, "linux/arm64/v8": ARM})
    assert parse_fingerprint(one) == {"linux/amd64": AMD, "linux/arm64": ARM}
    assert parse_fingerprint(AMD) == {}
    assert differences(fingerprint({"linux/amd64": AMD, "linux/arm64": AMD}), one) == \
        f"linux/arm64 holds {AMD[7:19]} there, {ARM[7:19]} here"
    assert differences(AMD, one).startswith("a single image")


BUILT = (PlatformImage("linux/amd64", "r:1.0.0-linux-amd64", AMD, COMMIT),
         PlatformImage("linux/arm64", "r:1.0.0-linux-arm64", ARM, COMMIT))


def test_index_problems_name_what_is_wrong_per_platform():
    right = [IndexEntry("linux/amd64", "sha256:m1", AMD, COMMIT), IndexEntry("linux/arm64/v8", "sha256:m2", ARM, COMMIT)]
    pushed = {"linux/amd64": "sha256:m1", "linux/arm64": "sha256:m2"}
    assert index_problems(right, BUILT, pushed=pushed, tag_commit=COMMIT) == []
    assert index_problems(right[:1], BUILT, pushed=pushed, tag_commit=COMMIT) == ["linux/arm64 is missing"]
    wrong = [right[0], IndexEntry("linux/arm64", "sha256:m9", ARM, COMMIT)]
    assert index_problems(wrong, BUILT, pushed=pushed, tag_commit=COMMIT) == \
        ["linux/arm64 points at m9, not the pushed m2"]
    other = [right[0], IndexEntry("linux/arm64", "sha256:m2", AMD, COMMIT)]
    assert "linux/arm64 holds image" in index_problems(other, BUILT, pushed={}, tag_commit=COMMIT)[0]
    stale = [right[0], IndexEntry("linux/arm64", "sha256:m2", ARM, "d" * 40)]
    assert index_problems(stale, BUILT, pushed={}, tag_commit=COMMIT) == ["linux/arm64 was built from ddddddd, not ccccccc"]
    extra = [*right, IndexEntry("linux/s390x", "sha256:m3", AMD, COMMIT)]
    assert index_problems(extra, BUILT, pushed={}, tag_commit=COMMIT) == ["linux/s390x is there but was not built"]
    twice = [*right, right[0]]
    assert index_problems(twice, BUILT, pushed={}, tag_commit=COMMIT) == ["linux/amd64 is there 2 times"]


def state(**changes) -> PublishState:
    base = dict(version=ReleaseVersion.parse("1.0.0"), tag="v1.0.0", tag_commit=COMMIT, tag_object="t" * 40,
                image_ref="r:1.0.0", image_id=fingerprint({"linux/amd64": AMD, "linux/arm64": ARM}),
                image_revision=COMMIT, remote_image_id=None, remote_tag_object="", branch="", branch_sha="",
                remote_branch_sha="", platform_images=BUILT)
    return PublishState(**{**base, **changes})


def test_publish_plan_pushes_each_platform_then_joins_and_checks_the_index():
    decision = check_publish(state(), release_hint="inv release 1.0.0")
    assert decision.push_image
    plan = publish_plan(decision, registry="r", remote="origin")
    calls = [(s.instruction.service, s.instruction.operation) for s in plan.steps]
    assert calls == [("publish", "login"), ("publish", "push_image"), ("publish", "push_image"), ("publish", "join"),
                     ("publish", "verify"), ("publish", "push_git"), ("publish", "record")]
    join = plan.steps[3]
    assert join.details == ("$ docker buildx imagetools create --tag r:1.0.0 r@<registry digest of "
                            "r:1.0.0-linux-amd64> r@<registry digest of r:1.0.0-linux-arm64>",)
    assert "exactly linux/amd64, linux/arm64" in plan.steps[4].description


def test_publish_refuses_a_changed_index_and_a_platform_image_that_is_missing_or_stale():
    changed = fingerprint({"linux/amd64": AMD, "linux/arm64": AMD})
    with pytest.raises(Refused, match=r"registry already has a different r:1\.0\.0 \(linux/arm64 holds aaaaaaaaaaaa "
                                      r"there, bbbbbbbbbbbb here\): a published version never changes"):
        check_publish(state(remote_image_id=changed), release_hint="inv release 1.0.0")
    done = check_publish(state(remote_image_id=state().image_id), release_hint="inv release 1.0.0")
    assert not done.push_image
    missing = (BUILT[0], PlatformImage("linux/arm64", "r:1.0.0-linux-arm64", "", ""))
    with pytest.raises(Refused, match=r"image r:1\.0\.0-linux-arm64 \(linux/arm64\) is not on this machine"):
        check_publish(state(platform_images=missing), release_hint="inv release 1.0.0")
    stale = (BUILT[0], PlatformImage("linux/arm64", "r:1.0.0-linux-arm64", ARM, "d" * 40))
    with pytest.raises(Refused, match=r"was built from ddddddd, not from tag v1\.0\.0"):
        check_publish(state(platform_images=stale), release_hint="inv release 1.0.0")
