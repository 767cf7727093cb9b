"""The only place ECR's registry login is asked for: a token from ``ecr:GetAuthorizationToken``."""
from __future__ import annotations

import base64
from typing import Any

from .aws import AwsApi


class EcrClient:
    """Takes a boto3 ECR client from the caller (``aws_client(settings, "ecr", session)``)."""

    def __init__(self, ecr: Any) -> None:
        self.api = AwsApi(ecr, service="ecr")

    def authorization(self) -> tuple[str, str, str]:
        """(user, token, proxy endpoint) for ``docker login``; the token is a password: never print it."""
        data = self.api.call("get_authorization_token", "the registry of this account")["authorizationData"][0]
        user, _, token = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        return user, token, data.get("proxyEndpoint", "")
