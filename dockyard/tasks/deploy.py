"""Deploy, roll back, show and list the history of any environment, by its target (eb, ecs, ssh); --json for CI."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from invoke import Collection, task

from .common import edge
from .flags import Whole

ENV_HELP = ("environment to act on; its target (eb, ecs, ssh) decides how (default: the one environment with a "
            "target, else image.release_env)")
JSON_HELP = "print one JSON object on stdout (result, exit code, versions, timings); human text goes to stderr"
LOCK_WAIT_HELP = "ssh: seconds to wait when another deploy holds the lock (default: ssh.lock_wait)"
LIMIT_HELP = "ssh: hosts at once (default: ssh.batch_size)"


def _run(c: Any, verb: str, env: str, as_json: bool, options: dict[str, Any], defaults: dict[str, Any]) -> None:
    from .targets import run_verb

    given = {name: value for name, value in options.items() if value != defaults[name]}
    run_verb(c, verb, env=env, as_json=as_json, options=options, given=given)


@task(help={"env": ENV_HELP, "json": JSON_HELP,
            "version": "release to deploy (default: eb/ecs the latest release tag; ssh: from the commit)",
            "dry_run": "print the plan and change nothing",
            "no_wait": "eb/ecs: return once the update has started",
            "timeout": "eb/ecs: seconds to wait for the update (default: eb.timeout / ecs.timeout)",
            "no_rollback": "eb/ecs: leave a failed version in place instead of rolling back",
            "force_unlock": "clear a stale deploy lock first",
            "lock_wait": LOCK_WAIT_HELP, "limit": LIMIT_HELP,
            "skip_release_command": "emergencies only: do not run the environment's release_command (audited)"})
@edge(limit=Whole(minimum=1))
def deploy(c, env="", version="", dry_run=False, no_wait=False, timeout=0, no_rollback=False, force_unlock=False,
           lock_wait=-1, limit=0, json=False, skip_release_command=False):
    """Deploy a release to ENV by its target (eb, ecs, ssh): the same code as eb.deploy, ecs.deploy, <env>.ssh-deploy."""
    options = {"version": version, "dry_run": dry_run, "no_wait": no_wait, "timeout": timeout,
               "no_rollback": no_rollback, "force_unlock": force_unlock, "lock_wait": lock_wait, "limit": limit,
               "skip_release_command": skip_release_command}
    _run(c, "deploy", env, json, options, {"version": "", "dry_run": False, "no_wait": False, "timeout": 0,
                                           "no_rollback": False, "force_unlock": False, "lock_wait": -1, "limit": 0,
                                           "skip_release_command": False})


@task(help={"env": ENV_HELP, "json": JSON_HELP,
            "to": "version to go back to (eb: a release or a label; ecs: a release, N or family:N; ssh: a retained "
                  "version; default: the previous good one from the audit records)",
            "dry_run": "print the plan and change nothing",
            "timeout": "eb/ecs: seconds to wait (default: eb.timeout / ecs.rollback_timeout)",
            "force_unlock": "ssh: clear a stale deploy lock first",
            "lock_wait": LOCK_WAIT_HELP, "limit": LIMIT_HELP})
@edge(limit=Whole(minimum=1))
def rollback(c, env="", to="", dry_run=False, timeout=0, force_unlock=False, lock_wait=-1, limit=0, json=False):
    """Put an earlier version back on ENV (eb.rollback, ecs.rollback or <env>.rollback, by its target)."""
    options = {"to": to, "dry_run": dry_run, "timeout": timeout, "force_unlock": force_unlock,
               "lock_wait": lock_wait, "limit": limit}
    _run(c, "rollback", env, json, options, {"to": "", "dry_run": False, "timeout": 0, "force_unlock": False,
                                             "lock_wait": -1, "limit": 0})


@task(help={"env": ENV_HELP, "json": JSON_HELP})
@edge
def status(c, env="", json=False):
    """Show what ENV runs: version, health, where (eb.status, ecs.status or <env>.status, by its target)."""
    _run(c, "status", env, json, {}, {})


@task(help={"env": ENV_HELP, "json": JSON_HELP, "count": "how many records to show (default 20)"})
@edge(count=Whole(minimum=1))
def history(c, env="", count=20, json=False):
    """List ENV's deploys and rollbacks from its audit records, newest first: who, what, when, how it ended."""
    _run(c, "history", env, json, {"count": count}, {"count": 20})


def attach(ns: Collection, environments: Mapping[str, Mapping[str, Any]]) -> None:
    for t in (deploy, rollback, status, history):
        ns.add_task(t)
