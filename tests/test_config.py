"""The settings model: defaults, overrides from each Invoke layer, and errors that name key and file."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from invoke import Config

from dockyard.config import (
    check_environment_variables,
    defaults,
    deploy_target,
    load_settings,
    parse_settings,
    registry_host,
)
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


def test_health_path_is_app_wide_and_an_environment_may_override_it(tmp_path):
    settings = _load(tmp_path, """
dockyard:
  health_path: /up
  environments:
    staging: {health_path: /ready}
    qa: {}
""")
    envs = settings.environments
    assert (envs["dev"].health_path, envs["prod"].health_path, envs["qa"].health_path) == ("/up", "/up", "/up")
    assert envs["dev"].health_path_key == "dockyard.health_path"
    assert envs["staging"].health_path == "/ready"
    assert envs["staging"].health_path_key == "dockyard.environments.staging.health_path"
    assert parse_settings(defaults(), root=tmp_path).environments["dev"].health_path == "/health/"


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
        ("dockyard: {health_path: up}", "dockyard.health_path", "'/'"),
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


# --- unknown keys ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        ("dockyard: {ap: shop}", "dockyard.ap: unknown setting (set in invoke.yaml); did you mean app?"),
        ("dockyard: {environments: {dev: {helth_path: /x}}}",
         "dockyard.environments.dev.helth_path: unknown setting (set in invoke.yaml); did you mean health_path?"),
        ("dockyard: {image: {relase_env: prod}}",
         "dockyard.image.relase_env: unknown setting (set in invoke.yaml); did you mean release_env?"),
        ("dockyard: {eb: {bukket: bundles}}",
         "dockyard.eb.bukket: unknown setting (set in invoke.yaml); did you mean bucket?"),
        ("dockyard: {release: {tag_prefx: rel-}}",
         "dockyard.release.tag_prefx: unknown setting (set in invoke.yaml); did you mean tag_prefix?"),
        ("dockyard: {environments: {staging: {target: ssh, ssh: {hots: ['deploy@web1']}}}}",
         "dockyard.environments.staging.ssh.hots: unknown setting (set in invoke.yaml); did you mean hosts?"),
        ("dockyard: {environments: {prod: {target: eb, eb: {twinn: shop-green}}}}",
         "dockyard.environments.prod.eb.twinn: unknown setting (set in invoke.yaml); did you mean twin?"),
        ("dockyard: {environments: {prod: {ecs: {clustr: shop}}}}",
         "dockyard.environments.prod.ecs.clustr: unknown setting (set in invoke.yaml); did you mean cluster?"),
        ("dockyard: {ci: {services: {redis: {imag: 'redis:7'}}}}",
         "dockyard.ci.services.redis.imag: unknown setting (set in invoke.yaml); did you mean image?"),
        ("dockyard: {ssh: {hosts: [{address: deploy@web1, proxy_prot: 8080}]}}",
         "dockyard.ssh.hosts[1].proxy_prot: unknown setting (set in invoke.yaml); did you mean proxy_port?"),
        ("dockyard: {ssh: {accessories: {redis: {image: 'redis:7', volumes: [d:/data], comand: redis-server}}}}",
         "dockyard.ssh.accessories.redis.comand: unknown setting (set in invoke.yaml); did you mean command?"),
        ("dockyard: {git: {upstream: origin}}",
         ("dockyard.git.upstream: unknown setting (set in invoke.yaml); the keys of dockyard.git are "
          "main_branch, remote")),
    ],
)
def test_unknown_key_names_key_file_and_nearest_key(tmp_path, monkeypatch, yaml_text, line):
    monkeypatch.chdir(tmp_path)  # the file is named relative to where inv runs
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, yaml_text + "\n")
    assert str(err.value) == line
    assert err.value.exit_code == 2


def test_several_unknown_keys_are_counted_after_the_first(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "dockyard: {ap: shop, environments: {dev: {prot: 1, helth_path: /x}}}\n")
    assert str(err.value).startswith("dockyard.ap: unknown setting")
    assert str(err.value).endswith("(2 more unknown)")


def test_unknown_key_is_refused_before_a_bad_value(tmp_path):
    with pytest.raises(ConfigError, match=r"^dockyard.environments.dev.helth_path: unknown setting"):
        _load(tmp_path, "dockyard: {environments: {dev: {port: eighty, helth_path: /x}}}\n")


def test_names_of_the_projects_own_are_not_keys(tmp_path):
    settings = _load(tmp_path, """
