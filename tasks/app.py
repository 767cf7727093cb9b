"""The sample Django app's own tasks: migrations, a superuser, fixtures and a Django shell, in a running environment.

Each runs `python manage.py ...` in the environment's running app container: the local stack for an environment
with a compose file (`inv dev.start` first), the first host for an SSH target such as staging.
"""
from __future__ import annotations

from typing import Any

from invoke import task

from dockyard.tasks.common import edge

ENV_HELP = ("environment whose running app container it runs in (default: dev; an SSH target such as staging: its "
            "first host)")
PASSWORD_VARIABLE = "DJANGO_SUPERUSER_PASSWORD"
# The password arrives on stdin and becomes the variable Django's `createsuperuser --noinput` reads: it is never
# an argument of any command (ps, shell history, echoed commands).
CREATE_SUPERUSER = (f'IFS= read -r {PASSWORD_VARIABLE} && export {PASSWORD_VARIABLE} && '
                    'exec python manage.py createsuperuser --noinput --username "$1" --email "$2"')


def _run(c: Any, env: str, argv: list[str], *, stdin: str | None = None, interactive: bool = False) -> None:
    from invoke.exceptions import Exit

    from dockyard.running import AppCommand, run_in_app
    from dockyard.tasks.common import Project

    code = run_in_app(Project(c), env, AppCommand(tuple(argv), stdin=stdin, interactive=interactive))
    if code:
        raise Exit(code=code)


def superuser_password(environ: Any = None, prompt: Any = None) -> str:
    """From $DJANGO_SUPERUSER_PASSWORD, else asked twice in a terminal (never under CI=true)."""
    import os
    import sys

    from dockyard.errors import Refused

    environ = os.environ if environ is None else environ
    password = environ.get(PASSWORD_VARIABLE, "")
    if password:
        return password
    if prompt is None and environ.get("CI", "").lower() != "true" and sys.stdin.isatty():
        import getpass

        prompt = getpass.getpass
    if prompt is None:
        raise Refused(f"no password for the superuser: set {PASSWORD_VARIABLE} (it reaches Django on stdin, never "
                      "on a command line), or run the task in a terminal to be asked")
    password = prompt("Password: ")
    if not password or password != prompt("Password (again): "):
        raise Refused("the passwords were empty or differ; nothing was created")
    return password


@task(help={"env": ENV_HELP})
@edge
def migrate(c, env="dev"):
    """Apply the Django migrations (python manage.py migrate)."""
    _run(c, env, ["python", "manage.py", "migrate", "--noinput"])


@task(help={"env": ENV_HELP, "username": "the superuser's name (default: admin)",
            "email": "the superuser's e-mail address (default: <username>@localhost; Django requires one)"})
@edge
def createsuperuser(c, env="dev", username="admin", email=""):
    """Create a Django superuser; the password comes from $DJANGO_SUPERUSER_PASSWORD or a prompt, sent on stdin."""
    password = superuser_password()
    _run(c, env, ["sh", "-c", CREATE_SUPERUSER, "sh", username, email or f"{username}@localhost"],
         stdin=password + "\n")


@task(iterable=["fixture"], help={"env": ENV_HELP,
                                  "fixture": "a fixture to load, repeatable (default: groups, the sample's "
                                             "app/sample/fixtures/groups.json, shipped in the image)"})
@edge
def loaddata(c, env="dev", fixture=None):
    """Load Django fixtures into the environment's database (python manage.py loaddata)."""
    _run(c, env, ["python", "manage.py", "loaddata", *(fixture or ["groups"])])


@task(help={"env": ENV_HELP, "command": "Python code to run instead of an interactive shell (manage.py shell -c)"})
@edge
def shell(c, env="dev", command=""):
    """Open a Django shell (python manage.py shell) in the running app container."""
    _run(c, env, ["python", "manage.py", "shell", *(["--command", command] if command else [])],
         interactive=not command)
