"""boto3 sessions and clients from the project's settings, and :class:`AwsApi`, the one way dockyard calls AWS.

boto3 is imported only when a session is made, so tasks that never talk to AWS do not pay for it. Callers
pass the session (or a boto3 client) to the typed client they need; no client here does network work when it is
created.

Every typed client (:mod:`.s3`, :mod:`.ssm`, :mod:`.eb`, :mod:`.ecs`, :mod:`.ecr`) calls boto3 only through
:meth:`AwsApi.call`, which turns every botocore error into one :class:`AwsError` line that names the call, the
resource and what to check (exit 8). Retrying is botocore's alone, the same for every client of a session
(:func:`bounded_config`: ``dockyard.aws.retry_mode`` and ``max_attempts``); dockyard's own wait loops (EB and ECS
waiters) poll on top of it, each with its own deadline.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable

from ..errors import AwsError, AwsUnreachable, NoCredentials

__all__ = ["AwsApi", "AwsError", "AwsUnreachable", "ExpectedError", "NoCredentials", "aws_client", "aws_session",
           "bounded_config", "describe_error", "error_code"]

# The throttling codes botocore's standard/adaptive modes retry (botocore/retries/standard.py), bar
# LimitExceededException, which some services also use for quotas: what an exhausted retry budget says.
THROTTLING = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
              "TooManyRequestsException", "RequestLimitExceeded", "RequestThrottled", "BandwidthLimitExceeded",
              "SlowDown", "ProvisionedThroughputExceededException", "PriorRequestNotComplete",
              "EC2ThrottledException"}
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
          "UnauthorizedException", "403", "Forbidden"}
BAD_CREDENTIALS = {"InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch", "UnrecognizedClientException",
                   "ExpiredToken", "ExpiredTokenException", "InvalidToken", "AuthFailure"}
NO_CREDENTIALS = ("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                  "or dockyard.aws.profile")
# Calls that only read: a lost answer changed nothing.
READING = ("describe_", "get_", "list_", "head_", "download_")
# Managed transfers are no API method; these are the API calls (and IAM actions) they make.
MANAGED = {"upload_fileobj": "PutObject", "download_fileobj": "GetObject"}
# What a denied call's identity lacks a permission on, by IAM service prefix ("it" for the others).
RESOURCE_WORDS = {"s3": "that bucket", "ssm": "that parameter", "ecs": "that cluster or service",
                  "elasticbeanstalk": "that application or environment"}


class ExpectedError(Exception):
    """An AWS answer the caller asked to handle itself (``expected=``): a missing key, a taken name..."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def bounded_config(bounds: Any) -> Any:
    """The botocore ``Config`` of every client dockyard makes: ``dockyard.aws.connect_timeout``, ``read_timeout``,
    ``max_attempts`` and ``retry_mode`` (botocore's own default waits 60 s per read and retries 5 times, forever in
    effect).

    botocore's ``standard`` mode retries throttling (``Throttling``, ``ThrottlingException``, ``SlowDown``...),
    transient 5xx answers and dropped connections with jittered exponential backoff; ``adaptive`` adds a client-side
    rate limiter that slows the client once AWS throttles it, which AWS recommends only for special cases
    (https://docs.aws.amazon.com/boto3/latest/guide/retries.html, and the SDK reference's "Retry behavior").
    ``total_max_attempts`` counts the first call too."""
    from botocore.config import Config

    return Config(connect_timeout=bounds.connect_timeout, read_timeout=bounds.read_timeout,
                  retries={"total_max_attempts": bounds.max_attempts,
                           "mode": getattr(bounds, "retry_mode", "standard")})


def aws_session(settings: Any) -> Any:
    """A boto3 Session from ``dockyard.aws`` (profile/region), falling back to the standard AWS settings.

    Every client made from it (here or by a typed client given the session) has the bounds of :func:`bounded_config`.
    """
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        session = boto3.Session(profile_name=settings.aws_profile or None, region_name=settings.aws_region or None)
    except ProfileNotFound:
        raise AwsError(f"dockyard.aws.profile: AWS profile {settings.aws_profile!r} not found in ~/.aws/config") from None
    bounds = getattr(settings, "aws_bounds", None)
    if bounds is not None:
        session._session.set_default_client_config(bounded_config(bounds))
    return session