dockyard:
  image: {build_args: {PYTHON_IMAGE: python:3.12, ANY_NAME: x}}
  environments:
    qa: {compose: docker/compose.yml, target: ssh, ssh: {hosts: [deploy@qa1], accessories: {search: {image: 'x:1'}}}}
    prod: {target: eb, eb: {name: shop-blue, twin: shop-green, platform: v1}, ecs: {cluster: shop}}
  ssh:
    hosts: [{address: deploy@web1, prefix: shop, proxy_port: 8080, state_dir: .dy}, deploy@web2]
    accessories: {redis: {image: 'redis:7', port: '6379', env: {REDIS_ARGS: --save}, command: redis-server}}
  ci:
    env: {MY_FLAG: '1'}
    build_args: {EXTRA: y}
    services: {elastic: {image: 'elasticsearch:8', env: {discovery.type: single-node}, ready: [true]}}
""")
    assert settings.build_args["ANY_NAME"] == "x"
    assert settings.ssh.target("qa").accessories[0].name == "search"
    assert settings.eb.environment("prod").twin == "shop-green"
    assert settings.ecs.target("prod").cluster == "shop"
    assert [s.name for s in settings.ci.services] == ["elastic"]  # no default services: only the project's


def test_the_repositorys_own_invoke_yaml_validates():
    from invoke.config import merge_dicts

    repo = Path(__file__).resolve().parent.parent
    data = defaults()
    merge_dicts(data, yaml.safe_load((repo / "invoke.yaml").read_text())["dockyard"])
    settings = parse_settings(data, root=repo)
    assert sorted(settings.ssh.targets) == ["staging"] and sorted(settings.eb.environments) == ["prod"]


def test_typed_feature_settings_and_one_reading_of_the_target(tmp_path):
    settings = _load(tmp_path, "dockyard: {environments: {staging: {target: ssh}, prod: {target: eb}}}\n")
    assert settings.release.tag_prefix == "v"
    assert settings.ci.provider == "github"
    assert settings.ecs.target("dev").service == "app"
    assert sorted(settings.environments_deployed_over("ssh")) == sorted(settings.ssh.targets) == ["staging"]
    assert sorted(settings.environments_deployed_over("eb")) == sorted(settings.eb.environments) == ["prod"]
    assert deploy_target({"target": "ssh"}) == "ssh"
    assert deploy_target({"target": "heroku"}) == deploy_target({}) == ""


# --- INVOKE_DOCKYARD_* variables --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        ({"INVOKE_DOCKYARD_ENVIRONMENTS_DEV_PORT": "abc"},
         ("INVOKE_DOCKYARD_ENVIRONMENTS_DEV_PORT: expected an integer for dockyard.environments.dev.port, "
          "got text 'abc'")),
        ({"INVOKE_DOCKYARD_EB_TIMEOUT": "soon"},
         "INVOKE_DOCKYARD_EB_TIMEOUT: expected a number for dockyard.eb.timeout, got text 'soon'"),
        ({"INVOKE_DOCKYARD_ECS_CHECK_IMAGE": "false"},
         ("INVOKE_DOCKYARD_ECS_CHECK_IMAGE: expected 1 or 0 for dockyard.ecs.check_image, got text 'false' "
          "(Invoke reads any text but 0 or empty as true)")),
        ({"INVOKE_DOCKYARD_SSH_HOSTS": "deploy@web1"},
         ("INVOKE_DOCKYARD_SSH_HOSTS: dockyard.ssh.hosts is a list, which Invoke cannot read from a variable; "
          "set it in invoke.yaml or a -f file")),
        ({"INVOKE_DOCKYARD_ENVIRONMENTS_DEV_PROT": "8000"},
         ("INVOKE_DOCKYARD_ENVIRONMENTS_DEV_PROT: not a dockyard setting, Invoke would ignore it; "
          "did you mean INVOKE_DOCKYARD_ENVIRONMENTS_DEV_PORT?")),
    ],
)
def test_bad_invoke_variable_is_one_line_naming_it(environ, line):
    with pytest.raises(ConfigError) as err:
        check_environment_variables(defaults(), [], environ)
    assert str(err.value) == line and err.value.exit_code == 2


def test_good_invoke_variables_pass_with_the_types_the_files_give():
    files = [{"environments": {"qa": {"port": 9000}}, "ssh": {"drain_seconds": 1.5}}]
    check_environment_variables(defaults(), files, {
        "INVOKE_DOCKYARD_ENVIRONMENTS_QA_PORT": "9001",  # qa exists only in a file
        "INVOKE_DOCKYARD_EB_HEALTH_WINDOW": "2.5",  # a number of seconds, not only whole ones
        "INVOKE_DOCKYARD_ECS_CHECK_IMAGE": "0",
        "INVOKE_DOCKYARD_APP": "shop",
        "INVOKE_RUN_ECHO": "1",  # not ours
    })


def test_two_keys_with_one_variable_name_are_refused():
    files = [{"environments": {"dev_x": {"port": 1}, "dev": {"x_port": 2}}}]
    with pytest.raises(ConfigError, match=r"both read INVOKE_DOCKYARD_ENVIRONMENTS_DEV_X_PORT"):
        check_environment_variables(defaults(), files, {})
