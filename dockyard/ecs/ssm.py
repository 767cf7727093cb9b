"""The only place SSM Parameter Store is called: a typed client for the lock, audit records and task secrets."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from ..clients.aws import AwsError, describe_error, error_code


class ParameterExists(Exception):
    """``put_parameter(..., Overwrite=False)`` found the name taken (the atomic test-and-set the lock relies on)."""


def parameter_arn(name: str, *, region: str, account: str) -> str:
    """``/shop/prod/KEY`` -> ``arn:aws:ssm:<region>:<account>:parameter/shop/prod/KEY`` (partition from the region)."""
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


class SsmClient:
    """SSM calls with dockyard's errors. Takes a boto3 session (and endpoint); opens nothing until first used."""

    def __init__(self, session: Any, *, endpoint_url: str = "") -> None:
        self.session = session
        self.endpoint_url = endpoint_url or None
        self._ssm: Any = None

    @property
    def ssm(self) -> Any:
        if self._ssm is None:
            self._ssm = self.session.client("ssm", endpoint_url=self.endpoint_url)
        return self._ssm

    def _call(self, what: str, func: Callable[..., Any], service: str = "SSM", **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return func(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "ParameterAlreadyExists":
                raise ParameterExists(kwargs.get("Name", "")) from None
            raise AwsError(f"{service} {what} failed ({describe_error(exc)})") from None
        except BotoCoreError as exc:
            raise AwsError(f"{service} {what} failed ({exc}); check dockyard.aws (region, endpoint_url)") from None

    def create(self, name: str, value: str, *, description: str = "") -> None:
        """Create a String parameter; :class:`ParameterExists` if the name is taken (never overwrites)."""
        kwargs: dict[str, Any] = {"Name": name, "Value": value, "Type": "String", "Overwrite": False}
        if description:
            kwargs["Description"] = description
        self._call("PutParameter", self.ssm.put_parameter, **kwargs)

    def get(self, name: str) -> str | None:
        """A parameter's value (decrypted), or None when it does not exist."""
        from botocore.exceptions import ClientError

        try:
            return self.ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                return None
            raise AwsError(f"SSM GetParameter failed ({describe_error(exc)})") from None

    def delete(self, name: str) -> bool:
        """Delete a parameter; False when it was already gone."""
        from botocore.exceptions import ClientError

        try:
            self.ssm.delete_parameter(Name=name)
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                return False
            raise AwsError(f"SSM DeleteParameter failed ({describe_error(exc)})") from None
        return True

    def values(self, names: Iterable[str]) -> dict[str, str]:
        """Decrypted values of those of ``names`` that exist."""
        names = list(names)
        out: dict[str, str] = {}
        for start in range(0, len(names), 10):  # GetParameters takes at most 10 names
            data = self._call("GetParameters", self.ssm.get_parameters, Names=names[start:start + 10],
                              WithDecryption=True)
            out.update({p["Name"]: p["Value"] for p in data.get("Parameters") or []})
        return out

    def put_secure(self, name: str, value: str, *, key_id: str = "") -> None:
        """Write (or overwrite) a SecureString parameter."""
        kwargs: dict[str, Any] = {"Name": name, "Value": value, "Type": "SecureString", "Overwrite": True}
        if key_id:
            kwargs["KeyId"] = key_id
        self._call("PutParameter", self.ssm.put_parameter, **kwargs)

    def by_path(self, path: str) -> dict[str, str]:
        """Every parameter under ``path`` (recursive): {name: value}."""
        out: dict[str, str] = {}
        token = None
        while True:
            kwargs: dict[str, Any] = {"Path": path, "Recursive": True, "WithDecryption": True, "MaxResults": 10}
            if token:
                kwargs["NextToken"] = token
            data = self._call("GetParametersByPath", self.ssm.get_parameters_by_path, **kwargs)
            out.update({p["Name"]: p["Value"] for p in data.get("Parameters") or []})
            token = data.get("NextToken")
            if not token:
                return out

    def account(self) -> str:
        """The caller's account id (for parameter ARNs)."""
        sts = self.session.client("sts", endpoint_url=self.endpoint_url)
        return self._call("GetCallerIdentity", sts.get_caller_identity, service="STS")["Account"]
