"""Which Secrets Manager version holds each secret value a deploy wants, and which versions it must write (pure,
given a reader of the current versions). Shared by the ECS and the Elastic Beanstalk targets.

A value Secrets Manager already holds as the secret's current version keeps that version; any other gets a new
version (a new secret, the first time) whose id is chosen here, at planning, and given to Secrets Manager as the
``ClientRequestToken`` (which becomes its ``VersionId``): the plan names the version as it will be written, and a
record of the deploy can say which version each value was.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: the ARN of a secret Secrets Manager does not hold yet: it exists (with AWS's random suffix) only once the deploy
#: created it, so the step that needs it puts it in from the write's output
NEW_SECRET = "<new secret>"


@dataclass(frozen=True)
class SecretWrite:
    """A new version of a Secrets Manager secret, its version id chosen at planning."""

    name: str
    version_id: str
    value: str = field(repr=False)
    exists: bool = True

    @property
    def placeholder(self) -> str:
        return f"{NEW_SECRET}{self.name}"


def secret_versions(current: Callable[[str], Any], wanted: Mapping[str, tuple[str, str]],
                    new_id: Callable[[], str] = lambda: str(uuid.uuid4())
                    ) -> tuple[dict[str, tuple[str, str]], tuple[SecretWrite, ...]]:
    """``wanted``: key -> (secret name, value); ``current(name)``: the stored current version (``arn``,
    ``version_id``, ``value``) or None. Returns key -> (ARN or the new secret's placeholder, version id), and the
    versions to write."""
    refs: dict[str, tuple[str, str]] = {}
    writes = []
    for key, (name, value) in wanted.items():
        stored = current(name)
        if stored is not None and stored.value == value:
            refs[key] = (stored.arn, stored.version_id)
            continue
        write = SecretWrite(name=name, version_id=new_id(), value=value, exists=stored is not None)
        writes.append(write)
        refs[key] = (stored.arn if stored is not None else write.placeholder, write.version_id)
    return refs, tuple(writes)
