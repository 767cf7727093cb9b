"""The only place S3 is called: bundles, the dockercfg, the deploy lock and the audit records.

:class:`S3Client` takes a boto3 S3 client from the caller (``aws_client(settings, "s3", session)``) and answers in
plain values; every error is one :class:`~dockyard.errors.AwsError` line (see :class:`.aws.AwsApi`).
"""
from __future__ import annotations

import io
import sys
from collections import Counter
from typing import Any

from .aws import AwsApi, ExpectedError

MISSING = ("404", "NoSuchKey", "NotFound")
TAKEN = ("PreconditionFailed", "412", "ConditionalRequestConflict")
ENCRYPTED = {"ServerSideEncryption": "AES256"}


def s3_url(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"


class S3Client:
    def __init__(self, s3: Any, *, calls: Counter[str] | None = None) -> None:
        self.api = AwsApi(s3, service="s3", calls=calls)

    # --- buckets ----------------------------------------------------------------------------------------------
    def bucket_state(self, bucket: str, *, owner: str = "") -> str:
        """``ok``, ``missing`` or ``denied`` (not ours: access denied, or owned by another account than ``owner``)."""
        extra = {"ExpectedBucketOwner": owner} if owner else {}
        try:
            self.api.call("head_bucket", s3_url(bucket), expected=("404", "NoSuchBucket", "403"), Bucket=bucket,
                          **extra)
        except ExpectedError as exc:
            return "denied" if exc.code == "403" else "missing"
        return "ok"

    def lists_bucket(self, bucket: str) -> bool | None:
        """Whether ListBuckets (the caller's own buckets) names ``bucket``; None without s3:ListAllMyBuckets."""
        try:
            found = self.api.call("list_buckets", expected=("AccessDenied", "403"), Prefix=bucket)
        except ExpectedError:
            return None
        return bucket in {b.get("Name") for b in found.get("Buckets") or []}

    # --- objects ----------------------------------------------------------------------------------------------
    def metadata(self, bucket: str, key: str) -> dict[str, str] | None:
        """The object's user metadata and ETag; None when there is no such object."""
        try:
            answer = self.api.call("head_object", s3_url(bucket, key), expected=MISSING, Bucket=bucket, Key=key)
        except ExpectedError:
            return None
        return {**answer.get("Metadata", {}), "ETag": answer.get("ETag", "")}

    def read(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes; None when there is no such object."""
        try:
            answer = self.api.call("get_object", s3_url(bucket, key), expected=MISSING, Bucket=bucket, Key=key)
        except ExpectedError:
            return None
        return self.api.run("get_object", s3_url(bucket, key), answer["Body"].read)

    def read_text(self, bucket: str, key: str) -> str | None:
        data = self.read(bucket, key)
        return None if data is None else data.decode()

    def write(self, bucket: str, key: str, body: bytes, *, content_type: str = "application/json") -> None:
        """Write (or overwrite) a private, encrypted object."""
        self.api.call("put_object", s3_url(bucket, key), Bucket=bucket, Key=key, Body=body, ContentType=content_type,
                      **ENCRYPTED)

    def create(self, bucket: str, key: str, body: bytes, *, content_type: str = "application/json") -> bool:
        """Write the object only if there is none (a conditional put, ``If-None-Match: *``); False when taken.

        S3 decides atomically: of two writers of one key at the same time exactly one gets True.
        """
        return bool(self.create_tagged(bucket, key, body, content_type=content_type))

    def create_tagged(self, bucket: str, key: str, body: bytes, *, content_type: str = "application/json") -> str:
        """:meth:`create`, answering the new object's ETag ("" when taken), for later conditional writes."""
        try:
            answer = self.api.call("put_object", s3_url(bucket, key), expected=TAKEN, Bucket=bucket, Key=key,
                                   Body=body, IfNoneMatch="*", ContentType=content_type, **ENCRYPTED)
        except ExpectedError:
            return ""
        return answer.get("ETag") or "*"

    def replace(self, bucket: str, key: str, body: bytes, *, etag: str,
                content_type: str = "application/json") -> str:
        """Overwrite the object only while it is the one with ``etag`` (``If-Match``): the new ETag, or "" when it
        was replaced or deleted meanwhile."""
        try:
            answer = self.api.call("put_object", s3_url(bucket, key), expected=TAKEN + MISSING, Bucket=bucket,
                                   Key=key, Body=body, IfMatch=etag, ContentType=content_type, **ENCRYPTED)
        except ExpectedError:
            return ""
        return answer.get("ETag") or etag

    def delete_if(self, bucket: str, key: str, *, etag: str) -> bool:
        """Delete the object only while it is the one with ``etag`` (``If-Match``); False when it is not."""
        try:
            self.api.call("delete_object", s3_url(bucket, key), expected=TAKEN + MISSING, Bucket=bucket, Key=key,
                          IfMatch=etag)
        except ExpectedError:
            return False
        return True

    def delete(self, bucket: str, key: str) -> None:
        self.api.call("delete_object", s3_url(bucket, key), Bucket=bucket, Key=key)

    def keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix`` (all pages)."""
        keys: list[str] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self.api.call("list_objects_v2", s3_url(bucket, prefix), **kwargs)
            keys += [item["Key"] for item in page.get("Contents") or []]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return keys

    def upload(self, bucket: str, key: str, data: bytes, *, sha256: str, content_type: str = "application/zip",
               progress: bool = True) -> None:
        """Upload private and encrypted (SSE), with a progress bar on stderr (a managed, multipart-capable put)."""
        sent = [0]
        progress = progress and sys.stderr.isatty()  # a bar is for people; logs get one line on stdout

        def report(n: int) -> None:
            sent[0] += n
            if progress and data:
                width = 30
                done = int(width * sent[0] / len(data))
                print(f"\r  uploading {s3_url(bucket, key)} [{'#' * done}{'.' * (width - done)}] "
                      f"{sent[0] * 100 // len(data):3d}%", end="", file=sys.stderr, flush=True)

        def transfer() -> None:
            self.api.client.upload_fileobj(io.BytesIO(data), bucket, key, Callback=report, ExtraArgs={
                **ENCRYPTED, "ACL": "private", "ContentType": content_type, "Metadata": {"sha256": sha256}})

        try:
            self.api.run("upload_fileobj", s3_url(bucket, key), transfer)
        finally:
            if progress and data:
                print(file=sys.stderr, flush=True)
        print(f"  uploaded {s3_url(bucket, key)} ({len(data)} bytes)", flush=True)
