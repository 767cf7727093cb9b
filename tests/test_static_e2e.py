"""Static files by configuration alone (dockyard.static): tests/apps/shelf, a Django site with the admin whose
Dockerfile does not collect its static files and whose gunicorn does not serve them.

What a user checks: the admin's stylesheet answers 200 as text/css through the production-like stack (the front
proxy dockyard adds), with the bytes Django ships; the app itself still serves the pages; a setting that is wrong
is one line naming it.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from adopt import APPS, adopt, docker, fill_env_files, http_get, require_images
from conftest import library_path

PYTHON_BASE = "dockyard-base/python:bookworm"
NGINX_BASE = "dockyard-base/nginx:bookworm"
BASE_CSS = "/static/admin/css/base.css"


def fetch(url: str) -> tuple[int, str, str]:
    """Status, Content-Type and body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), ""


@pytest.fixture
def shelf(engine, registry, sshd_host, tmp_path):
    require_images(PYTHON_BASE, NGINX_BASE)
    secrets = {env: {"SHELF_SECRET_KEY": f"shelf-{env}-secret-key-for-tests"} for env in ("dev", "prod", "staging")}
    adopted = adopt("shelf", tmp_path / "shelf", registry=registry, sshd_host=sshd_host, env_values=secrets)
    yield adopted
    adopted.cleanup()
    shutil.rmtree(Path.home() / ".dockyard" / f"{adopted.app}-prod", ignore_errors=True)


@pytest.mark.engine
def test_the_django_admin_stylesheet_answers_through_the_production_like_stack(shelf):
    started = shelf.ok("prod.start")
    assert "Collecting static files into /srv/shelf/static" in started.stdout
    image = f"{shelf.repository}:prod"

    status, kind, css = fetch(shelf.url("prod", BASE_CSS))
    assert status == 200 and kind.startswith("text/css"), (status, kind)
    shipped = docker("run", "--rm", "--entrypoint", "cat", image, "/srv/shelf/static/admin/css/base.css", check=True)
    assert css == shipped.stdout and "DJANGO" in css.upper()
    # The pages still come from the app, through the same port, and link the stylesheet that now answers.
    code, login = http_get(shelf.url("prod", "/admin/login/"))
    assert code == 200 and BASE_CSS in login
    assert fetch(shelf.url("prod", "/static/admin/css/no-such.css"))[0] == 404
    # gunicorn itself serves no static files: the proxy is what answers them.
    web = shelf.containers(f"label=com.docker.compose.project={shelf.app}-prod",
                           "label=com.docker.compose.service=web")[0]["Names"]
    probe = docker("exec", web, "python3", "-c", "import urllib.request as u, urllib.error as e\ntry:\n"
                   f" u.urlopen('http://127.0.0.1:8000{BASE_CSS}')\nexcept e.HTTPError as x:\n print(x.code)")
    assert probe.stdout.strip() == "404", probe
    status, kind, site = fetch(shelf.url("prod", "/static/shelf/site.css"))
    assert (status, kind.split(";")[0], site.splitlines()[0]) == (200, "text/css", "/* shelf 1 */")
    # The collect layer gives the image back its own user.
    user = docker("image", "inspect", "--format", "{{.Config.User}}", image, check=True).stdout.strip()
    assert user == "shelf"
    assert not any("dockyard-uncollected" in tag for tag in shelf.image_tags()), shelf.image_tags()
    assert not shelf.secrets_shown()


@pytest.mark.engine
def test_a_failing_collect_command_is_named_and_moves_no_tag(shelf):
    shelf.ok("image.build", "prod")
    before = docker("image", "inspect", "--format", "{{.Id}}", f"{shelf.repository}:prod", check=True).stdout
    shelf.project.configure({"dockyard": {"static": {"collect": "python3 manage.py no-such-command"}}})
    shelf.project.commit("a collect command that fails")
    failed = shelf.project.inv("image.build", "prod", timeout=600)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("dockyard: dockyard.static.collect failed in ") and "did not change" in last, last
    after = docker("image", "inspect", "--format", "{{.Id}}", f"{shelf.repository}:prod", check=True).stdout
    assert after == before
    assert not any("dockyard-uncollected" in tag for tag in shelf.image_tags()), shelf.image_tags()
    # The build container of the failed command inherits the image's labels: none is left behind.
    assert not docker("ps", "-aq", "--filter", f"label=dev.dockyard.app={shelf.app}").stdout.split()


