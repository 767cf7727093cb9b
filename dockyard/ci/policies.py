"""Trust policies of the role CI assumes with the provider's OIDC token (pure: documents, no AWS call).

GitHub Actions: the issuer ``token.actions.githubusercontent.com``, audience ``sts.amazonaws.com``, and a ``sub``
condition naming the repository and the refs whose jobs need AWS (``repo:OWNER/NAME:ref:refs/heads/staging``,
``repo:OWNER/NAME:ref:refs/tags/v*``). CircleCI: the organisation's issuer ``oidc.circleci.com/org/<org-id>``,
audience the organisation ID, and a ``sub`` condition on the project when one is configured.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from ..errors import ConfigError

GITHUB_ISSUER = "token.actions.githubusercontent.com"
CIRCLECI_ISSUER = "oidc.circleci.com/org/{org}"
ASSUME = "sts:AssumeRoleWithWebIdentity"
_GITHUB_REMOTE = re.compile(r"github\.com[:/]([\w.-]+/[\w.-]+?)(?:\.git)?/?$")


def account_of(role_arn: str) -> str:
    if not role_arn:
        raise ConfigError("dockyard.ci.aws_role_arn is empty: set the role CI assumes "
                          "(arn:aws:iam::ACCOUNT:role/NAME) to print its trust policy")
    return role_arn.split(":")[4]


def github_repository(configured: str, remote_url: str) -> str:
    if configured:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", configured):
            raise ConfigError(f"dockyard.ci.github_repository: expected OWNER/NAME, got {configured!r}")
        return configured
    match = _GITHUB_REMOTE.search(remote_url)
    if not match:
        raise ConfigError("dockyard.ci.github_repository is empty and the git remote is not on github.com: set it "
                          "to OWNER/NAME")
    return match[1]


def github_trust_policy(account: str, repository: str, refs: Sequence[str]) -> dict[str, Any]:
    """``refs``: the git refs whose jobs may assume the role (globs allowed: ``refs/tags/v*``)."""
    subjects = [f"repo:{repository}:ref:{ref}" for ref in refs]
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "GitHubActions",
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{account}:oidc-provider/{GITHUB_ISSUER}"},
        "Action": ASSUME,
        "Condition": {
            "StringEquals": {f"{GITHUB_ISSUER}:aud": "sts.amazonaws.com"},
            "StringLike": {f"{GITHUB_ISSUER}:sub": subjects},
        },
    }]}


def circleci_trust_policy(account: str, org_id: str, project_id: str = "") -> dict[str, Any]:
    if not org_id:
        raise ConfigError("dockyard.ci.circleci_org_id is empty: set your CircleCI organisation ID "
                          "(Organization Settings > Overview) to print its trust policy")
    issuer = CIRCLECI_ISSUER.format(org=org_id)
    condition: dict[str, Any] = {"StringEquals": {f"{issuer}:aud": org_id}}
    if project_id:
        condition["StringLike"] = {f"{issuer}:sub": f"org/{org_id}/project/{project_id}/user/*"}
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "CircleCI",
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{account}:oidc-provider/{issuer}"},
        "Action": ASSUME,
        "Condition": condition,
    }]}


def job_refs(pipeline: Any, staging_branch: str, tag_pattern: str) -> list[str]:
    """The refs of the jobs that need AWS: the staging branch, the release tags."""
    refs = []
    if pipeline.staging is not None and pipeline.staging.aws:
        refs.append(f"refs/heads/{staging_branch}")
    if pipeline.release is not None and pipeline.release.aws:
        refs.append(f"refs/tags/{tag_pattern}")
    return refs
