"""The sample's own tasks (`tasks/app.py`), end to end: real `inv` against the real Docker engine."""
from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.engine

CHECK_ADMIN = ("from django.contrib.auth.models import User; u = User.objects.get(username='boss'); "
               "print('superuser', u.is_superuser, u.email, u.check_password('{password}'))")
LIST_GROUPS = "from django.contrib.auth.models import Group; print('groups', sorted(g.name for g in Group.objects.all()))"


def test_migrate_createsuperuser_loaddata_and_shell_on_the_dev_stack(engine, sample_project):
    password = "correct-horse-battery-42"
    sample_project.inv("dev.start", check=True)

    migrated = sample_project.inv("app.migrate", check=True)
    assert "Applying auth.0001_initial... OK" in migrated.stdout

    created = sample_project.inv("app.createsuperuser", "--username", "boss", "--email", "boss@example.invalid",
                                 env={"DJANGO_SUPERUSER_PASSWORD": password}, check=True)
    assert "Superuser created successfully." in created.stdout
    assert password not in created.stdout + created.stderr  # not echoed, not on the command line shown
    assert "exec -T web sh -c" in created.stderr and "<<stdin" in created.stderr

    checked = sample_project.inv("app.shell", "--command", CHECK_ADMIN.format(password=password), check=True)
    assert "superuser True boss@example.invalid True" in checked.stdout

    loaded = sample_project.inv("app.loaddata", check=True)
    assert "Installed 2 object(s) from 1 fixture(s)" in loaded.stdout
    # The interactive shell, with its input piped: the same Django, in the running container.
    listed = sample_project.inv("app.shell", input=LIST_GROUPS + "\n")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "groups ['editors', 'viewers']" in listed.stdout

    missing = sample_project.inv("app.loaddata", "--fixture", "no-such-fixture")
    assert missing.returncode != 0 and "no-such-fixture" in missing.stderr + missing.stdout

    again = sample_project.inv("app.createsuperuser", "--username", "boss",
                               env={"DJANGO_SUPERUSER_PASSWORD": password})
    assert again.returncode == 1 and "That username is already taken" in again.stderr


def test_createsuperuser_without_a_password_or_terminal_is_refused_in_one_line(sample_project):
    result = sample_project.inv("app.createsuperuser", env={"DJANGO_SUPERUSER_PASSWORD": ""})
    assert result.returncode == 5
    assert result.stderr.strip().splitlines() == [
        ("dockyard: no password for the superuser: set DJANGO_SUPERUSER_PASSWORD (it reaches Django on stdin, never "
         "on a command line), or run the task in a terminal to be asked")]


def test_app_tasks_need_a_running_stack_and_name_the_command_that_starts_it(engine, sample_project):
    result = sample_project.inv("app.shell", "--command", "print(1)")
    assert result.returncode == 5
    assert "inv dev.start" in result.stderr and "Traceback" not in result.stderr
    unknown = sample_project.inv("app.migrate", "--env", "nowhere")
    assert unknown.returncode == 2 and "unknown environment 'nowhere'" in unknown.stderr


def test_app_tasks_run_on_the_prod_stack_too(engine, sample_project):
    sample_project.inv("prod.start", check=True)
    sample_project.inv("app.migrate", "--env", "prod", check=True)
    loaded = sample_project.inv("app.loaddata", "--env", "prod", check=True)  # the fixture is in the image
    assert "Installed 2 object(s)" in loaded.stdout
    web = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={sample_project.app}-prod",
                          "--filter", "label=com.docker.compose.service=web"], capture_output=True, text=True,
                         check=True).stdout
    listed = sample_project.inv("app.shell", "--env", "prod", "--command", LIST_GROUPS, check=True)
    assert web.strip() and "groups ['editors', 'viewers']" in listed.stdout
    sample_project.inv("prod.down", "--volumes", check=True)
