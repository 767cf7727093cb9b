"""dockyard.static's pure parts: the collect layer's Dockerfile, the front proxy's compose override (merged by the
real Compose), the port it takes over, the staging proxy's location. The engine runs them in test_static_e2e.py."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dockyard.core.static import (PROXY_SERVICE, StaticSettings, collect_dockerfile, published_ports,
                                  render_local_override, supports_reset)
from dockyard.errors import ConfigError
from dockyard.staging.proxy import MOUNT, render_proxy_conf

STATIC = StaticSettings(dir="/srv/app/static", collect="python3 manage.py collectstatic --noinput", url="/assets/",
                        serve="proxy", stacks=("prod",), proxy_image="dockyard-base/nginx:bookworm")


def test_the_collect_layer_runs_as_root_and_gives_the_image_its_user_back():
    assert collect_dockerfile("reg/app:prod", STATIC.collect, "shelf") == (
        "FROM reg/app:prod\nUSER root\nRUN python3 manage.py collectstatic --noinput\nUSER shelf\n")
    assert collect_dockerfile("reg/app:prod", "true", "").splitlines() == ["FROM reg/app:prod", "USER root", "RUN true"]


def test_the_override_moves_the_apps_published_port_to_the_proxy(tmp_path):
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                        timeout=30).returncode != 0:
        pytest.skip("docker compose is not installed")
    base = tmp_path / "compose.yml"
    base.write_text('services:\n  web:\n    image: app\n    ports: ["127.0.0.1:18123:8000"]\n'
                    '  worker:\n    image: app\n')
    model = json.loads(subprocess.run(["docker", "compose", "-f", str(base), "config", "--format", "json"],
                                      capture_output=True, text=True, check=True, timeout=30).stdout)
    ports = published_ports(model, "web", base)
    assert [(p.target, p.published, p.host_ip) for p in ports] == [(8000, "18123", "127.0.0.1")]
    override = tmp_path / "override.yml"
    override.write_text(render_local_override(STATIC, "web", ports, tmp_path / "files", tmp_path / "nginx.conf"))
    merged = json.loads(subprocess.run(
        ["docker", "compose", "-f", str(base), "-f", str(override), "config", "--format", "json"],
        capture_output=True, text=True, check=True, timeout=30).stdout)["services"]
    assert not merged["web"].get("ports")
    proxy = merged[PROXY_SERVICE]
    assert [(p["host_ip"], p["published"], p["target"]) for p in proxy["ports"]] == [("127.0.0.1", "18123", 80)]
    assert {(v["source"], v["target"], v.get("read_only")) for v in proxy["volumes"]} == {
        (str(tmp_path / "files"), "/srv/dockyard-static", True),
        (str(tmp_path / "nginx.conf"), "/etc/nginx/conf.d/default.conf", True)}
    assert "worker" in merged and proxy["image"] == STATIC.proxy_image


def test_an_app_service_that_publishes_nothing_names_the_setting():
    with pytest.raises(ConfigError) as caught:
        published_ports({"services": {"web": {"image": "app"}}}, "web", Path("docker/compose.prod.yml"))
    assert str(caught.value).startswith("docker/compose.prod.yml: service 'web' publishes no port")
    assert "dockyard.static.stacks" in str(caught.value)


def test_the_override_needs_compose_2_24():
    assert [supports_reset(v) for v in ("2.40.3", "2.24.0", "v2.24.1", "2.23.3", "1.29.2", "")] == [
        True, True, True, False, False, False]


def test_the_staging_proxy_serves_the_url_from_its_static_directory_only_when_asked():
    conf = render_proxy_conf(static_url="/assets/")
    assert f"location /assets/ {{\n        alias {MOUNT}/static/;" in conf
    assert "include /etc/nginx/mime.types;" in conf
    assert "location /assets/" not in render_proxy_conf()


def _settings(tmp_path, static: dict):
    from dockyard.config import defaults, parse_settings

    (tmp_path / "compose.yml").write_text("services: {web: {image: app}}\n")
    data = defaults()
    data["app"] = "shop"
    data["static"].update(static)
    data["environments"] = {"dev": {"compose": "compose.yml"}, "prod": {"compose": "compose.yml"},
                            "staging": {"target": "ssh"}}
    data["ssh"]["hosts"] = ["deploy@staging.example.com"]
    return parse_settings(data, root=tmp_path)


def test_serve_app_only_collects(tmp_path):
    settings = _settings(tmp_path, {"dir": "/app/static", "collect": "true", "serve": "app"})
    assert settings.static.collect == "true" and not settings.static.proxied("prod")
    assert settings.ssh.target("staging").static_dir == ""


def test_serve_proxy_fronts_the_listed_stacks_and_staging(tmp_path):
    settings = _settings(tmp_path, {"dir": "/app/static/", "url": "/assets/"})
    assert settings.static.dir == "/app/static"
    assert settings.static.proxied("prod") and not settings.static.proxied("dev")
    target = settings.ssh.target("staging")
    assert (target.static_dir, target.static_url) == ("/app/static", "/assets/")


def test_without_a_dir_nothing_is_done_and_stacks_are_not_checked(tmp_path):
    settings = _settings(tmp_path, {"stacks": ["nowhere"]})
    assert not settings.static.enabled and not settings.static.proxied("nowhere")
    assert settings.ssh.target("staging").static_dir == ""
