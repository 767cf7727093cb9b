"""dockyard.core: release versions (labels, tag prefixes, the latest release), image references, deploy variables,
and the one credentials path with its masking."""
from __future__ import annotations

import pytest

from conftest import git
from dockyard.clients.git import GitClient
from dockyard.core.compose import deploy_variables, image_reference, stack_variables
from dockyard.core.credentials import gather_credentials
from dockyard.core.versions import (
    BadVersion,
    ReleaseVersion,
    deploy_tag,
    label_version,
    latest_version,
    resolve_release,
    version_of_tag,
)
from dockyard.config import parse_settings
from dockyard.errors import Refused
from dockyard.runner import Masker, Runner

V = ReleaseVersion.parse
SHA = "abc1234def5678abc1234def5678abc1234def56"


# --- labels and tags ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1.2.3", "2.0.0-rc.1", "2.0.0-rc.1.beta-2", "10.0.0-alpha"])
def test_label_and_version_round_trip(text):
    version = V(text)
    label = version.label(SHA)
    assert label == f"{text}-abc1234"
    assert label_version(label) == version


def test_label_of_a_pre_release_is_not_cut_at_its_first_dash():
    assert label_version("2.0.0-rc.1-abc1234") == V("2.0.0-rc.1")
    assert str(label_version("2.0.0-rc.1-abc1234")) == "2.0.0-rc.1"  # was "2.0.0" with label.split("-")[0]


@pytest.mark.parametrize("label", ["2.0.0", "2.0.0-rc.1", "nightly-abc1234", "v1.2.3-abc1234", "1.2-abc1234"])
def test_labels_that_name_no_release_give_none(label):
    assert label_version(label) is None


@pytest.mark.parametrize("prefix", ["v", "rel-", "release/", ""])
def test_tag_and_version_round_trip_with_any_prefix(prefix):
    for text in ("1.2.3", "2.0.0-rc.1"):
        version = V(text)
        assert version_of_tag(version.tag(prefix), prefix) == version


def test_tags_of_another_prefix_are_not_releases():
    assert version_of_tag("v1.2.3", "rel-") is None
    assert version_of_tag("rel-1.2", "rel-") is None


def test_latest_release_counts_pre_releases_and_only_the_prefix():
    tags = ["rel-1.9.0", "rel-2.0.0-rc.1", "rel-2.0.0-rc.2", "v9.9.9", "rel-nightly"]
    assert latest_version(tags, "rel-") == V("2.0.0-rc.2")
    assert latest_version(tags + ["rel-2.0.0"], "rel-") == V("2.0.0")
    assert latest_version(["v9.9.9"], "rel-") is None


@pytest.mark.parametrize("text,expected", [
    ("2.0.0-rc.1", "2.0.0-rc.1"),
    ("rel-2.0.0-rc.1", "2.0.0-rc.1"),
    ("staging-abc1234", "staging-abc1234"),  # version_format tags pass as given
    ("v2", "v2"),
    ("rel-latest", "rel-latest"),
])
def test_deploy_tag_reads_releases_and_keeps_other_docker_tags(text, expected):
    assert deploy_tag(text, "rel-") == expected


# --- resolving the release a deploy ships, against a real repository ---------------------------------------------


@pytest.fixture
def repo(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "f").write_text("1\n")
    git(tmp_path, "add", "f")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def tag(repo, name, message):
    git(repo, "tag", "-a", name, "-m", message)
    return git(repo, "rev-parse", f"{name}^{{commit}}").stdout.strip()


def test_resolve_a_pre_release_under_a_custom_prefix(repo):
    tag(repo, "rel-1.0.0", "first")
    (repo / "f").write_text("2\n")
    git(repo, "commit", "-qam", "second")
    sha = tag(repo, "rel-2.0.0-rc.1", "candidate one")
    client = GitClient(Runner(), repo)
    for typed in ("2.0.0-rc.1", "rel-2.0.0-rc.1", "v2.0.0-rc.1", ""):
        release = resolve_release(client, typed, tag_prefix="rel-")
        assert (release.version, release.tag, release.sha) == (V("2.0.0-rc.1"), "rel-2.0.0-rc.1", sha), typed
        assert release.label == f"2.0.0-rc.1-{sha[:7]}" and release.image_tag == "2.0.0-rc.1"
        assert release.description == "candidate one"


