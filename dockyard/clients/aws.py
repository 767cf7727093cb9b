"""boto3 sessions and clients from the project's settings (profile, region, endpoint_url).

boto3 is imported only when a session is made, so tasks that never talk to AWS do not pay for it. Callers
pass the session to the typed client they need; no client here does network work when it is created.
"""
from __future__ import annotations

from typing import Any

from ..errors import DockyardError


class AwsError(DockyardError):
    """An AWS call failed (its code and message are in the text)."""

    exit_code = 8


class NoCredentials(AwsError):
    exit_code = 8


def aws_session(settings: Any) -> Any:
    """A boto3 Session from ``dockyard.aws`` (profile/region), falling back to the standard AWS settings."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=settings.aws_profile or None, region_name=settings.aws_region or None)
    except ProfileNotFound:
        raise AwsError(f"dockyard.aws.profile: AWS profile {settings.aws_profile!r} not found in ~/.aws/config") from None


def aws_client(settings: Any, service: str, session: Any | None = None, *, endpoint_url: str = "") -> Any:
    """A boto3 client honouring ``dockyard.aws.endpoint_url`` (moto, LocalStack, a VPC endpoint).

    ``endpoint_url`` overrides it for this one service (e.g. ``dockyard.eb.endpoint_url``).
    """
    session = session or aws_session(settings)
    if session.get_credentials() is None:
        raise NoCredentials(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or dockyard.aws.profile"
        )
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
