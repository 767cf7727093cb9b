"""Every network call has a bound (issue 11): AWS calls, `docker push`, remote commands over SSH.

A lost connection is exit 7 in one line, never a traceback, and never exit 0 when the audit record or the unlock
did not happen. AWS runs against moto in server mode behind a loopback TCP proxy the test freezes or shuts; the
registry is a real htpasswd docker-registry frozen with SIGSTOP, then killed.
"""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from fixtures.tcp_proxy import tcp_proxy

from dockyard.clients.aws import aws_session
from dockyard.clients.s3 import S3Client
from dockyard.config import AwsBounds
from dockyard.errors import AwsError, Unreachable

BUCKET = "bounds-bucket"


@pytest.fixture(autouse=True)
def moto_credentials(monkeypatch):
    from fixtures.aws import FAKE_CREDENTIALS

    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def bounded_session(aws, **bounds):
    """A session made the way every task makes one (``aws_session``), with the bounds of ``dockyard.aws``."""
    settings = SimpleNamespace(aws_profile="", aws_region="us-east-1", aws_bounds=AwsBounds(**bounds))
    return aws_session(settings)


def test_settings_declare_the_bounds_with_defaults(sample_project):
    from dockyard.config import defaults, parse_settings

    data = defaults()
    assert data["aws"]["connect_timeout"] == 10.0 and data["aws"]["read_timeout"] == 60.0
    assert data["aws"]["max_attempts"] == 3 and data["registry"]["stall_timeout"] == 120.0
    data["app"] = "shop"
    settings = parse_settings(data, root=sample_project.root)
    assert settings.aws_bounds == AwsBounds(10.0, 60.0, 3) and settings.registry.stall_timeout == 120.0
    bad = sample_project.inv("image.ls", env={"INVOKE_DOCKYARD_AWS_READ_TIMEOUT": "soon"})
    assert bad.returncode == 2 and "dockyard.aws.read_timeout" in bad.stderr, bad.stderr
    misspelt = sample_project.inv("image.ls", env={"INVOKE_DOCKYARD_REGISTRY_STALL_TIMEOUTS": "3"})
    assert misspelt.returncode == 2 and "INVOKE_DOCKYARD_REGISTRY_STALL_TIMEOUT" in misspelt.stderr


def test_every_client_of_a_session_has_the_configured_bounds(aws):
    session = bounded_session(aws, connect_timeout=3, read_timeout=4, max_attempts=2)
    for service in ("s3", "ssm", "ecs", "elasticbeanstalk"):
        config = session.client(service, endpoint_url=aws.endpoint).meta.config
        assert (config.connect_timeout, config.read_timeout) == (3, 4)
        assert config.retries["total_max_attempts"] == 2


def test_an_endpoint_that_stalls_is_one_line_exit_7_within_the_bound(aws):
    aws.client("s3").create_bucket(Bucket=BUCKET)
    session = bounded_session(aws, read_timeout=1, max_attempts=2)
    with tcp_proxy(aws.endpoint) as proxy:
        s3 = S3Client(session.client("s3", endpoint_url=proxy.endpoint))
        s3.write(BUCKET, "before", b"{}")  # it answers through the proxy
        proxy.freeze()
        started = time.monotonic()
        with pytest.raises(Unreachable) as stalled:
            s3.write(BUCKET, "during", b"{}")
        took = time.monotonic() - started
    assert took < 15, took  # two attempts of one second each, and botocore's short backoff
    message = stalled.value.message
    assert stalled.value.exit_code == 7 and isinstance(stalled.value, AwsError)
    assert message.startswith(f"s3:PutObject on s3://{BUCKET}/during: {proxy.endpoint} stopped answering (no data "
                              "for 1s, 2 attempts; dockyard.aws.read_timeout): whether the call took effect is "
                              "unknown"), message
    assert "\n" not in message


def test_an_endpoint_that_is_gone_or_drops_the_connection_is_one_line_exit_7(aws):
    aws.client("s3").create_bucket(Bucket=BUCKET)
    session = bounded_session(aws, connect_timeout=2, read_timeout=5, max_attempts=1)
    with tcp_proxy(aws.endpoint) as proxy:
        s3 = S3Client(session.client("s3", endpoint_url=proxy.endpoint))
        s3.write(BUCKET, "before", b"{}")
        proxy.reset()
        with pytest.raises(Unreachable) as dropped:
            s3.read(BUCKET, "before")
        proxy.shut()
        time.sleep(0.3)
        with pytest.raises(Unreachable) as gone:
            s3.read(BUCKET, "before")
    assert dropped.value.exit_code == 7
    assert dropped.value.message.startswith(f"s3:GetObject on s3://{BUCKET}/before: ")
    assert "closed the connection" in dropped.value.message or "connection to" in dropped.value.message, \
        dropped.value.message
    assert gone.value.exit_code == 7
    assert gone.value.message.startswith(f"s3:GetObject on s3://{BUCKET}/before: cannot reach {proxy.endpoint}")
