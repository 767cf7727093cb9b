"""Settings of the ``dockyard.release`` section (owned by the release feature).

``DEFAULTS`` declares every key with its default; ``parse`` validates the section once, at load.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .section import keys_of

SECTION = "release"

DEFAULTS: dict[str, Any] = {
    "branch_prefix": "release-v",  # a line X.Y lives on the branch <branch_prefix>X.Y
    "tag_prefix": "v",  # version X.Y.Z is the git tag <tag_prefix>X.Y.Z (the image tag is X.Y.Z)
    "allow_empty": False,  # release a commit that has no change since the previous release
    "build_env": "",  # the environment whose compose build section builds the release image; "" = image.release_env
}

SCHEMA = keys_of(DEFAULTS)

_REF_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$|^$")


@dataclass(frozen=True)
class ReleaseSettings:
    branch_prefix: str
    tag_prefix: str
    allow_empty: bool
    build_env: str


def parse(settings: Any) -> ReleaseSettings:
    """Validate ``dockyard.release``; the build environment must be a configured one."""
    section = settings.section.section(SECTION)
    branch_prefix = section.str("branch_prefix", DEFAULTS["branch_prefix"], required=True)
    tag_prefix = section.str("tag_prefix", DEFAULTS["tag_prefix"])
    for name, value in (("branch_prefix", branch_prefix), ("tag_prefix", tag_prefix)):
        if not _REF_PART.match(value) or ".." in value or value.endswith((".", "/")):
            raise section.fail(name, f"not usable in a git ref name: {value!r}")
    build_env = section.str("build_env") or settings.release_env
    if build_env and build_env not in settings.environments:
        raise section.fail("build_env", f"no environment named {build_env!r}")
    return ReleaseSettings(
        branch_prefix=branch_prefix,
        tag_prefix=tag_prefix,
        allow_empty=section.bool("allow_empty", False),
        build_env=build_env,
    )
