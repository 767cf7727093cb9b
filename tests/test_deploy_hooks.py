"""Hooks around a deploy and the notification when it ends (dockyard/core/hooks.py), with real hook processes, a
real local HTTP server as the webhook, and real ECS deploys against moto."""
from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from test_ecs_deploy import audit_records, ecs  # noqa: F401 - ecs is the fixture

from dockyard.core.hooks import DeployEvents, DeployFacts, HookFailed, HooksSettings, notification

SECRET = "hook-secret-value-5b1f"
WEBHOOK_SECRET = "T000/B000/webhook-token-9c2e"


def settings(folder: Path, **changes) -> HooksSettings:
    values = dict(dir=folder, timeout=20, pass_env=(), env_file=False, webhook_env="DOCKYARD_WEBHOOK_URL",
                  webhook_format="slack", webhook_timeout=5)
    values.update(changes)
    return HooksSettings(**values)


def hook(folder: Path, name: str, body: str, *, executable: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755 if executable else 0o644)
    return path


class Webhook:
    """A loopback HTTP server recording each POST body; answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        self.raw: list[bytes] = []
        self.paths: list[str] = []
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                webhook.raw.append(data)
                webhook.paths.append(self.path)
                webhook.bodies.append(json.loads(data))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{WEBHOOK_SECRET}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> "Webhook":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- DeployEvents with real hook processes ----------------------------------------------------------------------


def events_for(tmp_path: Path, said: list[str], environ: dict[str, str], **changes) -> DeployEvents:
    return DeployEvents(settings(tmp_path / "hooks", **changes), tmp_path, say=said.append, warn=said.append,
                        env_values=lambda: {"DJANGO_SECRET_KEY": SECRET}, environ=environ)


def test_a_hook_gets_the_facts_and_a_clean_environment(tmp_path):
    hook(tmp_path / "hooks", "pre-deploy", f"env > {tmp_path}/seen")
    said: list[str] = []
    environ = {"PATH": os.environ["PATH"], "HOME": "/root", "DOCKYARD_REGISTRY_PASSWORD": SECRET,
               "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_PROFILE": "shop", "DOCKYARD_WEBHOOK_URL": "http://x/" + SECRET}
    events = events_for(tmp_path, said, environ, pass_env=("AWS_PROFILE",))
    events.before(DeployFacts(action="deploy", environment="prod", target="ecs", version="1.2.4", actor="ci@runner"))
    seen = dict(line.split("=", 1) for line in (tmp_path / "seen").read_text().splitlines() if "=" in line)
    assert seen["DOCKYARD_ACTION"] == "deploy" and seen["DOCKYARD_ENVIRONMENT"] == "prod"
    assert seen["DOCKYARD_TARGET"] == "ecs" and seen["DOCKYARD_VERSION"] == "1.2.4"
    assert seen["DOCKYARD_ACTOR"] == "ci@runner" and seen["DOCKYARD_RESULT"] == ""
    assert seen["AWS_PROFILE"] == "shop" and seen["HOME"] == "/root"  # asked for by name; the base
    assert SECRET not in (tmp_path / "seen").read_text()  # no password, no AWS key, no webhook, no .env
    assert said[0] == "==> hook pre-deploy: hooks/pre-deploy"


def test_env_file_true_gives_the_hook_the_env_files_values(tmp_path):
    hook(tmp_path / "hooks", "post-deploy", f"echo \"$DJANGO_SECRET_KEY\" > {tmp_path}/seen")
    events = events_for(tmp_path, [], {"PATH": os.environ["PATH"]}, env_file=True)
    assert events.run("post-deploy", DeployFacts(action="deploy", environment="prod", target="ssh"))
    assert (tmp_path / "seen").read_text().strip() == SECRET


def test_a_failing_pre_hook_raises_with_exit_3_and_its_output_is_shown(tmp_path):
    hook(tmp_path / "hooks", "pre-deploy", "echo checking the change window; echo closed >&2; exit 4")
    said: list[str] = []
    events = events_for(tmp_path, said, {"PATH": os.environ["PATH"]})
    with pytest.raises(HookFailed) as failed:
        events.before(DeployFacts(action="deploy", environment="prod", target="ecs"))
    assert failed.value.exit_code == 3
    assert str(failed.value).startswith("hook pre-deploy exited 4: nothing was changed")
    assert "    pre-deploy | checking the change window" in said and "    pre-deploy | closed" in said


def test_a_pre_hook_that_hangs_is_stopped_at_the_timeout(tmp_path):
    hook(tmp_path / "hooks", "pre-rollback", "sleep 30")
    events = events_for(tmp_path, [], {"PATH": os.environ["PATH"]}, timeout=1)
    with pytest.raises(HookFailed, match=r"did not finish within 1s \(hooks.timeout\)"):
        events.before(DeployFacts(action="rollback", environment="prod", target="ssh"))


def test_a_hook_that_is_not_executable_is_refused_before_anything_runs(tmp_path):
    hook(tmp_path / "hooks", "on-failure", "true", executable=False)
    hook(tmp_path / "hooks", "pre-deploy", f"touch {tmp_path}/ran")
    events = events_for(tmp_path, [], {"PATH": os.environ["PATH"]})
    with pytest.raises(HookFailed, match=r"hook hooks/on-failure is not an executable file: `chmod \+x` it"):
        events.before(DeployFacts(action="deploy", environment="prod", target="ecs"))
    assert not (tmp_path / "ran").exists()


def test_a_failing_post_hook_and_a_failing_webhook_are_warnings_only(tmp_path):
    hook(tmp_path / "hooks", "post-deploy", "exit 2")
    said: list[str] = []
    with Webhook(status=500) as webhook:
        events = events_for(tmp_path, said, {"PATH": os.environ["PATH"], "DOCKYARD_WEBHOOK_URL": webhook.url})
        events.after(DeployFacts(action="deploy", environment="prod", target="ecs", result="succeeded"))
    assert "warning: hook post-deploy exited 2 (the deploy itself ended: succeeded)" in said
    assert "warning: the notification to $DOCKYARD_WEBHOOK_URL was answered HTTP 500; the deploy itself ended: " \
           "succeeded" in said
    assert len(webhook.bodies) == 1
    assert not any(WEBHOOK_SECRET in line for line in said)


def test_an_unreachable_webhook_is_a_warning_and_never_shows_the_url(tmp_path):
    said: list[str] = []
    from conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/{WEBHOOK_SECRET}"
    events = events_for(tmp_path, said, {"PATH": os.environ["PATH"], "DOCKYARD_WEBHOOK_URL": url})
    assert events.notify(DeployFacts(action="deploy", environment="prod", target="ecs", result="failed",
                                     exit_code=6)) is False
    assert said == ["warning: the notification to $DOCKYARD_WEBHOOK_URL failed (URLError); the deploy itself "
                    "ended: failed"]


def test_the_slack_body_has_text_and_fields_and_json_has_the_facts():
    facts = DeployFacts(action="deploy", environment="prod", target="eb", version="1.2.4", previous="1.2.3",
                        actor="ci@runner", result="rolled_back", exit_code=11, url="http://shop.example/",
                        message="health failed")
    slack = notification(facts, "slack")
    assert slack["text"] == ("❌ deploy of 1.2.4 to prod (eb): rolled_back, by ci@runner <http://shop.example/>: "
                             "health failed")
    fields = {f["title"]: f["value"] for f in slack["attachments"][0]["fields"]}
    assert fields["previous"] == "1.2.3" and fields["result"] == "rolled_back"
    assert notification(facts, "json") == slack["dockyard"] and slack["dockyard"]["exit_code"] == 11


# --- a real deploy: ecs.deploy and inv deploy against moto ---------------------------------------------------


def with_hooks(ecs, tmp_path: Path) -> Path:  # noqa: F811
    folder = ecs.project.root / "hooks"
    for name in ("pre-deploy", "post-deploy", "on-failure"):
        hook(folder, name, f"env | grep '^DOCKYARD_' | sort > {tmp_path}/{name}.env")
    env_file = ecs.project.root / "environments" / "prod" / ".env"
    env_file.write_text(env_file.read_text() + f"\nSHOP_API_TOKEN={SECRET}\n")
    return folder


def seen(tmp_path: Path, name: str) -> dict[str, str]:
    path = tmp_path / f"{name}.env"
    return dict(line.split("=", 1) for line in path.read_text().splitlines()) if path.exists() else {}


@pytest.mark.parametrize("task", ["ecs.deploy", "deploy"])
def test_an_ecs_deploy_runs_its_hooks_and_notifies_once_with_no_secret(ecs, tmp_path, task):  # noqa: F811
    with_hooks(ecs, tmp_path)
    if task == "deploy":  # the sample's prod goes to Elastic Beanstalk
        ecs.project.configure({"dockyard": {"environments": {"prod": {"target": "ecs"}}}})
    with Webhook() as webhook:
        result = ecs.inv(task, "--version", "1.2.4", "--no-wait", env={"DOCKYARD_WEBHOOK_URL": webhook.url,
                                                                        "DOCKYARD_ACTOR": "alice"})
    assert result.returncode == 0, result.stdout + result.stderr
    pre, post = seen(tmp_path, "pre-deploy"), seen(tmp_path, "post-deploy")
    assert pre["DOCKYARD_VERSION"] == "1.2.4" and pre["DOCKYARD_RESULT"] == "" and pre["DOCKYARD_TARGET"] == "ecs"
    assert post["DOCKYARD_RESULT"] in ("started", "succeeded") and post["DOCKYARD_EXIT_CODE"] == "0"
    # from this run's audit record: what ran before, as ECS names it (the task-definition revision)
    assert post["DOCKYARD_PREVIOUS_VERSION"] == f"{ecs.project.app}:1", post
    assert post["DOCKYARD_IMAGE"].endswith(":1.2.4") and post["DOCKYARD_ACTOR"].startswith("alice@")
    assert seen(tmp_path, "on-failure") == {}
    assert len(webhook.bodies) == 1, webhook.bodies
    body = webhook.bodies[0]
    assert body["dockyard"]["version"] == "1.2.4" and body["dockyard"]["environment"] == "prod"
    assert body["text"].startswith("✅ deploy of 1.2.4 to prod (ecs)")
    for text in (result.stdout, result.stderr, webhook.raw[0].decode()):
        assert SECRET not in text and WEBHOOK_SECRET not in text
    assert "==> notified $DOCKYARD_WEBHOOK_URL (HTTP 200)" in result.stdout


def test_a_failing_pre_deploy_hook_changes_nothing_and_a_failed_deploy_runs_on_failure(ecs, tmp_path):  # noqa: F811
    folder = with_hooks(ecs, tmp_path)
    hook(folder, "pre-deploy", "echo the change window is closed; exit 1")
    with Webhook() as webhook:
        refused = ecs.inv("ecs.deploy", "--version", "1.2.4", "--no-wait",
                          env={"DOCKYARD_WEBHOOK_URL": webhook.url})
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("dockyard: hook pre-deploy exited 1: nothing was "
                                                              "changed")
    assert "pre-deploy | the change window is closed" in refused.stdout
    assert ecs.active() == [1] and ecs.service()["taskDefinition"].endswith(":1")  # nothing registered or updated
    assert audit_records(ecs) == []  # nothing started, so nothing to record
    assert webhook.bodies == []  # nothing ran, nothing to notify

    hook(folder, "pre-deploy", "true")
    with Webhook() as webhook:
        failed = ecs.inv("ecs.deploy", "--version", "1.2.4", env={"DOCKYARD_WEBHOOK_URL": webhook.url})
    assert failed.returncode == 11, failed.stdout + failed.stderr  # moto never makes it steady: rolled back
    after = seen(tmp_path, "on-failure")
    assert after["DOCKYARD_EXIT_CODE"] == "11" and after["DOCKYARD_RESULT"] == "rolled_back", after
    assert seen(tmp_path, "post-deploy") == {}
    assert [b["dockyard"]["result"] for b in webhook.bodies] == ["rolled_back"]


def test_a_dry_run_names_the_hooks_and_runs_none(ecs, tmp_path):  # noqa: F811
    with_hooks(ecs, tmp_path)
    with Webhook() as webhook:
        dry = ecs.inv("ecs.deploy", "--version", "1.2.4", "--dry-run", env={"DOCKYARD_WEBHOOK_URL": webhook.url})
    assert dry.returncode == 0, dry.stderr
    assert "(dry run) hooks that would run around it: pre-deploy, post-deploy, on-failure" in dry.stdout
    assert "(dry run) the end would be notified to $DOCKYARD_WEBHOOK_URL" in dry.stdout
    assert seen(tmp_path, "pre-deploy") == {} and webhook.bodies == []


def test_bad_hooks_settings_are_one_line(ecs):  # noqa: F811
    ecs.project.configure({"dockyard": {"hooks": {"webhook_format": "teams"}}})
    bad = ecs.inv("ecs.deploy", "--version", "1.2.4", "--dry-run")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "dockyard.hooks.webhook_format: expected one of 'slack', 'json', got 'teams'" in bad.stderr
    ecs.project.configure({"dockyard": {"hooks": {"webhook_format": "slack", "on_success": "x"}}})
    bad = ecs.inv("ecs.deploy", "--version", "1.2.4", "--dry-run")
    assert bad.returncode == 2 and "dockyard.hooks.on_success" in bad.stderr, bad.stderr


def test_a_failing_pre_build_hook_stops_image_build_before_docker_builds(engine, sample_project, tmp_path):
    hook(sample_project.root / "hooks", "pre-build", f"env | grep '^DOCKYARD_' > {tmp_path}/build.env; exit 7")
    built = sample_project.inv("image.build", "prod")
    assert built.returncode == 3, built.stdout + built.stderr
    assert built.stderr.strip().splitlines()[-1].startswith("dockyard: hook pre-build exited 7: nothing was changed")
    assert "Building " not in built.stdout + built.stderr  # docker build never started
    facts = dict(line.split("=", 1) for line in (tmp_path / "build.env").read_text().splitlines())
    assert facts["DOCKYARD_ACTION"] == "build" and facts["DOCKYARD_ENVIRONMENT"] == "prod"
    assert facts["DOCKYARD_IMAGE"].startswith(sample_project.repository + ":")
