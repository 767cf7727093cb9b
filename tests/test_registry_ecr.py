"""Amazon ECR: a token from moto's GetAuthorizationToken, handed to a real `docker login` on stdin only."""
from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from dockyard.clients.docker import DockerClient
from dockyard.config import parse_settings
from dockyard.errors import Unreachable
from dockyard.core.credentials import resolve_credentials
from dockyard.registry import login
from dockyard.runner import Runner

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def ecr_settings(endpoint: str):
    return parse_settings({
        "app": "shop", "image": {"repository": f"{ECR_HOST}/shop"},
        "aws": {"region": "us-east-1", "endpoint_url": endpoint}, "environments": {"prod": {}},
    }, root=Path("/tmp"))


def test_ecr_kind_is_detected_from_the_repository(aws):
    settings = ecr_settings(aws.endpoint)
    assert settings.registry.kind == "ecr" and settings.registry.url == ECR_HOST


def test_ecr_credentials_come_from_get_authorization_token(aws):
    creds = resolve_credentials(ecr_settings(aws.endpoint), session=aws.session())
    data = aws.client("ecr").get_authorization_token()["authorizationData"][0]
    user, _, token = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert (creds.registry, creds.username, creds.password) == (ECR_HOST, user, token)
    assert user == "AWS" and token
    assert token not in repr(creds)


def stdin_recorder(folder: Path) -> tuple[Path, Path, Path]:
    """A `docker` wrapper logging argv and (separately) what login read on stdin, then running the real one."""
    real = next(Path(p) / "docker" for p in os.environ["PATH"].split(os.pathsep) if (Path(p) / "docker").is_file())
    folder.mkdir(parents=True, exist_ok=True)
    argv_log, stdin_log = folder / "argv.log", folder / "stdin.log"
    script = folder / "docker"
    script.write_text(f"""#!/bin/sh
printf '%s\\n' "$*" >> "{argv_log}"
case "$*" in *--password-stdin*) tee "{stdin_log}" | "{real}" "$@"; exit $? ;; esac
exec "{real}" "$@"
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder, argv_log, stdin_log


def test_ecr_login_shape_and_the_token_stays_off_argv_and_output(engine, aws, tmp_path, monkeypatch, capsys):
    folder, argv_log, stdin_log = stdin_recorder(tmp_path / "recorder")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    creds = resolve_credentials(ecr_settings(aws.endpoint), session=aws.session())
    runner = Runner(echo=True)
    # moto's registry host does not exist, so the real docker login fails; it must say so in one clear line.
    with pytest.raises(Unreachable) as info:
        login(DockerClient(runner), creds)
    assert ECR_HOST in str(info.value)
    assert argv_log.read_text().strip() == f"login --username AWS --password-stdin {ECR_HOST}"
    assert stdin_log.read_text().strip() == creds.password  # the token travelled on stdin
    captured = capsys.readouterr()
    for text in (str(info.value), captured.out, captured.err, argv_log.read_text()):
        assert creds.password not in text