def test_resolve_refuses_an_untagged_version_and_a_repository_without_releases(repo):
    client = GitClient(Runner(), repo)
    with pytest.raises(Refused, match=r"no release yet \(no rel-X.Y.Z git tag\)"):
        resolve_release(client, tag_prefix="rel-")
    tag(repo, "v1.0.0", "under the default prefix")
    with pytest.raises(Refused, match="release 1.0.0 is not published: there is no git tag rel-1.0.0"):
        resolve_release(client, "1.0.0", tag_prefix="rel-")
    with pytest.raises(BadVersion) as bad:
        resolve_release(client, "1.0", tag_prefix="rel-")
    assert bad.value.exit_code == 2 and "did you mean 1.0.0?" in bad.value.message


# --- image references and compose variables -------------------------------------------------------------------


def settings_for(**image):
    return parse_settings({"app": "shop", "image": {"repository": "reg.example/shop", "build_args": {"A": "1"},
                                                    **image},
                           "registry": {"username": "bot", "password_env": "REG_PW"},
                           "environments": {"prod": {"compose": "docker/prod/compose.yml", "port": 8080}}})


def test_image_reference_by_tag_or_digest():
    assert image_reference("reg.example/shop", "2.0.0-rc.1") == "reg.example/shop:2.0.0-rc.1"
    assert image_reference("reg.example/shop", "1.0.0", digest="sha256:" + "a" * 64) == \
        "reg.example/shop@sha256:" + "a" * 64
    with pytest.raises(ValueError):
        image_reference("reg.example/shop")


def test_a_deploy_pins_the_image_and_publishes_port_80_where_the_stack_uses_its_own():
    settings = settings_for()
    env = settings.environment("prod")
    local = stack_variables(settings, env)
    deployed = deploy_variables(settings, env, "reg.example/shop:2.0.0-rc.1")
    assert (local["DOCKYARD_IMAGE"], local["DOCKYARD_PORT"]) == ("reg.example/shop:prod", "8080")
    assert (deployed["DOCKYARD_IMAGE"], deployed["DOCKYARD_PORT"]) == ("reg.example/shop:2.0.0-rc.1", "80")
    assert local["A"] == deployed["A"] == "1" and local["DOCKYARD_ENV"] == deployed["DOCKYARD_ENV"] == "prod"


# --- credentials ---------------------------------------------------------------------------------------------


def test_gathered_password_is_masked_from_any_source(monkeypatch, tmp_path):
    settings = settings_for()
    monkeypatch.delenv("REG_PW", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("REG_PW=from-the-env-file\nOTHER=not-a-credential\n")
    mask = Masker()
    creds = gather_credentials(settings, mask=mask, env_file=env_file)
    assert creds.password == "from-the-env-file"
    assert mask("login with from-the-env-file") == "login with ********"
    assert mask("not-a-credential") == "not-a-credential"  # one policy: the password, nothing else
    monkeypatch.setenv("REG_PW", "from-the-environment")
    mask = Masker()
    assert gather_credentials(settings, mask=mask, env_file=env_file).password == "from-the-environment"
    assert "from-the-environment" not in mask("pw from-the-environment")


def test_gather_never_prompts_when_not_interactive(monkeypatch, tmp_path):
    from dockyard.core.credentials import MissingPassword

    monkeypatch.delenv("REG_PW", raising=False)
    monkeypatch.setattr("getpass.getpass", lambda *a: pytest.fail("prompted"))
    with pytest.raises(MissingPassword, match="set the environment variable REG_PW") as missing:
        gather_credentials(settings_for(), mask=Masker(), env_file=tmp_path / "absent.env")
    assert "not in the app's env file" in missing.value.message  # that file is shipped to the containers


def test_publish_and_a_staging_host_log_in_with_the_same_command():
    from dockyard.clients.docker import login_command
    from dockyard.staging import commands as staging_commands
    from dockyard.staging.model import Layout

    local = login_command("reg.example:5000", "bot", "hunter2-secret")
    remote = staging_commands.login(Layout("shop-staging", "/srv/shop"), "reg.example:5000", "bot", "hunter2-secret")
    assert remote.argv == ("docker", "--config", "/srv/shop/docker", *local.argv[1:])
    assert remote.stdin == local.stdin == "hunter2-secret\n"
    for command in (local, remote):
        assert "hunter2-secret" not in " ".join(command.argv) and "hunter2-secret" not in command.display()
