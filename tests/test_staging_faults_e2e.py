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