@pytest.mark.engine
def test_the_staging_proxy_serves_the_static_files_of_the_live_version(shelf):
    shelf.ok("release", "1.0.0")
    shelf.ok("publish", "1.0.0")
    shelf.ok("staging.setup")
    planned = shelf.ok("staging.ssh-deploy", "--version", "1.0.0", "--dry-run")
    assert "copy its static files (/srv/shelf/static) to the directory the proxy serves them from" in planned.stdout
    shelf.ok("staging.ssh-deploy", "--version", "1.0.0")
    status, kind, css = fetch(shelf.url("staging", BASE_CSS))
    assert status == 200 and kind.startswith("text/css") and "DJANGO" in css.upper(), (status, kind)
    assert fetch(shelf.url("staging", "/static/shelf/site.css"))[2].startswith("/* shelf 1 */")
    code, login = http_get(shelf.url("staging", "/admin/login/"))
    assert code == 200 and BASE_CSS in login

    # A second version ships a new stylesheet; the rollback brings the first one back.
    shelf.edit("shelf/static/shelf/site.css", "/* shelf 1 */", "/* shelf 2 */", "a new stylesheet")
    shelf.ok("release", "1.1.0")
    shelf.ok("publish", "1.1.0")
    shelf.ok("staging.ssh-deploy", "--version", "1.1.0")
    assert fetch(shelf.url("staging", "/static/shelf/site.css"))[2].startswith("/* shelf 2 */")
    shelf.ok("staging.rollback")
    assert fetch(shelf.url("staging", "/static/shelf/site.css"))[2].startswith("/* shelf 1 */")
    assert fetch(shelf.url("staging", BASE_CSS))[0] == 200
    assert not shelf.secrets_shown()


# --- bad settings: one line naming the key (no engine) -------------------------------------------------------------


def copy_shelf(dest: Path, change) -> Path:
    shutil.copytree(APPS / "shelf", dest, ignore=shutil.ignore_patterns("__pycache__", ".env"))
    fill_env_files(dest, {})
    data = yaml.safe_load((dest / "invoke.yaml").read_text())
    change(data["dockyard"]["static"])
    (dest / "invoke.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def inv(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], check=False, cwd=root, capture_output=True,
                          text=True,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root), "PYTHONPATH": library_path()},
                          stdin=subprocess.DEVNULL, timeout=120)


@pytest.mark.parametrize("change, line", [
    (lambda s: s.pop("dir"), "dockyard.static.collect: collects into nothing: set dockyard.static.dir to the "
                             "directory the command writes (Django: STATIC_ROOT)"),
    (lambda s: s.update(dir="static"), "dockyard.static.dir: expected an absolute directory inside the image such as "
                                       "/app/staticfiles, got 'static'"),
    (lambda s: s.update(url="/static"), "dockyard.static.url: expected a URL path that starts and ends with '/', "
                                        "such as /static/, got '/static'"),
    (lambda s: s.update(serve="nginx"), "dockyard.static.serve: expected one of 'proxy', 'app', got 'nginx'"),
    (lambda s: s.update(stacks=["qa"]), "dockyard.static.stacks: no environment named 'qa'"),
    (lambda s: s.update(collect="python3 manage.py collectstatic 'unterminated"),
     "dockyard.static.collect: not a shell-style command line (No closing quotation): "
     "\"python3 manage.py collectstatic 'unterminated\""),
], ids=["collect-without-dir", "relative-dir", "url-without-slash", "unknown-serve", "unknown-stack", "bad-collect"])
def test_a_bad_static_setting_is_one_line_naming_it(tmp_path, change, line):
    root = copy_shelf(tmp_path / "shelf", change)
    result = inv(root, "prod.start")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [f"dockyard: {line} (set in invoke.yaml)"]


def test_an_unknown_static_key_is_refused_with_the_nearest_one(tmp_path):
    root = copy_shelf(tmp_path / "shelf", lambda s: s.update(root="/srv/shelf/static"))
    result = inv(root, "prod.start")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dockyard: ") and "dockyard.static.root" in lines[0], lines
