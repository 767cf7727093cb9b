"""The layout teams extend: a project's own `tasks/` beside dockyard's tasks, and its `templates/` over dockyard's.

The sample project shows both (`tasks/app.py`, `templates/eb/ebextensions/01-dockyard.config.j2`); a second,
smaller project written here proves any project gets them by the documented two lines of `tasks.py` alone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SampleProject, arguments_without_help, git, library_path
from fixtures.eb import tag_release
from invoke import Collection, task

SAMPLE_OVERRIDE = "templates/eb/ebextensions/01-dockyard.config.j2"
PROCESS = "aws:elasticbeanstalk:environment:process:default"


def bundle_file(project: SampleProject, out: Path, name: str = ".ebextensions/01-dockyard.config") -> str:
    made = project.inv("eb.bundle", "--output", str(out))
    assert made.returncode == 0, made.stdout + made.stderr
    with zipfile.ZipFile(out) as archive:
        return archive.read(name).decode()


# --- merging collections (no project needed) ------------------------------------------------------------------------


@task
def seed(c):
    """Seed."""


@task
def start(c):
    """Start."""


def test_a_project_collection_goes_beside_dockyards_and_merges_into_one_of_the_same_name():
    from dockyard.tasks.project_tasks import add_project_tasks

    ns = Collection(Collection("dev", start), Collection("image"))
    add_project_tasks(ns, [Collection("db", seed), Collection("dev", seed)])
    assert sorted(ns.task_names) == ["db.seed", "dev.seed", "dev.start"]


def test_a_project_task_dockyard_already_has_is_refused():
    from dockyard.errors import ConfigError
    from dockyard.tasks.project_tasks import add_project_tasks

    with pytest.raises(ConfigError, match="project task 'dev.start': dockyard already has"):
        add_project_tasks(Collection(Collection("dev", start)), [Collection("dev", start)])
    with pytest.raises(ConfigError, match="project task 'start': dockyard already has"):
        add_project_tasks(Collection(start), [Collection("start", seed)])  # a module named like a root task


def test_something_that_is_not_tasks_is_refused():
    from dockyard.errors import ConfigError
    from dockyard.tasks.project_tasks import project_collections

    with pytest.raises(ConfigError, match="is not a Collection, a module or a package"):
        project_collections([42])


# --- the sample project ---------------------------------------------------------------------------------------------


def test_list_shows_the_samples_own_tasks_beside_dockyards(sample_project):
    listing = sample_project.inv("--list", check=True).stdout
    for name in ("app.createsuperuser", "app.loaddata", "app.shell", "app.migrate", "dev.start", "deploy",
                 "staging.exec"):
        assert f"  {name} " in listing, name
    listed = json.loads(sample_project.inv("--list", "--list-format=json", check=True).stdout)
    app = next(c for c in listed["collections"] if c["name"] == "app")
    assert app["help"].startswith("The sample Django app's own tasks")  # the module docstring is its help


def test_the_project_tasks_import_nothing_heavy_at_list_time(sample_project):
    # What `inv --list` imports: Invoke's loader on tasks.py, then the modules loaded by then.
    script = ("import sys; from invoke.loader import FilesystemLoader; FilesystemLoader(start='.').load('tasks'); "
              "print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", script], cwd=sample_project.root, capture_output=True,
                                text=True, check=True, env={**os.environ, "PYTHONPATH": library_path()}).stdout.split())
    assert "tasks.app" in loaded
    assert {m.split(".")[0] for m in loaded} & {"boto3", "botocore", "fabric", "paramiko", "jinja2", "dotenv"} == set()


def test_the_samples_ebextensions_override_reaches_the_bundle_and_removing_it_restores_the_default(sample_project,
                                                                                                   tmp_path):
    sample_project.configure({"dockyard": {"eb": {"bucket": "bundle-only", "auth": "none"}}})
    tag_release(sample_project, "1.0.0")
    ours = yaml.safe_load(bundle_file(sample_project, tmp_path / "ours.zip"))["option_settings"]
    assert ours[PROCESS]["HealthCheckPath"] == "/health/"  # the load balancer checks the health endpoint
    assert ours["aws:elasticbeanstalk:command"]["DeploymentPolicy"] == "Rolling"
    assert ours["aws:elasticbeanstalk:cloudwatch:logs"]["StreamLogs"] is True

    (sample_project.root / SAMPLE_OVERRIDE).unlink()
    sample_project.commit("use dockyard's default ebextensions")
    text = bundle_file(sample_project, tmp_path / "default.zip")
    default = yaml.safe_load(text)["option_settings"]
    assert PROCESS not in default and "aws:elasticbeanstalk:cloudwatch:logs" not in default
    assert default["aws:elasticbeanstalk:command"]["DeploymentPolicy"] == "AllAtOnce"
    assert default["aws:elasticbeanstalk:application"]["Application Healthcheck URL"] == "/health/"
    assert "Rendered by dockyard for the prod environment" in text


def test_every_task_argument_has_help_including_the_projects_own(sample_project):
    from invoke.loader import FilesystemLoader

    before = set(sys.modules)
    try:
        module, _ = FilesystemLoader(start=str(sample_project.root)).load("tasks")
        ns = Collection.from_module(module)
    finally:
        for name in set(sys.modules) - before:
            if name == "tasks" or name.startswith("tasks."):
                del sys.modules[name]
        sys.path[:] = [p for p in sys.path if p != str(sample_project.root)]
    assert {"app.createsuperuser", "app.loaddata", "app.shell", "app.migrate"} <= set(ns.task_names)
    assert arguments_without_help(ns) == []


# --- a second project, written here --------------------------------------------------------------------------------


TEAM_TASKS_PY = '''\
"""A team's project on dockyard."""
from pathlib import Path

