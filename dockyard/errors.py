"""The one exception family dockyard raises; tasks turn it into ``invoke.Exit``."""
from __future__ import annotations


class DockyardError(Exception):
    """A failure the user can act on: the message says what is wrong and what to do.

    ``exit_code`` lets CI tell kinds of failure apart (refused, failed, unreachable...).
    """

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigError(DockyardError):
    """The project's settings are wrong (names the key and the file)."""

    exit_code = 2


class EnvFileError(DockyardError):
    """An environment file is missing or lacks keys."""

    exit_code = 2


class UnknownEnvironment(ConfigError):
    """An environment name that is not configured."""


class CommandFailed(DockyardError):
    """An external command (docker, git, ...) exited non-zero."""

    exit_code = 3


class EngineUnavailable(DockyardError):
    """The Docker engine cannot be reached."""

    exit_code = 4


class Refused(DockyardError):
    """A precondition does not hold; nothing was changed."""

    exit_code = 5


class HealthCheckFailed(DockyardError):
    """The app did not become healthy in time."""

    exit_code = 6


class Unreachable(DockyardError):
    """A remote host or service could not be reached."""

    exit_code = 7


class AwsError(DockyardError):
    """An AWS call failed: the text names the call, the resource and what to check."""

    exit_code = 8


class NoCredentials(AwsError):
    """No AWS credentials were found for an AWS call."""


class AwsUnreachable(Unreachable, AwsError):
    """An AWS endpoint could not be reached, stopped answering or dropped the connection (exit 7, a lost
    connection: no answer came, so nothing says whether the call took effect)."""


# --- deploy outcomes, the same codes for every target (Elastic Beanstalk, ECS, staging over SSH) ----------------


class LockHeld(Refused):
    """Another deploy holds the environment's lock."""

    exit_code = 9


class DeployFailed(DockyardError):
    """The platform reported the update failed and nothing was rolled back."""

    exit_code = 10


class RolledBack(DockyardError):
    """The update failed and the previous version is live again."""

    exit_code = 11


class DeployTimedOut(DockyardError):
    """The update did not finish before the deadline."""

    exit_code = 12
