"""One rule for commands, on a real image whose Dockerfile says ``ENTRYPOINT ["python3"]``.

``dev.run`` (a new container), ``dev.test`` (exec in the running one) and ``ci.test`` (``docker run``) all run the
command you give as written; ``command_entrypoint: apply`` hands it to the image's entrypoint everywhere instead.
"""
from __future__ import annotations

import pytest
from conftest import remove_test_artifacts
from minimal_app import make_minimal_project

pytestmark = pytest.mark.engine


@pytest.fixture
def python_entrypoint_project(engine, tmp_path):
    project = make_minimal_project(tmp_path / "project")
    yield project
    project.inv("dev.down")
    remove_test_artifacts(project.app)


def test_commands_run_as_written_whatever_the_entrypoint(python_entrypoint_project):
    project = python_entrypoint_project
    run = project.inv("dev.run", "python3 -c 'print(6 * 7)'", check=True)
    assert run.stdout.strip().splitlines()[-1] == "42"  # not "python3: can't open file '/srv/python3'"

    project.inv("dev.start", check=True)
    tested = project.inv("dev.test", "--cmd", "sh -c 'echo tested in $PWD'", check=True)
    assert "tested in /srv" in tested.stdout

    ci = project.inv("ci.test", check=True)  # no ci.* settings: the build comes from the compose file
    assert "42" in ci.stdout.splitlines()  # the dev test_command, run by sh, not by python3


def test_apply_hands_commands_to_the_entrypoint_everywhere(python_entrypoint_project):
    project = python_entrypoint_project
    project.configure({"dockyard": {"command_entrypoint": "apply"}})
    run = project.inv("dev.run", "--cmd=-c 'print(6 * 7)'", check=True)
    assert run.stdout.strip().splitlines()[-1] == "42"
    project.inv("dev.start", check=True)
    tested = project.inv("dev.test", "--cmd=-c 'import os; print(os.getcwd())'", check=True)
    assert tested.stdout.strip().splitlines()[-1] == "/srv"


def test_ci_builds_what_the_compose_file_builds(tmp_path):
    from minimal_app import COMPOSE, DOCKERFILE

    staged = DOCKERFILE.replace("FROM ${BASE_IMAGE}", "FROM ${BASE_IMAGE} AS runtime") + "FROM runtime AS debug\n"
    project = make_minimal_project(tmp_path / "staged", dockerfile=staged,
                                   compose=COMPOSE.replace("dockerfile: docker/Dockerfile",
                                                           "dockerfile: docker/Dockerfile\n      target: runtime"))
    planned = project.inv("ci.test", "--dry-run", check=True).stdout
    assert f"--file {project.root}/docker/Dockerfile" in planned and "--target runtime" in planned
    assert "APP_ENV" not in planned and "redis" not in planned and "mariadb" not in planned
    project.configure({"dockyard": {"ci": {"target": "debug"}}})
    assert "--target debug" in project.inv("ci.test", "--dry-run", check=True).stdout
