"""Elastic Beanstalk: bundles, versions, deploys with a wait that never lies, rollback and blue/green."""
from __future__ import annotations

from typing import Any, Mapping

from invoke import Collection, task

from ..eb.settings import PLATFORMS
from .common import Project, edge, table, write_output
from .flags import OneOf, OutputFile, Whole

ENV_HELP = "environment to act on (its target must be eb; default prod)"


def _service(c: Any, env: str):
    from ..eb.service import EbService

    return EbService(Project(c), env)


@task(help={"version": "release to deploy (X.Y.Z, X.Y.Z-rc.N or its git tag; default: the latest release tag)",
            "env": ENV_HELP,
            "dry_run": "show the bundle, the Dockerrun diff and the API calls; change nothing",
            "no_wait": "return once the update has started",
            "timeout": "seconds to wait for Ready and health (default: eb.timeout)",
            "no_rollback": "leave a failed version in place instead of rolling back",
            "force_unlock": "clear a stale deploy lock first",
            "skip_release_command": "emergencies only: a bundle without the environment's release_command (label "
                                    "<version>-<sha>-no-release-command; the audit record says it was skipped)"})
@edge
def deploy(c, version="", env="prod", dry_run=False, no_wait=False, timeout=0, no_rollback=False,
           force_unlock=False, skip_release_command=False):
    """Deploy a release to Elastic Beanstalk (bundle, S3, version, update, wait, roll back on failure)."""
    from .targets import run_target

    run_target(c, "eb", "deploy", env, {"version": version or "", "dry_run": dry_run, "timeout": timeout,
                                        "no_wait": no_wait, "no_rollback": no_rollback, "force_unlock": force_unlock,
                                        "skip_release_command": skip_release_command})


@task(help={"env": ENV_HELP})
@edge
def status(c, env="prod"):
    """Show the EB environment: status, version, health and its causes."""
    show_status(_service(c, env))


def show_status(service: Any):  # -> EnvironmentState
    """Print the environment's state and health causes (``eb.status`` and ``inv status``); returns the state."""
    state, title, causes = service.status()
    service.say(table([("ENVIRONMENT", "STATUS", "HEALTH", "VERSION", "CNAME"),
                       (state.name, state.status, f"{state.health} {state.health_status}".strip(),
                        state.version_label or "-", state.cname or "-")]))
    if causes:
        service.say(title)
        for cause in causes:
            service.say(f"  {cause}")
    service.say(f"lock: {service.lock_status()}")
    journal = service.journal_line()
    if journal:
        service.say(f"journal: {journal}")
    return state


@task(help={"env": ENV_HELP, "follow": "keep printing new events (until --timeout, --until-ready or Ctrl-C)",
            "count": "how many recent events to show",
            "timeout": "with --follow: stop after this many seconds (default 0: no limit)",
            "until_ready": "with --follow: stop once the environment is Ready (e.g. after `deploy --no-wait`)"})
@edge(count=Whole(minimum=1))
def events(c, env="prod", follow=False, count=20, timeout=0, until_ready=False):
    """Show the EB environment's recent events (--follow to stream them)."""
    _service(c, env).follow_events(count=int(count), follow=follow, timeout=float(timeout), until_ready=until_ready)


@task(help={"env": ENV_HELP})
@edge
def versions(c, env="prod"):
    """List application versions: label, date, which is live, which failed."""
    service = _service(c, env)
    client = service.client
    client.require_application(service.application)
    live = {}
    for name in filter(None, (service.target.name, service.target.twin)):
        state = client.environment(service.application, name)
        if state is not None:
            live.setdefault(state.version_label, []).append(name)
    outcomes: dict[str, str] = {}
    if service.eb.bucket:
        for record in reversed(service.audit().records(env)):
            outcomes[record.label] = record.result
    rows = [("LABEL", "CREATED", "LIVE", "LAST RESULT", "DESCRIPTION")]
    for version in sorted(client.versions(service.application), key=lambda v: str(v.created), reverse=True):
        rows.append((version.label, str(version.created)[:19], ",".join(live.get(version.label, [])) or "-",
                     outcomes.get(version.label, "-"), version.description[:50]))
    service.say(table(rows))


