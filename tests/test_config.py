"""The settings model: defaults, overrides from each Invoke layer, and errors that name key and file."""
from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Config

from dockyard.config import defaults, load_settings, parse_settings, registry_host
from dockyard.errors import ConfigError, UnknownEnvironment


def _project(tmp_path: Path, yaml_text: str) -> Path:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "compose.yml").write_text("services: {web: {image: x}}\n")
    (tmp_path / "invoke.yaml").write_text(yaml_text)
    return tmp_path


class _Ctx:
    def __init__(self, config: Config) -> None:
        self.config = config


def _load(tmp_path: Path, yaml_text: str, env: dict[str, str] | None = None, monkeypatch=None):
    root = _project(tmp_path, yaml_text)
    base = defaults()
    base["root"] = str(root)
    config = Config(defaults={"dockyard": base}, project_location=str(root))
    config.load_project()
    if env:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        config.load_shell_env()
    return load_settings(_Ctx(config))


def test_defaults_give_three_environments_and_a_repository(tmp_path):
    settings = parse_settings(defaults(), root=tmp_path)
    assert sorted(settings.environments) == ["dev", "prod", "staging"]
    assert settings.repository == "dockyard/app"
    assert settings.environments["prod"].project_name == "app-prod"
    assert settings.environments["dev"].env_file == tmp_path / "environments/dev/.env"
    assert settings.registry.url == "docker.io"


def test_project_file_sets_values(tmp_path):
    settings = _load(tmp_path, """
dockyard:
  app: shop
  image: {repository: 127.0.0.1:5000/team/shop}
  environments:
    prod: {compose: docker/compose.yml, port: 8080, target: eb}
    qa: {compose: docker/compose.yml, port: 9000}
""")
    assert settings.app == "shop"
    assert settings.registry.url == "127.0.0.1:5000"
    assert settings.environments["prod"].compose == tmp_path / "docker/compose.yml"
    assert settings.environments["prod"].health_url == "http://127.0.0.1:8080/health/"
    assert settings.environments["qa"].port == 9000  # environments a team adds get every default
    assert settings.environments["qa"].app_service == "web"


def test_invoke_environment_variable_overrides_project_file(tmp_path, monkeypatch):
    settings = _load(tmp_path, "dockyard: {environments: {dev: {compose: docker/compose.yml, port: 8000}}}\n",
                     env={"INVOKE_DOCKYARD_ENVIRONMENTS_DEV_PORT": "8111"}, monkeypatch=monkeypatch)
    assert settings.environments["dev"].port == 8111


def test_wrong_type_names_key_and_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "dockyard: {environments: {dev: {port: eighty}}}\n")
    message = str(err.value)
    assert message.startswith("dockyard.environments.dev.port: expected an integer")
    assert "invoke.yaml" in message


def test_wrong_type_from_environment_variable_names_the_variable(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "dockyard: {environments: {dev: {port: 8000}}}\n",
              env={"INVOKE_DOCKYARD_ENVIRONMENTS_DEV_PORT": "99999"}, monkeypatch=monkeypatch)
    assert str(err.value).startswith("dockyard.environments.dev.port: expected a port number up to 65535")
    assert "environment variable INVOKE_DOCKYARD_ENVIRONMENTS_DEV_PORT" in str(err.value)


def test_missing_compose_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"dockyard.environments.prod.compose: docker/prod/compose.yml does not exist"):
        _load(tmp_path, "dockyard: {environments: {prod: {compose: docker/prod/compose.yml}}}\n")


@pytest.mark.parametrize(
    ("yaml_text", "key", "expected"),
    [
        ("dockyard: {app: 'My App'}", "dockyard.app", "lower-case"),
        ("dockyard: {image: {repository: 'Bad Repo'}}", "dockyard.image.repository", "valid image repository"),
        ("dockyard: {environments: {dev: {target: heroku}}}", "dockyard.environments.dev.target", "one of"),
        ("dockyard: {environments: {dev: {health_path: health}}}", "dockyard.environments.dev.health_path", "'/'"),
        ("dockyard: {environments: {dev: {port: 70000}}}", "dockyard.environments.dev.port", "65535"),
        ("dockyard: {environments: {qa: [x]}}", "dockyard.environments.qa", "mapping"),
        ("dockyard: {registry: {kind: quay}}", "dockyard.registry.kind", "one of"),
        ("dockyard: {image: {release_env: live}}", "dockyard.image.release_env", "no environment"),
    ],
)
def test_each_bad_value_names_its_key(tmp_path, yaml_text, key, expected):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, yaml_text + "\n")
    assert str(err.value).startswith(key + ":")
    assert expected in str(err.value)


def test_unknown_environment_lists_configured_ones(tmp_path):
    settings = parse_settings(defaults(), root=tmp_path)
    with pytest.raises(UnknownEnvironment, match="configured ones are dev, prod, staging"):
        settings.environment("prdo")


def test_ecr_registry_is_detected():
    assert registry_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop") == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    settings = parse_settings({**defaults(), "image": {"repository": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop"}})
    assert settings.registry.kind == "ecr"
    assert registry_host("library/nginx") == "docker.io"
    assert registry_host("localhost/x") == "localhost"
