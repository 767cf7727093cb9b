"""The only place Elastic Beanstalk and the bundle bucket are called: typed results, our own errors.

:class:`EbClient` takes ready boto3 clients (from :func:`make_client`) and a ``sleep``; throttling is retried with
jittered backoff, every other AWS error becomes an :class:`~dockyard.clients.aws.AwsError` saying what failed.
``calls`` counts the API calls made (the benchmark reports it; a dry run proves it made no mutating one).
"""
from __future__ import annotations

import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping

from ..clients.aws import AwsError, NoCredentials, aws_client, aws_session, describe_error, error_code
from ..errors import DockyardError, Refused, Unreachable

THROTTLING = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
              "SlowDown"}
MUTATING = {"create_application_version", "update_environment", "swap_environment_cnames", "put_object",
            "upload_fileobj", "delete_object", "create_environment", "create_application"}
ENV_NAMESPACE = "aws:elasticbeanstalk:application:environment"


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
                 sleep: Callable[[float], None] = time.sleep, attempts: int = 6) -> None:
        self.eb = eb
        self.s3 = s3
        self.session = session
        self.settings = settings
        self.sleep = sleep
        self.attempts = attempts
        self.calls: Counter[str] = Counter()

    # --- plumbing ---------------------------------------------------------------------------------------------
    def _call(self, client: Any, operation: str, what: str, *, quiet: tuple[str, ...] = (), **kwargs: Any) -> Any:
        """Call ``client.<operation>``; codes in ``quiet`` are re-raised as-is for the caller to handle."""
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        delay = 0.5
        for attempt in range(self.attempts):
            self.calls[operation] += 1
            try:
                return getattr(client, operation)(**kwargs)
            except ClientError as exc:
                code = error_code(exc)
                if code in quiet:
                    raise
                if code in THROTTLING and attempt < self.attempts - 1:
                    self.sleep(delay * (0.5 + random.random()))  # jitter keeps parallel deploys apart
                    delay = min(delay * 2, 20)
                    continue
                raise AwsError(f"{what} failed: {describe_error(exc)}") from None
            except NoCredentialsError:
                raise NoCredentials("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                                    "AWS_SECRET_ACCESS_KEY, or dockyard.aws.profile") from None
            except EndpointConnectionError as exc:
                raise Unreachable(f"{what} failed: cannot reach {exc.kwargs.get('endpoint_url', 'AWS')}") from None
        raise AwsError(f"{what} failed: still throttled after {self.attempts} attempts")  # pragma: no cover

    @property
    def mutating_calls(self) -> int:
        return sum(n for op, n in self.calls.items() if op in MUTATING)

    # --- applications and environments -------------------------------------------------------------------------
    def require_application(self, application: str) -> None:
        found = self._call(self.eb, "describe_applications", "DescribeApplications",
                           ApplicationNames=[application])["Applications"]
        if not found:
            raise Refused(f"Elastic Beanstalk application {application!r} does not exist in this region: create it "
                          "or set dockyard.eb.application")

    def environment(self, application: str, name: str) -> EnvironmentState | None:
        found = self._call(self.eb, "describe_environments", "DescribeEnvironments", ApplicationName=application,
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
        from botocore.exceptions import ClientError

        try:
            answer = self._call(self.eb, "describe_environment_health", f"DescribeEnvironmentHealth of {name}",
                                quiet=("InvalidRequestException", "ElasticBeanstalkServiceException"),
                                EnvironmentName=name, AttributeNames=["Causes", "Color", "HealthStatus"])
        except ClientError:
            return None
        return [str(cause) for cause in answer.get("Causes") or []]

    def update_environment(self, application: str, name: str, *, label: str = "",
                           option_settings: list[dict[str, str]] | None = None,
                           options_to_remove: list[dict[str, str]] | None = None) -> str:
        """Start an update; returns its request id (its events carry it)."""
        kwargs: dict[str, Any] = {"ApplicationName": application, "EnvironmentName": name}
        if label:
            kwargs["VersionLabel"] = label
        if option_settings:
            kwargs["OptionSettings"] = option_settings
        if options_to_remove:
            kwargs["OptionsToRemove"] = options_to_remove
        try:
            answer = self._call(self.eb, "update_environment", f"UpdateEnvironment of {name}",
                                quiet=("InvalidParameterValue",), **kwargs)
        except Exception as exc:
            message = describe_error(exc)
            if "invalid state" in message.lower():
                raise Refused(f"environment {name} is busy ({message}); wait for it to be Ready") from None
            raise AwsError(f"UpdateEnvironment of {name} failed: {message}") from None
        return str((answer.get("ResponseMetadata") or {}).get("RequestId", ""))

    def environment_variables(self, application: str, name: str) -> dict[str, str]:
        answer = self._call(self.eb, "describe_configuration_settings", f"DescribeConfigurationSettings of {name}",
                            ApplicationName=application, EnvironmentName=name)
        out: dict[str, str] = {}
        for setting in (answer.get("ConfigurationSettings") or [{}])[0].get("OptionSettings") or []:
            if setting.get("Namespace") == ENV_NAMESPACE:
                out[setting["OptionName"]] = setting.get("Value", "")
        return out

    def swap_cnames(self, source: str, destination: str) -> None:
        self._call(self.eb, "swap_environment_cnames", f"SwapEnvironmentCNAMEs {source} <-> {destination}",
                   SourceEnvironmentName=source, DestinationEnvironmentName=destination)

    # --- versions ---------------------------------------------------------------------------------------------
    def versions(self, application: str, labels: list[str] | None = None) -> list[AppVersion]:
        kwargs: dict[str, Any] = {"ApplicationName": application}
        if labels:
            kwargs["VersionLabels"] = labels
        found = self._call(self.eb, "describe_application_versions", "DescribeApplicationVersions", **kwargs)
        return [AppVersion.from_api(v) for v in found["ApplicationVersions"]]

    def version(self, application: str, label: str) -> AppVersion | None:
        found = self.versions(application, [label])
        return found[0] if found else None

    def create_version(self, application: str, label: str, *, bucket: str, key: str, description: str) -> None:
        self._call(self.eb, "create_application_version", f"CreateApplicationVersion {label}",
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
        found = self._call(self.eb, "describe_events", "DescribeEvents", **kwargs)["Events"]
        # EB answers newest first; reversing (not sorting) keeps the order of events of the same millisecond.
        return [Event.from_api(e) for e in reversed(found)]

    # --- S3 -----------------------------------------------------------------------------------------------------
    def account(self) -> str:
        """The caller's AWS account id ("" when there is no session to ask, e.g. in unit tests)."""
        if self.session is None or self.settings is None:
            return ""
        sts = aws_client(self.settings, "sts", self.session)
        return str(self._call(sts, "get_caller_identity", "GetCallerIdentity")["Account"])

    def require_bucket(self, bucket: str) -> None:
        """The bucket exists and belongs to the caller's account: bundles and the dockercfg never go elsewhere."""
        if not bucket:
            raise Refused("dockyard.eb.bucket is not set: name the S3 bucket that holds the bundles")
        from botocore.exceptions import ClientError

        account = self.account()
        owner = {"ExpectedBucketOwner": account} if account else {}
        try:
            self._call(self.s3, "head_bucket", f"HeadBucket {bucket}", quiet=("404", "403", "NoSuchBucket"),
                       Bucket=bucket, **owner)
        except ClientError as exc:
            code = error_code(exc)
            if code in ("404", "NoSuchBucket"):
                raise Refused(f"S3 bucket {bucket!r} does not exist: create it or fix dockyard.eb.bucket") from None
            raise Refused(f"S3 bucket {bucket!r} is not ours (access denied"
                          + (f", or not owned by account {account}" if account else "")
                          + "): fix dockyard.eb.bucket") from None
        if account and not self._lists_bucket(bucket):
            raise Refused(f"S3 bucket {bucket!r} is not ours: it belongs to another account than {account}; "
                          "use a bucket of this account in dockyard.eb.bucket")

    def _lists_bucket(self, bucket: str) -> bool:
        """ListBuckets names only the caller's own buckets. Without s3:ListAllMyBuckets the ExpectedBucketOwner of
        the HeadBucket above is the whole check (S3 enforces it; some S3 doubles ignore it, hence this one)."""
        from botocore.exceptions import ClientError

        try:
            found = self._call(self.s3, "list_buckets", "ListBuckets", quiet=("AccessDenied", "403"), Prefix=bucket)
        except ClientError:
            return True
        return bucket in {b.get("Name") for b in found.get("Buckets") or []}

    def object_metadata(self, bucket: str, key: str) -> dict[str, str] | None:
        from botocore.exceptions import ClientError

        try:
            answer = self._call(self.s3, "head_object", f"HeadObject s3://{bucket}/{key}",
                                quiet=("404", "NoSuchKey", "403"), Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey"):
                return None
            raise AwsError(f"HeadObject s3://{bucket}/{key} failed: {describe_error(exc)}") from None
        return {**answer.get("Metadata", {}), "ETag": answer.get("ETag", "")}

    def upload(self, bucket: str, key: str, data: bytes, *, sha256: str, content_type: str = "application/zip",
               progress: bool = True) -> None:
        """Upload private and encrypted (SSE), with a progress bar on stderr."""
        import io

        sent = [0]
        progress = progress and sys.stderr.isatty()  # a bar is for people; logs get one line on stdout

        def report(n: int) -> None:
            sent[0] += n
            if progress and data:
                width = 30
                done = int(width * sent[0] / len(data))
                print(f"\r  uploading s3://{bucket}/{key} [{'#' * done}{'.' * (width - done)}] "
                      f"{sent[0] * 100 // len(data):3d}%", end="", file=sys.stderr, flush=True)

        self.calls["upload_fileobj"] += 1
        try:
            self.s3.upload_fileobj(io.BytesIO(data), bucket, key, Callback=report, ExtraArgs={
                "ServerSideEncryption": "AES256", "ACL": "private", "ContentType": content_type,
                "Metadata": {"sha256": sha256}})
        except Exception as exc:
            raise AwsError(f"upload to s3://{bucket}/{key} failed: {describe_error(exc)}") from None
        finally:
            if progress and data:
                print(file=sys.stderr, flush=True)
        print(f"  uploaded s3://{bucket}/{key} ({len(data)} bytes)", flush=True)

    def get_text(self, bucket: str, key: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            answer = self._call(self.s3, "get_object", f"GetObject s3://{bucket}/{key}",
                                quiet=("404", "NoSuchKey"), Bucket=bucket, Key=key)
        except ClientError:
            return None
        return answer["Body"].read().decode()


def raise_for(exc: Exception, what: str) -> DockyardError:
    return AwsError(f"{what} failed: {describe_error(exc)}")