@task(help={"label": "version label (or release X.Y.Z[-pre]) to return to (default: the previous good one from the "
                     "audit records)",
            "env": ENV_HELP, "timeout": "seconds to wait (default: eb.timeout)",
            "dry_run": "show what would happen"})
@edge
def rollback(c, label="", env="prod", timeout=0, dry_run=False):
    """Put an earlier version back on the environment and wait for it to be healthy."""
    from .targets import run_target

    run_target(c, "eb", "rollback", env, {"to": label or "", "timeout": timeout, "dry_run": dry_run})


@task(help={"env": ENV_HELP, "dry_run": "only show the diff (values masked)",
            "timeout": "seconds to wait for the update (default: eb.timeout)"})
@edge
def setenv(c, env="prod", dry_run=False, timeout=0):
    """Set the EB environment properties from environments/<env>/.env (diff shown, values masked)."""
    _service(c, env).setenv(dry_run=dry_run, timeout=float(timeout))


@task(help={"version": "release to deploy to the idle twin (default: the latest)", "env": ENV_HELP,
            "timeout": "seconds to wait (default: eb.timeout)", "dry_run": "show what would happen"})
@edge
def swap(c, version="", env="prod", timeout=0, dry_run=False):
    """Blue/green: deploy to the idle twin, wait for health, smoke-test, then swap CNAMEs."""
    _service(c, env).swap(version, timeout=float(timeout), dry_run=dry_run)


@task(help={"version": "release to bundle (default: the latest)", "env": ENV_HELP,
            "output": "zip file to write (default: <label>.zip here)",
            "platform": "v1, v2 or compose (default: the environment's)"})
@edge(output=OutputFile(), platform=OneOf(*PLATFORMS))
def bundle(c, version="", env="prod", output="", platform=""):
    """Write the deploy bundle to a zip file for inspection."""
    from pathlib import Path

    from ..eb.bundle import bundle_path, describe

    service = _service(c, env)
    release = service.release(version)
    made = service.bundle(release, platform)
    # Not in the repository by default: a zip there dirties the tree, and the next `release` refuses.
    path = Path(output) if output else bundle_path(service.settings.app, release.label)
    write_output(path, made.zip_bytes())
    service.say(describe(made))
    service.say(f"wrote {path} ({path.stat().st_size} bytes, sha256 {made.digest[:12]})")


@task(help={"env": ENV_HELP,
            "format": "auths ({auths: {host: {auth}}}, the default: what the AL2/AL2023 platforms read) or legacy "
                      "({host: {auth, email}}, the retired Amazon Linux AMI's)",
            "dry_run": "say what would be uploaded"})
@edge(format=OneOf("legacy", "auths"))
def dockercfg(c, env="prod", format="", dry_run=False):  # noqa: A002 - the option's name
    """Write the registry's dockercfg and upload it to the bucket, private and encrypted."""
    _service(c, env).write_dockercfg(fmt=format, dry_run=dry_run)


@task(help={"env": ENV_HELP})
@edge
def policies(c, env="prod"):
    """Print least-privilege IAM policies for the CI user and the instance profile."""
    from ..eb.service import policies_json

    service = _service(c, env)
    service.say(policies_json(service.settings, service.eb))


@task(help={"version": "release to run (default: the latest)", "env": ENV_HELP,
            "port": "loopback port to publish port 80 on (default: the environment's port)",
            "down": "stop and remove what a previous eb.local started"})
@edge(port=Whole(minimum=1, maximum=65535))
def local(c, version="", env="prod", port=0, down=False):
    """Run the v2 or compose bundle on the local Docker engine, to prove it before it ships."""
    from ..eb.local import run_local

    service = _service(c, env)
    run_local(service, version, port=int(port) or service.env.port, down=down)


def attach(ns: Collection, environments: Mapping[str, Mapping[str, Any]]) -> None:
    # The root `deploy` (dockyard/tasks/deploy.py) follows the environment's target; `eb.deploy` is this one.
    ns.add_collection(Collection("eb", deploy, status, events, versions, rollback, setenv, swap, bundle, dockercfg,
                                 policies, local))
