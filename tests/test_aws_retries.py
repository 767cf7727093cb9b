"""One retry policy for every boto3 client (issue 15): botocore's ``standard`` or ``adaptive`` mode, set once on the
session from ``dockyard.aws.retry_mode`` and ``max_attempts``.

moto never throttles, so a loopback proxy in front of moto server (tests/fixtures/throttle_proxy.py) answers the
first requests of one action with AWS's own throttling error for that protocol (EB: query ``Throttling``; ECS and
SSM: JSON ``ThrottlingException``; S3: ``503 SlowDown``), then forwards. Each call is made by dockyard's own typed
client, built the way the tasks build it (``aws_session`` from parsed settings).
"""
from __future__ import annotations

import pytest
from fixtures.throttle_proxy import throttling_proxy
from test_ecs_deploy import ecs  # noqa: F401 - the fixture

from dockyard.clients.aws import aws_client, aws_session
from dockyard.clients.eb import make_client
from dockyard.clients.ecs import EcsClient
from dockyard.clients.s3 import S3Client
from dockyard.clients.ssm import SsmClient
from dockyard.config import AwsBounds, defaults, parse_settings
from dockyard.errors import AwsError, ConfigError

BUCKET = "retries-bucket"
PARAMETER = "/shop/prod/GREETING"


@pytest.fixture(autouse=True)
def moto_credentials(monkeypatch):
    from fixtures.aws import FAKE_CREDENTIALS

    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def proxy(aws):
    """moto with one of each resource the calls read, behind the throttling proxy."""
    aws.client("elasticbeanstalk").create_application(ApplicationName="shop")
    ecs_api = aws.client("ecs")
    ecs_api.create_cluster(clusterName="shop")
    ecs_api.register_task_definition(family="shop", containerDefinitions=[
        {"name": "web", "image": "example.com/shop:1", "memory": 64}])
    ecs_api.create_service(cluster="shop", serviceName="shop-web", taskDefinition="shop", desiredCount=0)
    aws.client("ssm").put_parameter(Name=PARAMETER, Value="hello", Type="String")
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="state.json", Body=b"{}")
    with throttling_proxy(aws.endpoint) as throttling:
        yield throttling


def settings_through(proxy, *, max_attempts: int, retry_mode: str = "standard"):
    data = defaults()
    data["app"] = "shop"
    data["aws"].update(region="us-east-1", endpoint_url=proxy.endpoint, max_attempts=max_attempts,
                       retry_mode=retry_mode)
    return parse_settings(data)


# Each: the IAM action the proxy throttles, the code AWS throttles it with, and the call through dockyard's client.
CALLS = {
    "elasticbeanstalk:DescribeApplications": (
        "Throttling", lambda s: make_client(s, s.eb).require_application("shop")),
    "ecs:DescribeServices": (
        "ThrottlingException",
        lambda s: EcsClient(aws_session(s), endpoint_url=s.aws_endpoint_url).service("shop", "shop-web").name),
    "ssm:GetParameter": (
        "ThrottlingException", lambda s: SsmClient(aws_session(s), endpoint_url=s.aws_endpoint_url).get(PARAMETER)),
    "s3:GetObject": ("SlowDown", lambda s: S3Client(aws_client(s, "s3")).read(BUCKET, "state.json")),
}
ANSWERS = {"elasticbeanstalk:DescribeApplications": None, "ecs:DescribeServices": "shop-web",
           "ssm:GetParameter": "hello", "s3:GetObject": b"{}"}


@pytest.mark.parametrize("retry_mode", ["standard", "adaptive"])
@pytest.mark.parametrize("action", list(CALLS))
def test_a_throttled_call_succeeds_once_aws_stops_throttling_within_max_attempts(proxy, action, retry_mode):
    _, call = CALLS[action]
    proxy.throttle(action, 2)
    assert call(settings_through(proxy, max_attempts=3, retry_mode=retry_mode)) == ANSWERS[action]
    assert proxy.throttled[action] == 2 and proxy.forwarded[action] == 1


@pytest.mark.parametrize("action", list(CALLS))
def test_a_call_still_throttled_after_max_attempts_is_one_line_exit_8(proxy, action):
    code, call = CALLS[action]
    proxy.throttle(action, 10)
    with pytest.raises(AwsError) as throttled:
        call(settings_through(proxy, max_attempts=2))
    message = throttled.value.message
    assert throttled.value.exit_code == 8 and "\n" not in message
    assert message.startswith(f"{action} on "), message
    assert f"is still throttled ({code}) after 2 attempts (dockyard.aws.max_attempts, retry_mode standard): " \
           "retry later, raise dockyard.aws.max_attempts" in message, message
    assert proxy.throttled[action] == 2 and proxy.forwarded[action] == 0  # tried twice, never more


def test_every_client_of_a_session_has_the_retry_mode_and_attempts(proxy):
    settings = settings_through(proxy, max_attempts=4, retry_mode="adaptive")
    session = aws_session(settings)
    for service in ("s3", "ssm", "ecs", "ecr", "elasticbeanstalk", "sts"):
        retries = session.client(service, endpoint_url=proxy.endpoint).meta.config.retries
        assert retries == {"total_max_attempts": 4, "mode": "adaptive"}, (service, retries)


def test_retry_mode_is_a_declared_setting_and_unknown_modes_are_refused(sample_project):
    data = defaults()
    assert data["aws"]["retry_mode"] == "standard"
    data["app"] = "shop"
    assert parse_settings(data, root=sample_project.root).aws_bounds == AwsBounds(10.0, 60.0, 3, "standard")
    data["aws"]["retry_mode"] = "legacy"  # botocore's third mode: no throttling-aware retries, not offered
    with pytest.raises(ConfigError) as refused:
        parse_settings(data, root=sample_project.root)
    assert refused.value.message.startswith("dockyard.aws.retry_mode: expected one of 'standard', 'adaptive', got "
                                            "'legacy'"), refused.value.message
    sample_project.configure({"dockyard": {"aws": {"retry_mode": "fast"}}})
    bad = sample_project.inv("image.list")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1, bad.stderr
    assert lines[0].startswith("dockyard: dockyard.aws.retry_mode: expected one of 'standard', 'adaptive', got "
                               "'fast'") and "invoke.yaml" in lines[0], lines


def test_ecs_status_rides_out_throttling_and_stops_in_one_line_exit_8_when_it_lasts(ecs):  # noqa: F811
    with throttling_proxy(ecs.aws.endpoint) as proxy:
        env = {"INVOKE_DOCKYARD_AWS_ENDPOINT_URL": proxy.endpoint, "INVOKE_DOCKYARD_AWS_MAX_ATTEMPTS": "4"}
        proxy.throttle("ecs:DescribeServices", 3)
        ok = ecs.inv("ecs.status", env=env)
        assert ok.returncode == 0 and "shop/shop-web" in ok.stdout, ok.stdout + ok.stderr
        assert proxy.throttled["ecs:DescribeServices"] == 3
        proxy.throttle("ecs:DescribeServices", 10)
        failed = ecs.inv("ecs.status", env={**env, "INVOKE_DOCKYARD_AWS_MAX_ATTEMPTS": "2"})
    lines = failed.stderr.strip().splitlines()
    assert failed.returncode == 8 and len(lines) == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert lines[0].startswith("dockyard: ecs:DescribeServices on service shop/shop-web is still throttled "
                               "(ThrottlingException) after 2 attempts"), lines