def aws_client(settings: Any, service: str, session: Any | None = None, *, endpoint_url: str = "") -> Any:
    """A boto3 client honouring ``dockyard.aws.endpoint_url`` (moto, LocalStack, a VPC endpoint).

    ``endpoint_url`` overrides it for this one service (e.g. ``dockyard.eb.endpoint_url``).
    """
    session = session or aws_session(settings)
    if session.get_credentials() is None:
        raise NoCredentials(NO_CREDENTIALS)
    if not session.region_name:
        raise AwsError("no AWS region: set dockyard.aws.region or AWS_DEFAULT_REGION")
    return session.client(service, endpoint_url=endpoint_url or settings.aws_endpoint_url or None)


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code", ""))


def describe_error(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    err = response.get("Error") or {}
    if err:
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return str(exc)


class AwsApi:
    """One boto3 client and :meth:`call`, the single place its calls are made and their errors translated.

    ``calls`` counts the calls per operation (a dry run proves it made no mutating one; the benchmark reports
    them); clients of one deploy may share one counter.
    """

    def __init__(self, client: Any, *, service: str = "", calls: Counter[str] | None = None) -> None:
        self.client = client
        self.service = service or _signing_name(client)
        self.calls: Counter[str] = Counter() if calls is None else calls

    def action(self, operation: str) -> str:
        """The IAM action of a boto3 method: ``put_object`` -> ``s3:PutObject``."""
        mapping = getattr(getattr(self.client, "meta", None), "method_to_api_mapping", None) or {}
        api = MANAGED.get(operation) or mapping.get(operation) or "".join(p.capitalize() for p in operation.split("_"))
        return f"{self.service}:{api}" if self.service else api

    def call(self, operation: str, resource: str = "", *, expected: tuple[str, ...] = (), **kwargs: Any) -> Any:
        """``client.<operation>(**kwargs)``; an error code in ``expected`` is raised as :class:`ExpectedError`,
        anything else becomes one :class:`AwsError` line (botocore has already retried what it retries)."""
        return self.run(operation, resource, lambda: getattr(self.client, operation)(**kwargs), expected=expected)

    def run(self, operation: str, resource: str, func: Callable[[], Any], *,
            expected: tuple[str, ...] = ()) -> Any:
        """Like :meth:`call` for what is not one API method (a managed transfer such as ``upload_fileobj``)."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        self.calls[operation] += 1
        try:
            return func()
        except ClientError as exc:
            code = error_code(exc)
            if code in expected:
                raise ExpectedError(code, describe_error(exc)) from None
            raise self.failure(operation, resource, exc) from None
        except (BotoCoreError, Boto3Error) as exc:
            code = _code_in_text(str(exc))
            if code in expected:
                raise ExpectedError(code, str(exc)) from None
            raise self.failure(operation, resource, exc) from None

    def failure(self, operation: str, resource: str, exc: Exception) -> AwsError:
        """The one line an AWS failure becomes."""
        from botocore.exceptions import NoCredentialsError, NoRegionError, ParamValidationError

        action, on = self.action(operation), _on(resource)
        if isinstance(exc, NoCredentialsError):
            return NoCredentials(f"{action}{on}: {NO_CREDENTIALS}")
        lost = self.connection_lost(exc, reads_only=operation.startswith(READING))
        if lost:
            return AwsUnreachable(f"{action}{on}: {lost}")
        if isinstance(exc, NoRegionError):
            return AwsError(f"{action}{on}: no AWS region: set dockyard.aws.region or AWS_DEFAULT_REGION")
        if isinstance(exc, ParamValidationError):
            return AwsError(f"{action}{on}: invalid request ({_one_line(str(exc))}): check the settings it came from")
        code = error_code(exc) or _code_in_text(str(exc))
        if code in THROTTLING:
            return AwsError(f"{action}{on} is still throttled ({code}) after {_times(self.attempts())} "
                            f"(dockyard.aws.max_attempts, retry_mode {self.retry_mode()}): retry later, raise "
                            "dockyard.aws.max_attempts, or ask AWS for a higher API rate limit")
        if code in DENIED:
            what = RESOURCE_WORDS.get(self.service, "it") if resource else "the resource"
            return AwsError(f"{action}{on} was denied ({code}): the deploying identity needs {action} on {what}")
        if code in BAD_CREDENTIALS:
            return AwsError(f"{action}{on}: the AWS credentials were rejected ({code}): check AWS_PROFILE or "
                            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and the clock")
        said = _one_line(describe_error(exc))
        return AwsError(f"{action}{on} failed ({said}): check dockyard.aws (region, endpoint_url) and the resource")

    def _retries(self) -> dict[str, Any]:
        config = getattr(getattr(self.client, "meta", None), "config", None)
        return dict(getattr(config, "retries", None) or {})

    def attempts(self) -> int:
        """How often botocore tries one call, the first time included (``dockyard.aws.max_attempts``)."""
        retries = self._retries()
        if retries.get("total_max_attempts"):
            return int(retries["total_max_attempts"])
        return int(retries["max_attempts"]) + 1 if retries.get("max_attempts") is not None else 1

    def retry_mode(self) -> str:
        return str(self._retries().get("mode") or "legacy")

    def connection_lost(self, exc: Exception, *, reads_only: bool = False) -> str:
        """What went wrong with the connection itself ("" when an answer came): the endpoint, what happened, the
        bound that ended the wait and what to check."""
        from botocore.exceptions import (
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            HTTPClientError,
            ReadTimeoutError,
        )
        from botocore.exceptions import ConnectionError as TransportError

        config = getattr(getattr(self.client, "meta", None), "config", None)
        endpoint = _origin(getattr(exc, "kwargs", {}).get("endpoint_url") or _endpoint_of(self.client))
        attempts = self.attempts()
        tries = f", {attempts} attempts" if attempts > 1 else ""
        check = "check the network and dockyard.aws.endpoint_url/region, then run the task again"
        unknown = "it changed nothing" if reads_only else "whether the call took effect is unknown"
        if isinstance(exc, ConnectTimeoutError):
            seconds = _seconds(getattr(config, "connect_timeout", None))
            return f"no connection to {endpoint} (within {seconds}{tries}; dockyard.aws.connect_timeout): {check}"
        if isinstance(exc, ReadTimeoutError):
            seconds = _seconds(getattr(config, "read_timeout", None))
            return (f"{endpoint} stopped answering (no data for {seconds}{tries}; dockyard.aws.read_timeout): "
                    f"{unknown}; {check}")
        if isinstance(exc, ConnectionClosedError):
            return f"{endpoint} closed the connection before answering ({attempts} attempts): {unknown}; {check}" \
                if attempts > 1 else f"{endpoint} closed the connection before answering: {unknown}; {check}"
        if isinstance(exc, EndpointConnectionError):
            return (f"cannot reach {endpoint}{f' ({attempts} attempts)' if attempts > 1 else ''}: check "
                    "dockyard.aws.region and dockyard.aws.endpoint_url, and the network")
        if isinstance(exc, (HTTPClientError, TransportError)):  # any other transport failure: a reset, a proxy
            reason = _one_line(str(getattr(exc, "kwargs", {}).get("error", "") or exc))[:200]
            return f"the connection to {endpoint} failed ({reason}): {unknown}; {check}"
        return ""


def _origin(url: str) -> str:
    """``https://s3.eu-west-1.amazonaws.com/bucket/key`` -> ``https://s3.eu-west-1.amazonaws.com``."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else url


def _times(attempts: int) -> str:
    return "1 attempt" if attempts == 1 else f"{attempts} attempts"


def _seconds(value: Any) -> str:
    return f"{value:g}s" if isinstance(value, (int, float)) else "the configured time"


def _endpoint_of(client: Any) -> str:
    return str(getattr(getattr(client, "meta", None), "endpoint_url", "") or "AWS")


def _signing_name(client: Any) -> str:
    model = getattr(getattr(client, "meta", None), "service_model", None)
    return str(getattr(model, "signing_name", "") or "")


def _on(resource: str) -> str:
    return f" on {resource}" if resource else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _code_in_text(text: str) -> str:
    """The code in a message like ``An error occurred (AccessDenied) when calling ...`` (managed transfers)."""
    found = re.search(r"An error occurred \(([\w.]+)\)", text)
    return found.group(1) if found else ""


class SessionClient:
    """A service client over one boto3 session (and endpoint): its :class:`AwsApi` is made on first use."""

    service = ""  # the boto3 service name (``ssm``, ``secretsmanager``)

    def __init__(self, session: Any, *, endpoint_url: str = "", sleep: Callable[[float], None] | None = None) -> None:
        # ``sleep`` is accepted for the callers that pace polling; botocore's retry mode does the backing off now
        self.session = session
        self.endpoint_url = endpoint_url or None
        self.sleep = sleep
        self._api: AwsApi | None = None

    @property
    def api(self) -> AwsApi:
        if self._api is None:
            self._api = AwsApi(self.session.client(self.service, endpoint_url=self.endpoint_url), service=self.service)
        return self._api
