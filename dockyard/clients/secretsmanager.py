"""AWS Secrets Manager: read a secret's current version, write a new version under a version id chosen beforehand.

A deploy pins each secret by version id (``<arn>:::<version-id>`` in an ECS ``valueFrom``), so the version id of
a value not written yet is chosen when the deploy is planned and given as ``ClientRequestToken``: Secrets Manager
makes the token the new version's ``VersionId`` (see the CreateSecret and PutSecretValue API references).
Values are never logged: the client's calls carry them only as parameters.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .aws import SessionClient

#: an ECS ``valueFrom`` for a secret of Secrets Manager: ``arn:…:secret:NAME-XXXXXX:json-key:version-stage:version-id``
#: (json-key and stage left empty: the whole string, that exact version)
PINNED = "{arn}:::{version}"


@dataclass(frozen=True)
class StoredSecret:
    arn: str
    version_id: str
    value: str = field(repr=False)


def pinned(arn: str, version_id: str) -> str:
    return PINNED.format(arn=arn, version=version_id)


def split_pinned(value_from: str) -> tuple[str, str]:
    """``(arn, version-id)`` of a pinned ``valueFrom`` (``("", "")`` when it is not one)."""
    if ":secret:" not in value_from:
        return "", ""
    head, sep, version = value_from.rpartition(":::")
    return (head, version) if sep and version else ("", "")


class SecretsManagerClient(SessionClient):
    """Secrets Manager calls with dockyard's errors. Takes a boto3 session (and endpoint); opens nothing until used."""

    service = "secretsmanager"

    def current(self, name: str) -> StoredSecret | None:
        """The secret's ARN, current version id and value; ``None`` when there is no secret of that name."""
        from .aws import ExpectedError

        try:
            answer = self.api.call("get_secret_value", name, expected=("ResourceNotFoundException",), SecretId=name)
        except ExpectedError:
            return None
        return StoredSecret(answer["ARN"], answer["VersionId"], answer.get("SecretString", ""))

    def value(self, arn: str, version_id: str) -> str:
        """One version's value (what a task pinned to it gets)."""
        return self.api.call("get_secret_value", arn, SecretId=arn, VersionId=version_id).get("SecretString", "")

    def write(self, *, name: str, value: str, version_id: str, exists: bool,
              description: str = "written by dockyard (ecs.secret_keys)") -> str:
        """Store ``value`` as version ``version_id`` (a new secret when it does not exist); the secret's ARN."""
        if exists:
            answer = self.api.call("put_secret_value", name, SecretId=name, SecretString=value, ClientRequestToken=version_id)
        else:
            answer = self.api.call("create_secret", name, Name=name, SecretString=value, ClientRequestToken=version_id,
                                   Description=description)
        return answer["ARN"]
