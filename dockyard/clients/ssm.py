"""The only place SSM Parameter Store is called: the deploy lock, audit records, task and EB secrets."""
from __future__ import annotations

from typing import Any, Iterable

from .aws import AwsApi, ExpectedError, SessionClient


class ParameterExists(Exception):
    """``put_parameter(..., Overwrite=False)`` found the name taken (the atomic test-and-set the lock relies on)."""


def parameter_arn(name: str, *, region: str, account: str) -> str:
    """``/shop/prod/KEY`` -> ``arn:aws:ssm:<region>:<account>:parameter/shop/prod/KEY`` (partition from the region)."""
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def parameter_name(*parts: str) -> str:
    """``/part/part/...`` with only the characters SSM allows in names (``a-zA-Z0-9_.-/``)."""
    segments = [seg for part in parts for seg in part.split("/") if seg]
    return "/" + "/".join("".join(ch if ch.isalnum() or ch in "_.-" else "." for ch in seg) for seg in segments)


class SsmClient(SessionClient):
    """SSM calls with dockyard's errors. Takes a boto3 session (and endpoint); opens nothing until first used."""

    service = "ssm"

    def create(self, name: str, value: str, *, description: str = "") -> None:
        """Create a String parameter; :class:`ParameterExists` if the name is taken (never overwrites)."""
        kwargs: dict[str, Any] = {"Name": name, "Value": value, "Type": "String", "Overwrite": False}
        if description:
            kwargs["Description"] = description
        try:
            self.api.call("put_parameter", name, expected=("ParameterAlreadyExists",), **kwargs)
        except ExpectedError:
            raise ParameterExists(name) from None

    def get(self, name: str) -> str | None:
        """A parameter's value (decrypted), or None when it does not exist."""
        try:
            return self.api.call("get_parameter", name, expected=("ParameterNotFound",), Name=name,
                                 WithDecryption=True)["Parameter"]["Value"]
        except ExpectedError:
            return None

    def get_versioned(self, name: str) -> tuple[str, int] | None:
        """A String parameter's value and version, or None when it does not exist."""
        try:
            found = self.api.call("get_parameter", name, expected=("ParameterNotFound",), Name=name)["Parameter"]
        except ExpectedError:
            return None
        return found["Value"], int(found.get("Version") or 0)

    def overwrite(self, name: str, value: str) -> int:
        """Overwrite a String parameter (``Overwrite=True``); returns the version it now has."""
        answer = self.api.call("put_parameter", name, Name=name, Value=value, Type="String", Overwrite=True)
        return int(answer.get("Version") or 0)

    def delete(self, name: str) -> bool:
        """Delete a parameter; False when it was already gone."""
        try:
            self.api.call("delete_parameter", name, expected=("ParameterNotFound",), Name=name)
        except ExpectedError:
            return False
        return True

    def values(self, names: Iterable[str]) -> dict[str, str]:
        """Decrypted values of those of ``names`` that exist."""
        names = list(names)
        out: dict[str, str] = {}
        for start in range(0, len(names), 10):  # GetParameters takes at most 10 names
            batch = names[start:start + 10]
            data = self.api.call("get_parameters", ", ".join(batch), Names=batch, WithDecryption=True)
            out.update({p["Name"]: p["Value"] for p in data.get("Parameters") or []})
        return out

    def put_secure(self, name: str, value: str, *, key_id: str = "") -> int:
        """Write (or overwrite) a SecureString parameter; returns the version it now has."""
        kwargs: dict[str, Any] = {"Name": name, "Value": value, "Type": "SecureString", "Overwrite": True}
        if key_id:
            kwargs["KeyId"] = key_id
        return int(self.api.call("put_parameter", name, **kwargs).get("Version") or 0)

    def secure_versioned(self, name: str, version: int = 0) -> tuple[str, int] | None:
        """A parameter's decrypted value and version (``version``: that version, through GetParameter's
        ``NAME:VERSION`` selector, else the latest), or None when it (or that version) does not exist."""
        selector = f"{name}:{version}" if version else name
        try:
            found = self.api.call("get_parameter", name, expected=("ParameterNotFound", "ParameterVersionNotFound"),
                                  Name=selector, WithDecryption=True)["Parameter"]
        except ExpectedError:
            return None
        return found["Value"], int(found.get("Version") or 0)

    def by_path(self, path: str) -> dict[str, str]:
        """Every parameter under ``path`` (recursive): {name: value}."""
        out: dict[str, str] = {}
        token = None
        while True:
            kwargs: dict[str, Any] = {"Path": path, "Recursive": True, "WithDecryption": True, "MaxResults": 10}
            if token:
                kwargs["NextToken"] = token
            data = self.api.call("get_parameters_by_path", path, **kwargs)
            out.update({p["Name"]: p["Value"] for p in data.get("Parameters") or []})
            token = data.get("NextToken")
            if not token:
                return out

    def account(self) -> str:
        """The caller's account id (for parameter ARNs)."""
        sts = AwsApi(self.session.client("sts", endpoint_url=self.endpoint_url), service="sts")
        return sts.call("get_caller_identity")["Account"]
