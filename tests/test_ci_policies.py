"""`inv ci.policies`: the trust policy of the role CI assumes with its OIDC token, checked with parliament."""
from __future__ import annotations

import json

import pytest

from conftest import REPO

PYTHONPATH = {"PYTHONPATH": str(REPO)}
ROLE = "arn:aws:iam::123456789012:role/dockyard-ci"
ORG = "0a1b2c3d-1111-2222-3333-444455556666"
PROJECT = "9f8e7d6c-1111-2222-3333-444455556666"

# What parliament (1.6.4) reports on every correct OIDC trust policy, and why it is not a problem:
DOCUMENTED = {
    # It knows SAML providers and four web identity hosts, not IAM OIDC providers (oidc-provider/...).
    "UNKNOWN_FEDERATION_SOURCE",
    # It reads every document as an identity policy; a role's trust policy never has a Resource.
    "MALFORMED:Statement contains neither Resource nor NotResource",
}


def findings(policy: dict) -> set[str]:
    parliament = pytest.importorskip("parliament")
    analyzed = parliament.analyze_policy_string(json.dumps(policy), include_community_auditors=True)
    return {f.issue if f.issue == "UNKNOWN_FEDERATION_SOURCE" else f"{f.issue}:{f.detail}" for f in analyzed.findings}


@pytest.fixture
def ci_project(sample_project):
    sample_project.configure({"dockyard": {"ci": {"aws_role_arn": ROLE, "circleci_org_id": ORG,
                                                  "circleci_project_id": PROJECT}}})
    sample_project.git("remote", "add", "origin", "git@github.com:acme/shop.git")
    return sample_project


def policy_of(project, provider: str) -> dict:
    result = project.inv("ci.policies", "--provider", provider, env=PYTHONPATH)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_github_trust_policy_names_the_repository_and_the_release_tags(ci_project):
    document = policy_of(ci_project, "github")
    assert document["role"] == ROLE
    statement = document["trust_policy"]["Statement"][0]
    assert statement["Principal"]["Federated"] == \
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"]["StringEquals"] == {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
    # Only the tag job deploys to AWS (EB); the staging job deploys over SSH and gets no AWS role.
    assert statement["Condition"]["StringLike"] == {
        "token.actions.githubusercontent.com:sub": ["repo:acme/shop:ref:refs/tags/v*"]}
    assert findings(document["trust_policy"]) == DOCUMENTED
    assert "permission_policy" in document  # the EB deploy's, from the same place as `inv eb.policies`


def test_circleci_trust_policy_names_the_organisation_issuer(ci_project):
    document = policy_of(ci_project, "circleci")
    statement = document["trust_policy"]["Statement"][0]
    issuer = f"oidc.circleci.com/org/{ORG}"
    assert statement["Principal"]["Federated"] == f"arn:aws:iam::123456789012:oidc-provider/{issuer}"
    assert statement["Condition"]["StringEquals"] == {f"{issuer}:aud": ORG}
    assert statement["Condition"]["StringLike"] == {f"{issuer}:sub": f"org/{ORG}/project/{PROJECT}/user/*"}
    assert findings(document["trust_policy"]) == DOCUMENTED


def test_an_ecr_registry_lets_the_staging_branch_assume_the_role_too(ci_project):
    ci_project.configure({"dockyard": {"image": {"repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop"}}})
    statement = policy_of(ci_project, "github")["trust_policy"]["Statement"][0]
    assert statement["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"] == [
        "repo:acme/shop:ref:refs/heads/staging", "repo:acme/shop:ref:refs/tags/v*"]


def test_policies_without_a_role_is_one_line(sample_project):
    result = sample_project.inv("ci.policies", env=PYTHONPATH)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        ("dockyard: dockyard.ci.aws_role_arn is empty: set the role CI assumes (arn:aws:iam::ACCOUNT:role/NAME) "
         "to print its trust policy")]
