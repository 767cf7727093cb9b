"""The planted-secret sweep (tests/secret_sweep.py) over real flows: no planted secret anywhere it must not be."""
from __future__ import annotations

import subprocess

from secret_sweep import ArgvPoller, FlowReport, Sweep, ecs_flow, publish_flow, staging_flow
from test_deploy_hooks import Webhook
from test_ecs_deploy import ecs  # noqa: F401 - the fixture
from test_release_flow import rig  # noqa: F401 - the fixture
from test_staging_e2e import staging, staging_images  # noqa: F401 - the fixtures


def test_the_grep_can_fail(tmp_path):
    """Control: a secret put in an argv, a file and an output is found in each."""
    sweep = Sweep()
    value = sweep.plant("control")
    report = FlowReport("control")
    (tmp_path / "left-behind").write_text(f"x {value} y")
    with ArgvPoller() as poller:
        result = subprocess.run(["sh", "-c", "sleep 0.3; echo done", "sh", value], capture_output=True, text=True)
    sweep.check_run(report, "control", result, poller)
    sweep.check_tree(report, tmp_path)
    assert {(leak.place, leak.secret) for leak in report.leaks} == {
        ("control: argv of every process", "control"), ("file left-behind", "control")}
    assert report.places == 4


def test_ecs_deploy_and_its_debug_output_leak_no_secret(ecs, tmp_path):  # noqa: F811
    sweep = Sweep()
    for debug in (False, True):
        report = ecs_flow(sweep, ecs, tmp_path, debug=debug)
        assert not report.notes, report.notes
        assert report.places >= 6
    assert sweep.leaks == []


def test_release_and_publish_leak_no_registry_password(rig, tmp_path):  # noqa: F811
    sweep = Sweep()
    report = publish_flow(sweep, rig, tmp_path)
    assert not report.notes, report.notes
    assert report.places >= 12
    assert sweep.leaks == []


def test_staging_deploys_leak_no_secret_to_the_host_the_webhook_or_any_output(staging, tmp_path):  # noqa: F811
    sweep = Sweep()
    with Webhook() as webhook:
        report = staging_flow(sweep, staging, webhook, tmp_path)
    assert not report.notes, report.notes
    assert report.places >= 20
    assert sweep.leaks == []
