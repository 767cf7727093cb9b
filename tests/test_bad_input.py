"""Each kind of bad input: one line on stderr saying what to do, a non-zero exit, no traceback, nothing changed."""
from __future__ import annotations

import socket
import subprocess

import pytest


def assert_one_clear_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("$ ")]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def containers_of(project: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True)
    return out.stdout.split()


def images_of(app: str) -> list[str]:
    out = subprocess.run(["docker", "image", "ls", "-q", "--filter", f"label=dev.dockyard.app={app}"],
                         capture_output=True, text=True)
    return out.stdout.split()


def test_unknown_environment_lists_the_configured_ones(sample_project):
    result = sample_project.inv("image.build", "prdo")
    assert_one_clear_line(result, "unknown environment 'prdo'", "dev, prod, staging")
    assert result.returncode == 2


def test_wrong_type_in_invoke_yaml_names_key_and_file(sample_project):
    sample_project.configure({"dockyard": {"environments": {"dev": {"health_timeout": "soon"}}}})
    result = sample_project.inv("dev.ps")
    assert_one_clear_line(result, "dockyard.environments.dev.health_timeout: expected an integer", "invoke.yaml")


def test_missing_compose_file_is_named(sample_project):
    (sample_project.root / "docker/prod/compose.yml").unlink()
    result = sample_project.inv("prod.start")
    assert_one_clear_line(result, "dockyard.environments.prod.compose: docker/prod/compose.yml does not exist")


def test_missing_env_file_says_how_to_create_it(engine, sample_project):
    (sample_project.root / "environments/dev/.env").unlink()
    result = sample_project.inv("dev.start")
    assert_one_clear_line(result, "environments/dev/.env is missing", "copy environments/dev/.env.example")
    assert containers_of(f"{sample_project.app}-dev") == [] and images_of(sample_project.app) == []


def test_partial_env_file_lists_missing_keys(engine, sample_project):
    (sample_project.root / "environments/dev/.env").write_text("DJANGO_DEBUG=1\n")
    result = sample_project.inv("dev.start")
    assert_one_clear_line(result, "environments/dev/.env lacks", "DJANGO_SECRET_KEY")
    assert containers_of(f"{sample_project.app}-dev") == [] and images_of(sample_project.app) == []


def test_env_values_are_never_printed(engine, sample_project):
    (sample_project.root / "environments/dev/.env").write_text("DJANGO_SECRET_KEY=very-secret-value-123\n")
    result = sample_project.inv("dev.start")
    assert "very-secret-value-123" not in result.stdout + result.stderr


def test_invalid_compose_file(engine, sample_project):
    (sample_project.root / "docker/dev/compose.yml").write_text("services:\n  web: [not, a, mapping]\n")
    result = sample_project.inv("dev.start")
    assert_one_clear_line(result, "invalid compose file")
    assert containers_of(f"{sample_project.app}-dev") == []


def test_engine_not_reachable(sample_project, tmp_path):
    result = sample_project.inv("dev.start", env={"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    assert_one_clear_line(result, "Docker engine not reachable")
    assert result.returncode == 4


def test_port_already_in_use(engine, sample_project):
    port = sample_project.config["dockyard"]["environments"]["dev"]["port"]
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("0.0.0.0", port))
        holder.listen()
        result = sample_project.inv("dev.start")
    assert_one_clear_line(result, f"port {port} is already in use", "dockyard.environments.dev.port")
    assert containers_of(f"{sample_project.app}-dev") == [] and images_of(sample_project.app) == []


def test_stack_task_on_environment_without_compose(sample_project):
    # `staging` is deployed over SSH and has no compose file, so it has no local stack tasks at all.
    result = sample_project.inv("staging.start")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_plain_value_where_a_mapping_belongs(sample_project):
    text = (sample_project.root / "invoke.yaml").read_text()
    (sample_project.root / "invoke.yaml").write_text(text + "\n")  # keep the file, then break one key
    sample_project.configure({"dockyard": {"environments": {"staging": None}}})
    result = sample_project.inv("image.list")
    assert_one_clear_line(result, "dockyard.environments.staging: expected a mapping", "invoke.yaml")
    assert result.returncode == 2


def test_mapping_where_a_plain_value_belongs(sample_project):
    sample_project.configure({"dockyard": {"app": {"name": "x"}}})
    assert_one_clear_line(sample_project.inv("--list"), "dockyard.app: expected a single value", "invoke.yaml")


def test_invoke_yaml_that_is_not_yaml(sample_project):
    (sample_project.root / "invoke.yaml").write_text("dockyard:\n  app: [unclosed\n")
    assert_one_clear_line(sample_project.inv("--list"), "invoke.yaml line", "not valid YAML")


def test_runtime_file_is_checked_too(sample_project, tmp_path):
    extra = tmp_path / "ci.yaml"
    extra.write_text("dockyard:\n  image: latest\n")
    assert_one_clear_line(sample_project.inv("-f", str(extra), "--list"), "dockyard.image: expected a mapping",
                          str(extra))


def test_typo_key_in_an_environment_names_key_file_and_nearest_key(sample_project):
    sample_project.configure({"dockyard": {"environments": {"dev": {"helth_path": "/x"}}}})
    result = sample_project.inv("dev.ps")
    assert_one_clear_line(result, "dockyard.environments.dev.helth_path: unknown setting (set in invoke.yaml); "
                                  "did you mean health_path?")
    assert result.returncode == 2


def test_typo_key_in_a_per_environment_override(sample_project):
    sample_project.configure({"dockyard": {"environments": {"staging": {"ssh": {"hots": ["deploy@web1"]}}}}})
    result = sample_project.inv("staging.status")
    assert_one_clear_line(result, "dockyard.environments.staging.ssh.hots: unknown setting (set in invoke.yaml); "
                                  "did you mean hosts?")
    assert result.returncode == 2


def test_typo_key_in_a_runtime_file_names_that_file(sample_project, tmp_path):
    extra = tmp_path / "ci.yaml"
    extra.write_text("dockyard:\n  eb:\n    bukket: bundles\n")
    result = sample_project.inv("-f", str(extra), "image.list")
    assert_one_clear_line(result, f"dockyard.eb.bukket: unknown setting (set in {extra}); did you mean bucket?")
    assert result.returncode == 2


def test_badly_typed_invoke_variable_is_one_line(sample_project):
    result = sample_project.inv("dev.ps", env={"INVOKE_DOCKYARD_ENVIRONMENTS_DEV_PORT": "abc"})
    assert_one_clear_line(result, "INVOKE_DOCKYARD_ENVIRONMENTS_DEV_PORT: expected an integer for "
                                  "dockyard.environments.dev.port, got text 'abc'")
    assert result.returncode == 2


def test_invoke_variable_that_is_not_a_setting_is_one_line(sample_project):
    result = sample_project.inv("image.list", env={"INVOKE_DOCKYARD_IMAGE_REPOSITROY": "x/y"})
    assert_one_clear_line(result, "INVOKE_DOCKYARD_IMAGE_REPOSITROY: not a dockyard setting",
                          "did you mean INVOKE_DOCKYARD_IMAGE_REPOSITORY?")
    assert result.returncode == 2
