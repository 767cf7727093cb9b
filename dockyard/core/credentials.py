"""Registry credentials, gathered in one place for every command that needs them, with one masking policy.

Where the login comes from (``dockyard.registry``):

- ``kind: ecr``: a 12-hour token from ``ecr:GetAuthorizationToken``;
- ``kind: v2``: ``registry.username`` and its password, from the environment variable ``registry.password_env``,
  then the same variable in the env file the command names (the release environment's for ``publish``, the
  deployed environment's for a deploy), then a prompt — only on a terminal, never under ``CI=true``.

The masking policy: :func:`gather_credentials` registers the password (or token) with the command's masker before
it returns it, so nothing printed afterwards shows it, whichever path prints. The other values of the env file are
not credentials: they are masked by whatever loads that file for the app. The password itself only ever travels on
``docker login --password-stdin`` (:func:`dockyard.clients.docker.login_command`), in an HTTP header, or in a
dockercfg written to a private, encrypted object.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import DockyardError


class MissingPassword(DockyardError):
    """No password for the registry was found (and none could be asked for)."""

    exit_code = 2


@dataclass(frozen=True)
class RegistryCredentials:
    registry: str  # host[:port], e.g. 127.0.0.1:5000 or 123.dkr.ecr.us-east-1.amazonaws.com
    username: str
    password: str = field(repr=False)


def gather_credentials(
    settings: Any,
    *,
    mask: Any,
    env_file: Path | None = None,
    interactive: bool = False,
    session: Any = None,
) -> RegistryCredentials:
    """The registry login for a command; the password is masked (``mask.add``) before anything can print it.

    ``env_file`` is read only for ``registry.password_env``; ``interactive`` allows the prompt when stdin is a
    terminal (and ``CI`` is not ``true``).
    """
    from ..envfile import parse_env_file

    values = parse_env_file(env_file) if env_file is not None and env_file.is_file() else {}
    prompt = None
    if interactive and sys.stdin is not None and sys.stdin.isatty():
        import getpass

        prompt = getpass.getpass
    credentials = resolve_credentials(settings, env_values=values, prompt=prompt, session=session)
    mask.add(credentials.password)
    return credentials


def resolve_credentials(
    settings: Any,
    *,
    env_values: Mapping[str, str] = {},
    prompt: Callable[[str], str] | None = None,
    session: Any = None,
) -> RegistryCredentials:
    """The login for ``settings.registry``: an ECR token, or the v2 username and its password.

    The password comes from ``os.environ[password_env]``, then ``env_values[password_env]`` (an env file), then
    ``prompt`` — which is never called under ``CI=true``. Commands call :func:`gather_credentials`, which masks.
    """
    registry = settings.registry
    host = registry_address(registry.url)
    if registry.kind == "ecr":
        return ecr_credentials(settings, session=session, registry=host)
    variable = registry.password_env
    if not registry.username:
        raise MissingPassword(
            f"dockyard.registry.username is empty: set the user that logs in to {host} in invoke.yaml"
        )
    password = os.environ.get(variable, "") if variable else ""
    if not password and variable:
        password = env_values.get(variable, "")
    if not password and prompt is not None and os.environ.get("CI", "").lower() != "true":
        password = prompt(f"Password for {registry.username}@{host}: ")
    if not password:
        where = f"the environment variable {variable}" if variable else "dockyard.registry.password_env"
        raise MissingPassword(
            f"no password for {registry.username}@{host}: set {where} in your shell or the CI's secret store "
            "(not in the app's env file: that one is shipped to the containers)"
        )
    return RegistryCredentials(host, registry.username, password)


def ecr_credentials(settings: Any, *, session: Any = None, registry: str = "") -> RegistryCredentials:
    """A token from ``ecr:GetAuthorizationToken`` (region/profile/endpoint from ``dockyard.aws``)."""
    from ..clients.aws import aws_client
    from ..clients.ecr import EcrClient

    user, token, proxy = EcrClient(aws_client(settings, "ecr", session)).authorization()
    return RegistryCredentials(registry or registry_address(proxy), user or "AWS", token)


def registry_address(url: str) -> str:
    """``https://host:port/`` or ``host:port`` -> ``host:port`` (what ``docker login`` and image names use)."""
    import urllib.parse

    text = url.strip()
    if "://" in text:
        text = urllib.parse.urlsplit(text).netloc
    return text.rstrip("/")
