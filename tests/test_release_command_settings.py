"""environments.<env>.release_command: parsed once, refused when it is not a command line."""
from __future__ import annotations

import pytest

from dockyard.config import parse_settings
from dockyard.core.release_command import ReleaseCommandFailed, release_command_of
from dockyard.errors import ConfigError


def settings(**prod):
    return parse_settings({"app": "shop", "environments": {"prod": prod}})


def test_release_command_is_split_like_a_shell_and_has_a_timeout():
    env = settings(release_command="python manage.py migrate --noinput", release_command_timeout=120).environment("prod")
    command = release_command_of(env)
    assert command.argv == ("python", "manage.py", "migrate", "--noinput")
    assert command.timeout == 120


def test_no_release_command_by_default():
    assert release_command_of(settings().environment("prod")) is None


def test_unbalanced_quote_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"environments\.prod\.release_command.*shell-style"):
        settings(release_command="sh -c 'echo")


def test_failure_shows_the_last_lines_and_exits_10():
    command = release_command_of(settings(release_command="migrate").environment("prod"))
    error = ReleaseCommandFailed(command, "exited 3", "\n".join(f"line {n}" for n in range(40)), serving="1.2.3")
    assert error.exit_code == 10
    assert error.message.splitlines()[0] == "release command 'migrate' exited 3; 1.2.3 still serves"
    assert error.message.splitlines()[-1] == "  | line 39" and len(error.message.splitlines()) == 21
