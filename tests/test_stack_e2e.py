"""The local stacks, end to end: real `inv` against the real Docker engine, checked over HTTP."""
from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

pytestmark = pytest.mark.engine


def get(url: str) -> tuple[int, dict[str, str], str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, dict(response.headers), response.read().decode()


def project_containers(project_name: str, *extra: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-q", *extra, "--filter", f"label=com.docker.compose.project={project_name}"],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("builder", ["auto", "legacy"])
def test_dev_stack_lifecycle(engine, sample_project, builder):
    """The sample app's local life, its image built through BuildKit (Buildx, as auto finds it) and through the
    legacy builder."""
    if builder != "auto":
        sample_project.configure({"dockyard": {"image": {"builder": builder}}})
    port = sample_project.config["dockyard"]["environments"]["dev"]["port"]
    started = sample_project.inv("dev.start", check=True)
    assert f"http://127.0.0.1:{port}/" in started.stdout
    building = next(line for line in started.stdout.splitlines() if line.startswith("Building "))
    assert building.endswith("(buildkit)" if builder == "auto" else "(legacy)"), building

    status, _, body = get(f"http://127.0.0.1:{port}/health/")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, page = get(f"http://127.0.0.1:{port}/")
    assert "Hello from the dockyard sample app" in page

    ps = sample_project.inv("dev.ps", check=True)
    assert "web" in ps.stdout and " Up " in ps.stdout

    logs = sample_project.inv("dev.logs", "--tail", "50", check=True)
    assert "GET /health/" in logs.stdout  # runserver logged our probe

    run = sample_project.inv("dev.run", "python -c 'print(6 * 7)'", check=True)
    assert "42" in run.stdout
    one_offs = project_containers(f"{sample_project.app}-dev", "--all", "--filter", "label=com.docker.compose.oneoff=True")
    assert one_offs == [], "the one-off container was not removed"

    failing = sample_project.inv("dev.run", "python -c 'raise SystemExit(3)'")
    assert failing.returncode == 3

    tests = sample_project.inv("dev.test", check=True)
    assert "OK" in tests.stderr + tests.stdout

    # shell enters the running container (exec), it does not start another one
    web = project_containers(f"{sample_project.app}-dev")
    shell = sample_project.inv("dev.shell", input="hostname\nexit\n", check=True)
    assert shell.stdout.strip() == web[0][:12]
    assert project_containers(f"{sample_project.app}-dev") == web

    sample_project.inv("dev.stop", check=True)
    assert project_containers(f"{sample_project.app}-dev") == []
    not_running = sample_project.inv("dev.shell", input="exit\n")
    assert not_running.returncode == 5 and "inv dev.start" in not_running.stderr
    assert project_containers(f"{sample_project.app}-dev", "--all"), "stop keeps the containers"
    sample_project.inv("dev.down", check=True)
    assert project_containers(f"{sample_project.app}-dev", "--all") == []


def test_dev_server_reloads_edited_code(engine, sample_project):
    port = sample_project.config["dockyard"]["environments"]["dev"]["port"]
    sample_project.inv("dev.start", check=True)
    template = sample_project.root / "app/sample/templates/sample/index.html"
    template.write_text(template.read_text().replace("Hello from the dockyard sample app",
                                                     "Hello from the dockyard sample app (edited)"))
    _, _, page = get(f"http://127.0.0.1:{port}/")
    assert "(edited)" in page  # the source is bind-mounted, not baked into the image


def test_prod_stack_serves_static_files_through_nginx(engine, sample_project):
    port = sample_project.config["dockyard"]["environments"]["prod"]["port"]
    sample_project.inv("prod.start", check=True)

    status, headers, css = get(f"http://127.0.0.1:{port}/static/sample/site.css")
    assert status == 200 and "nginx" in headers.get("Server", "").lower()
    assert "{" in css
    status, headers, page = get(f"http://127.0.0.1:{port}/")
    assert "Hello from the dockyard sample app" in page
    status, _, body = get(f"http://127.0.0.1:{port}/health/")
    health = json.loads(body)
    assert health["env"] == "prod"
    assert health["revision"] == sample_project.git("rev-parse", "HEAD").stdout.strip()  # the image knows its commit
    sample_project.inv("prod.down", "--volumes", check=True)


def test_start_times_out_with_the_failing_services_logs(engine, sample_project):
    env_file = sample_project.root / "environments/dev/.env"
    env_file.write_text(env_file.read_text() + "SAMPLE_FAIL_HEALTH=1\n")
    result = sample_project.inv("dev.start", "--timeout", "8")
    assert result.returncode == 6
    assert "not healthy after 8s (last answer: HTTP 503)" in result.stderr
    assert "log lines of" in result.stderr  # the app's own log tail, to see why
    assert "Traceback (most recent call last)" not in result.stderr.split("log lines of")[0]


def test_start_fails_fast_on_a_route_the_app_does_not_have(engine, sample_project):
    sample_project.configure({"dockyard": {"health_path": "/no-such-route/"}})
    result = sample_project.inv("dev.start", "--timeout", "60")
    assert result.returncode == 6
    first = result.stderr.strip().splitlines()[-1]
    assert ("answered HTTP 404 on /no-such-route/ (dockyard.health_path): set health_path to a route your app "
            "answers") in first
    sample_project.inv("dev.down", check=True)
