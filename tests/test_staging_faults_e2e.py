"""Staging deploys cut short at named steps, against real sshd (a fault-injecting ForceCommand wrapper), the real
registry and engine: after each fault and after a rerun, what serves, the lock, the audit record and `status` tell
the truth (the cases: :mod:`staging_fault_cases`; all of them: ``benchmarks/staging_faults.py``)."""
from __future__ import annotations

import pytest
from fixtures.faults import sshd_fault_host  # noqa: F401 - a fixture
from staging_fault_cases import CASES, QUICK, reset, served
from test_staging_e2e import StagingProject, staging_images  # noqa: F401 - a fixture


@pytest.fixture
def fault_staging(sample_project, sshd_fault_host, registry, staging_images):  # noqa: F811
    host, faults = sshd_fault_host
    staging = StagingProject(sample_project, [host], registry, staging_images)
    try:
        staging.inv("staging.setup", check=True)
        staging.inv("staging.ssh-deploy", "--version", "v1", check=True)
        assert served(staging.ports[0]) == "v1"
        yield staging, faults
    finally:
        faults.thaw(staging.state_dir())
        staging.cleanup()


@pytest.mark.timeout(1200)  # five cases, each a faulted deploy, checks, a rerun and a reset (~3 min when quiet)
def test_staging_survives_faults_at_each_named_step(fault_staging):
    from staging_fault_cases import run_case

    staging, faults = fault_staging
    failed = []
    for case in [c for c in CASES if c.name in QUICK]:
        outcome = run_case(staging, faults, case)
        print(f"{case.name}: {'survived' if outcome.survived else 'FAILED'} in {outcome.seconds:.1f}s")
        failed += [f"{case.name}: {p}" for p in outcome.problems]
    assert failed == []
    reset(staging)


def test_a_remote_command_that_hangs_past_ssh_command_timeout_is_one_line_exit_7(sample_project, sshd_fault_host,
                                                                                 registry, staging_images):  # noqa: F811
    """The staging tasks pass dockyard.ssh.command_timeout to their hosts (the client enforces it)."""
    import time

    host, faults = sshd_fault_host
    staging = StagingProject(sample_project, [host], registry, staging_images)
    try:
        staging.inv("staging.setup", check=True)
        staging.project.configure({"dockyard": {"ssh": {"command_timeout": 3}}})
        faults.arm({"match": r"docker (container )?(ls|ps)", "action": "hang", "seconds": 30})
        started = time.monotonic()
        status = staging.inv("staging.status")
        took = time.monotonic() - started
        assert status.returncode == 7, (status.stdout, status.stderr)
        lines = status.stderr.strip().splitlines()
        assert len(lines) == 1 and "did not finish within 3s" in lines[0] and "dockyard.ssh.command_timeout" in lines[0]
        assert took < 25, took
    finally:
        faults.disarm()
        staging.cleanup()