import dockyard

__path__ = [str(Path(__file__).with_name("tasks"))]
ns = dockyard.namespace(Path(__file__).parent, __name__)
'''

TEAM_DB_PY = '''\
"""The team's database tasks."""
from invoke import task


@task(help={"name": "what to call the backup"})
def backup(c, name="nightly"):
    """Back up the database (here: say what it would back up)."""
    print(f"backup {name} of {c.dockyard.app}")
'''

TEAM_EB_PY = '''\
"""The team's additions to the eb tasks."""
from invoke import task


@task
def smoke(c):
    """Smoke-test the live environment."""
    print("smoke ok")
'''


@pytest.fixture
def team_project(tmp_path) -> SampleProject:
    root = tmp_path / "team"
    (root / "tasks").mkdir(parents=True)
    (root / "tasks.py").write_text(TEAM_TASKS_PY)
    (root / "tasks" / "db.py").write_text(TEAM_DB_PY)
    (root / "tasks" / "eb.py").write_text(TEAM_EB_PY)
    (root / "tasks" / "_helpers.py").write_text("raise RuntimeError('a private module is never imported')\n")
    templates = root / "templates" / "eb" / "ebextensions"
    templates.mkdir(parents=True)
    (templates / "01-dockyard.config.j2").write_text(
        "option_settings:\n  aws:elasticbeanstalk:command:\n    DeploymentPolicy: Immutable  # {{ env.name }}\n")
    (templates / "02-team.config.j2").write_text("option_settings:\n  aws:elasticbeanstalk:xray:\n"
                                                 "    XRayEnabled: true\n")
    (root / "invoke.yaml").write_text(yaml.safe_dump({"dockyard": {
        "app": "team",
        "image": {"repository": "127.0.0.1:5000/team/web"},
        "eb": {"bucket": "bundle-only", "auth": "none", "platform": "v1"},
        "environments": {"prod": {"target": "eb"}},
    }}))
    project = SampleProject(root, "team")
    git(root, "init", "-q", "-b", "main")
    project.commit("initial")
    tag_release(project, "1.0.0")
    return project


def test_a_second_project_gets_its_tasks_and_templates_by_the_two_lines_alone(team_project, tmp_path):
    listing = team_project.inv("--list", check=True).stdout
    assert "  db.backup " in listing and "  eb.smoke " in listing  # beside dockyard's, and inside its eb
    assert "  eb.bundle " in listing and "  deploy " in listing
    assert "_helpers" not in listing
    ran = team_project.inv("db.backup", "--name", "weekly", check=True)
    assert ran.stdout.strip() == "backup weekly of team"  # a project task sees dockyard's settings

    ours = bundle_file(team_project, tmp_path / "team.zip")
    assert "DeploymentPolicy: Immutable  # prod" in ours
    assert "XRayEnabled" in bundle_file(team_project, tmp_path / "team.zip", ".ebextensions/02-team.config")


def test_a_project_task_named_like_one_of_dockyards_is_refused_in_one_line(team_project):
    (team_project.root / "tasks" / "eb.py").write_text(TEAM_EB_PY.replace("def smoke", "def bundle"))
    result = team_project.inv("--list")
    assert result.returncode == 2
    assert result.stderr.strip() == ("dockyard: project task 'eb.bundle': dockyard already has a task or collection "
                                     "of that name; rename the task (or its module)")


def test_tasks_py_is_the_invoke_entry_and_tasks_the_package_beside_it():
    listed = subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout
    assert "  app.shell " in listed
    assert not (REPO / "tasks" / "__init__.py").exists()  # tasks.py is the package's code: Invoke loads it
    assert textwrap.dedent(TEAM_TASKS_PY).splitlines()[-2:] == (REPO / "tasks.py").read_text().splitlines()[-2:]


# --- the pieces the sample's app tasks stand on -----------------------------------------------------------------------


def sample_app_tasks():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sample_app_tasks", REPO / "tasks" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_superuser_password_comes_from_the_variable_or_two_matching_prompts():
    from dockyard.errors import Refused

    app = sample_app_tasks()
    assert app.superuser_password({"DJANGO_SUPERUSER_PASSWORD": "from-env"}) == "from-env"
    answers = iter(["typed", "typed"])
    assert app.superuser_password({}, prompt=lambda _: next(answers)) == "typed"
    differ = iter(["one", "two"])
    with pytest.raises(Refused, match="empty or differ"):
        app.superuser_password({}, prompt=lambda _: next(differ))
    with pytest.raises(Refused, match="set DJANGO_SUPERUSER_PASSWORD"):
        app.superuser_password({"CI": "true"})


def test_an_environment_without_a_stack_or_ssh_hosts_has_no_app_container_to_run_in():
    from types import SimpleNamespace

    from dockyard.errors import Refused
    from dockyard.running import app_location

    assert app_location(SimpleNamespace(name="dev", compose=Path("c.yml"), target="")) == "local"
    assert app_location(SimpleNamespace(name="prod", compose=Path("c.yml"), target="eb")) == "local"
    assert app_location(SimpleNamespace(name="staging", compose=None, target="ssh")) == "ssh"
    with pytest.raises(Refused, match=r"prod has no app container .* its target \(eb\) has no exec path"):
        app_location(SimpleNamespace(name="prod", compose=None, target="eb"))


def test_an_app_task_on_an_eb_environment_without_a_stack_is_refused_in_one_line(sample_project):
    sample_project.configure({"dockyard": {"environments": {"prod": {"compose": "", "target": "eb"}}}})
    result = sample_project.inv("app.shell", "--env", "prod", "--command", "print(1)")
    assert result.returncode == 5
    assert result.stderr.strip().splitlines() == [
        ("dockyard: prod has no app container dockyard can run commands in: it has no compose file and its target "
         "(eb) has no exec path in dockyard; give it a compose file (dockyard.environments.prod.compose) or use "
         "another environment")]
