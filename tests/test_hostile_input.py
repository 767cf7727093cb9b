"""Issue 11's hostile input, through real `inv`: one line, the documented exit code, no traceback, nothing changed."""
from __future__ import annotations

import subprocess

import pytest
from conftest import REPO
from hostile_cases import CASES, run_case

#: An AWS endpoint nobody listens on: a case that reached AWS would end in exit 8, not in its own refusal.
OFFLINE = {"PYTHONPATH": str(REPO), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_one_line_and_changes_nothing(request, sample_project, case):
    if case.engine:
        request.getfixturevalue("engine")
    outcome = run_case(sample_project, case, OFFLINE)
    assert not outcome.traceback, outcome.lines
    assert len(outcome.lines) == 1, outcome.lines
    assert outcome.lines[0].startswith("dockyard: ") and case.fragment in outcome.lines[0], outcome.lines[0]
    assert outcome.code == case.code, outcome.lines
    assert outcome.changed == []


def test_prune_with_a_bad_keep_removes_no_image(engine, sample_project):
    repo = sample_project.repository
    tags = [f"{repo}:{sha}" for sha in ("aaaaaaa", "bbbbbbb", "ccccccc")]
    for tag in tags:
        subprocess.run(["docker", "tag", "dockyard-base/python:bookworm", tag], check=True)
    try:
        for keep in ("-1", "0", "abc"):
            result = sample_project.inv("image.prune", "--keep", keep, env={"PYTHONPATH": str(REPO)})
            assert result.returncode == 2, result.stderr
        listed = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repo],
                                capture_output=True, text=True, check=True).stdout.split()
        assert sorted(listed) == sorted(tags)
    finally:
        subprocess.run(["docker", "rmi", *tags], capture_output=True, check=False)


def test_typed_flags_reach_the_task_as_numbers_and_defaults_stay_the_tasks():
    from invoke import Context, Task
    from invoke.exceptions import Exit

    from dockyard.tasks.common import edge
    from dockyard.tasks.flags import Whole

    seen = {}

    @edge(count=Whole(minimum=1))
    def events(c, count=20, timeout=0, seconds=-1.0, name=""):
        seen.update(count=count, timeout=timeout, seconds=seconds, name=name)

    kinds = {a.name: a.kind for a in Task(events).get_arguments()}
    assert kinds == {"count": str, "timeout": str, "seconds": str, "name": str}  # Invoke casts nothing itself
    events(Context(), count="3", timeout="", seconds="2.5", name="x")
    assert seen == {"count": 3, "timeout": 0, "seconds": 2.5, "name": "x"}
    events(Context(), count="", timeout="", seconds="", name="")
    assert seen == {"count": 20, "timeout": 0, "seconds": -1.0, "name": ""}  # not typed: the task's own defaults
    with pytest.raises(Exit) as refused:
        events(Context(), count="0")
    assert refused.value.code == 2 and "--count: expected a whole number of at least 1" in refused.value.message
