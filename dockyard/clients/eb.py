"""The only place Elastic Beanstalk is called: typed results, our own errors.

:class:`EbClient` takes ready boto3 clients (from :func:`make_client`) and a ``sleep``; every call goes through
:class:`~dockyard.clients.aws.AwsApi` (botocore retries throttling, as for every client; every AWS error is one
:class:`~dockyard.errors.AwsError` line). The bundle bucket is its :class:`~dockyard.clients.s3.S3Client`,
``.s3``. ``calls`` counts the API calls of both (the benchmark reports it; a dry run proves it made no mutating one).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from ..errors import AwsError, Refused
from .aws import AwsApi, ExpectedError, aws_client, aws_session
from .s3 import S3Client

MUTATING = {"create_application_version", "update_environment", "swap_environment_cnames", "put_object",
            "upload_fileobj", "delete_object", "create_environment", "create_application"}
ENV_NAMESPACE = "aws:elasticbeanstalk:application:environment"
#: environment secrets (platforms released since 2025-03-26): OptionName the variable, Value the ARN of an SSM
#: parameter or a Secrets Manager secret, fetched by the instances (EB developer guide, "Fetching secrets and
#: parameters to Elastic Beanstalk environment variables")
SECRETS_NAMESPACE = "aws:elasticbeanstalk:application:environmentsecrets"


@dataclass(frozen=True)
class EnvironmentState:
    name: str
    id: str
    status: str  # Launching | Updating | Ready | Terminating | Terminated
    health: str  # Green | Yellow | Red | Grey
    health_status: str  # Ok | Warning | Degraded | Severe | Info | Pending | Unknown | NoData | Suspended
    version_label: str
    cname: str
    endpoint_url: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "EnvironmentState":
        return cls(name=data.get("EnvironmentName", ""), id=data.get("EnvironmentId", ""),
                   status=data.get("Status", ""), health=data.get("Health", ""),
                   health_status=data.get("HealthStatus", ""), version_label=data.get("VersionLabel", ""),
                   cname=data.get("CNAME", ""), endpoint_url=data.get("EndpointURL", ""))


@dataclass(frozen=True)
class AppVersion:
    label: str
    bucket: str
    key: str
    status: str
    description: str
    created: datetime | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "AppVersion":
        bundle = data.get("SourceBundle") or {}
        return cls(label=data.get("VersionLabel", ""), bucket=bundle.get("S3Bucket", ""),
                   key=bundle.get("S3Key", ""), status=data.get("Status", ""),
                   description=data.get("Description", ""), created=data.get("DateCreated"))


@dataclass(frozen=True)
class Event:
    date: datetime
    severity: str
    message: str
    environment: str
    version_label: str
    request_id: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "Event":
        return cls(date=data.get("EventDate"), severity=data.get("Severity", "INFO"), message=data.get("Message", ""),
                   environment=data.get("EnvironmentName", ""), version_label=data.get("VersionLabel", ""),
                   request_id=data.get("RequestId", ""))

    def line(self) -> str:
        when = self.date.strftime("%H:%M:%S") if isinstance(self.date, datetime) else str(self.date)
        return f"{when} {self.severity:<5} {self.message}"


def make_client(settings: Any, eb_settings: Any, *, sleep: Callable[[float], None] = time.sleep) -> "EbClient":
    """An :class:`EbClient` from ``dockyard.aws`` (S3 and SSM) and ``dockyard.eb.endpoint_url`` (EB only)."""
    session = aws_session(settings)
    eb = aws_client(settings, "elasticbeanstalk", session, endpoint_url=eb_settings.endpoint_url)
    s3 = aws_client(settings, "s3", session)
    return EbClient(eb, s3, session=session, settings=settings, sleep=sleep)


class EbClient:
    def __init__(self, eb: Any, s3: Any, *, session: Any = None, settings: Any = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session
        self.settings = settings
        self.sleep = sleep
        self.calls: Counter[str] = Counter()
        self.api = AwsApi(eb, service="elasticbeanstalk", calls=self.calls)
        self.s3 = S3Client(s3, calls=self.calls)

    @property
    def mutating_calls(self) -> int:
        return sum(n for op, n in self.calls.items() if op in MUTATING)

    # --- applications and environments -------------------------------------------------------------------------
    def require_application(self, application: str) -> None:
        found = self.api.call("describe_applications", f"application {application}",
                              ApplicationNames=[application])["Applications"]
        if not found:
            raise Refused(f"Elastic Beanstalk application {application!r} does not exist in this region: create it "
                          "or set dockyard.eb.application")

    def environment(self, application: str, name: str) -> EnvironmentState | None:
        found = self.api.call("describe_environments", f"environment {name}", ApplicationName=application,
                              EnvironmentNames=[name], IncludeDeleted=False)["Environments"]
        live = [e for e in found if e.get("Status") not in ("Terminated", "Terminating")]
        return EnvironmentState.from_api(live[0]) if live else None

    def require_environment(self, application: str, name: str) -> EnvironmentState:
        state = self.environment(application, name)
        if state is None:
            raise Refused(f"Elastic Beanstalk environment {name!r} does not exist in application {application!r}: "
                          "create it, or set dockyard.environments.<env>.eb.name")
        return state

    def health_causes(self, name: str) -> list[str] | None:
        """The causes of the environment's health (DescribeEnvironmentHealth); None without enhanced health."""
        try:
            answer = self.api.call("describe_environment_health", f"environment {name}",
                                   expected=("InvalidRequestException", "ElasticBeanstalkServiceException"),
                                   EnvironmentName=name, AttributeNames=["Causes", "Color", "HealthStatus"])
        except ExpectedError:
            return None
        return [str(cause) for cause in answer.get("Causes") or []]

    def update_environment(self, application: str, name: str, *, label: str = "",
                           option_settings: Sequence[dict[str, str]] | None = None,
                           options_to_remove: Sequence[dict[str, str]] | None = None) -> str:
        """Start an update; returns its request id (its events carry it)."""
        kwargs: dict[str, Any] = {"ApplicationName": application, "EnvironmentName": name}
        if label:
            kwargs["VersionLabel"] = label
        if option_settings:
            kwargs["OptionSettings"] = list(option_settings)
        if options_to_remove:
            kwargs["OptionsToRemove"] = list(options_to_remove)
        try:
            answer = self.api.call("update_environment", f"environment {name}", expected=("InvalidParameterValue",),
                                   **kwargs)
        except ExpectedError as exc:
            message = " ".join(exc.message.split())
            if "invalid state" in message.lower():
                raise Refused(f"environment {name} is busy ({message}); wait for it to be Ready") from None
            raise AwsError(f"elasticbeanstalk:UpdateEnvironment on environment {name} failed ({message}): check "
                           "the settings it came from") from None
        return str((answer.get("ResponseMetadata") or {}).get("RequestId", ""))

    def environment_variables(self, application: str, name: str, namespace: str = ENV_NAMESPACE) -> dict[str, str]:
        """The options of ``namespace`` (the environment properties; :data:`SECRETS_NAMESPACE`: the secrets)."""
        answer = self.api.call("describe_configuration_settings", f"environment {name}",
                               ApplicationName=application, EnvironmentName=name)
        out: dict[str, str] = {}
        for setting in (answer.get("ConfigurationSettings") or [{}])[0].get("OptionSettings") or []:
            if setting.get("Namespace") == namespace:
                out[setting["OptionName"]] = setting.get("Value", "")
        return out

    def swap_cnames(self, source: str, destination: str) -> None:
        self.api.call("swap_environment_cnames", f"environments {source} and {destination}",
                      SourceEnvironmentName=source, DestinationEnvironmentName=destination)

    # --- versions ---------------------------------------------------------------------------------------------
    def versions(self, application: str, labels: list[str] | None = None) -> list[AppVersion]:
        kwargs: dict[str, Any] = {"ApplicationName": application}
        if labels:
            kwargs["VersionLabels"] = labels
        found = self.api.call("describe_application_versions", f"application {application}", **kwargs)
        return [AppVersion.from_api(v) for v in found["ApplicationVersions"]]

    def version(self, application: str, label: str) -> AppVersion | None:
        found = self.versions(application, [label])
        return found[0] if found else None

    def create_version(self, application: str, label: str, *, bucket: str, key: str, description: str) -> None:
        self.api.call("create_application_version", f"version {label} of {application}",
                      ApplicationName=application, VersionLabel=label, Description=description[:200],
                      SourceBundle={"S3Bucket": bucket, "S3Key": key}, Process=False, AutoCreateApplication=False)

    # --- events -----------------------------------------------------------------------------------------------
    def events(self, application: str, environment: str, *, request_id: str = "",
               since: datetime | None = None, max_records: int = 100) -> list[Event]:
        """Events oldest first."""
        kwargs: dict[str, Any] = {"ApplicationName": application, "EnvironmentName": environment,
                                  "MaxRecords": max_records}
        if request_id:
            kwargs["RequestId"] = request_id
        if since is not None:
            kwargs["StartTime"] = since
        found = self.api.call("describe_events", f"environment {environment}", **kwargs)["Events"]
        # EB answers newest first; reversing (not sorting) keeps the order of events of the same millisecond.
        return [Event.from_api(e) for e in reversed(found)]

    # --- the bundle bucket ----------------------------------------------------------------------------------------
    def account(self) -> str:
        """The caller's AWS account id ("" when there is no session to ask, e.g. in unit tests)."""
        if self.session is None or self.settings is None:
            return ""
        sts = AwsApi(aws_client(self.settings, "sts", self.session), service="sts", calls=self.calls)
        return str(sts.call("get_caller_identity")["Account"])

    def require_bucket(self, bucket: str) -> None:
        """The bucket exists and belongs to the caller's account: bundles and the dockercfg never go elsewhere."""
        if not bucket:
            raise Refused("dockyard.eb.bucket is not set: name the S3 bucket that holds the bundles")
        account = self.account()
        state = self.s3.bucket_state(bucket, owner=account)
        if state == "missing":
            raise Refused(f"S3 bucket {bucket!r} does not exist: create it or fix dockyard.eb.bucket")
        if state == "denied":
            raise Refused(f"S3 bucket {bucket!r} is not ours (access denied"
                          + (f", or not owned by account {account}" if account else "")
                          + "): fix dockyard.eb.bucket")
        # ListBuckets names only the caller's own buckets. Without s3:ListAllMyBuckets (None) the
        # ExpectedBucketOwner above is the whole check (S3 enforces it; some S3 doubles ignore it, hence this one).
        if account and self.s3.lists_bucket(bucket) is False:
            raise Refused(f"S3 bucket {bucket!r} is not ours: it belongs to another account than {account}; "
                          "use a bucket of this account in dockyard.eb.bucket")

    def upload(self, bucket: str, key: str, data: bytes, *, sha256: str, content_type: str = "application/zip",
               progress: bool = True) -> None:
        """Upload a bundle or the dockercfg to the bucket (private, SSE); see :meth:`S3Client.upload`."""
        self.s3.upload(bucket, key, data, sha256=sha256, content_type=content_type, progress=progress)
