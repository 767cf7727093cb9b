"""Deploys over SSH to plain Docker hosts: a health-gated, zero-downtime swap behind a proxy, with lock and audit."""
from __future__ import annotations

from typing import Any, Mapping

from invoke import Collection, task

from . import environment_collection
from .common import Project, edge
from .flags import Whole


def _service(env_name: str):
    def open_service(c: Any):
        from ..staging.service import StagingService

        return StagingService(Project(c), env_name)

    return open_service


def ssh_tasks(env_name: str) -> tuple[list, Collection]:
    """The SSH tasks of one environment, plus its ``accessories`` collection."""
    open_service = _service(env_name)

    @task(name="ssh-deploy", help={
        "version": "image tag to deploy; a release X.Y.Z[-rc.N] or its git tag runs X.Y.Z[-rc.N] "
                   "(default: from CIRCLE_SHA1/GITHUB_SHA/git HEAD via ssh.version_format)",
        "dry_run": "print the plan and change nothing",
        "lock_wait": "seconds to wait when another deploy holds the lock (default: ssh.lock_wait)",
        "limit": "hosts deployed at once (default: ssh.batch_size)",
        "force_unlock": "clear a stale deploy lock first",
        "skip_release_command": "emergencies only: do not run the environment's release_command (audited)"})
    @edge(limit=Whole(minimum=1))
    def ssh_deploy(c, version="", dry_run=False, lock_wait=-1, limit=0, force_unlock=False,
                   skip_release_command=False):
        """Deploy VERSION to every host: pull, release command, start beside the old one, health gate, switch proxy."""
        from .targets import run_target

        run_target(c, "ssh", "deploy", env_name, {"version": version or "", "dry_run": dry_run, "lock_wait": lock_wait,
                                                  "limit": limit, "force_unlock": force_unlock,
                                                  "skip_release_command": skip_release_command})

    @task(help={"version": "version to go back to (default: the previous one, from the audit log)",
                "dry_run": "print the plan and change nothing",
                "lock_wait": "seconds to wait when another deploy holds the lock",
                "limit": "hosts rolled back at once (default: ssh.batch_size)",
                "force_unlock": "clear a stale deploy lock first"})
    @edge(limit=Whole(minimum=1))
    def rollback(c, version="", dry_run=False, lock_wait=-1, limit=0, force_unlock=False):
        """Bring back a retained version (no pull) through the same health gate and proxy switch."""
        from .targets import run_target

        run_target(c, "ssh", "rollback", env_name, {"to": version or "", "dry_run": dry_run, "lock_wait": lock_wait,
                                                    "limit": limit, "force_unlock": force_unlock})

    @task(help={"dry_run": "say what would be done and change nothing"})
    @edge
    def setup(c, dry_run=False):
        """Prepare every host (idempotent): check Docker, app network, front proxy, accessories, state directory."""
        open_service(c).setup(dry_run=dry_run)

    @task
    @edge
    def status(c):
        """Per host: live version and its health, proxy, retained versions, lock holder, last deploys."""
        open_service(c).status()

    @task(help={"follow": "keep streaming from every host, each line prefixed with its host (Ctrl-C ends it)",
                "service": "app (default), proxy, a worker's service (the live version's), an accessory",
                "tail": "lines from the end (default 100; -1: all)",
                "for": "with --follow: stop after this many seconds (default: until Ctrl-C)"})
    @edge(tail=Whole(minimum=-1))
    def logs(c, follow=False, service="", tail=100, for_=-1.0):
        """Show the logs of the live app container (or --service) on every host."""
        open_service(c).logs(follow=follow, service=service, tail=tail, seconds=None if for_ < 0 else for_)

    @task(name="exec", help={"cmd": "command to run, quoted as one argument (run with sh -c)",
                             "all_hosts": "run it on every host (default: the first host only)",
                             "service": "app (default), proxy, a worker's service (the live version's), an accessory",
                             "tty": "interactive (a shell, a console): a terminal on the first host, keys forwarded"})
    @edge
    def exec_(c, cmd, all_hosts=False, service="", tty=False):
        """Run CMD in the running app container (first host, or --all-hosts)."""
        code = open_service(c).exec(cmd, all_hosts=all_hosts, service=service, tty=tty)
        if code:
            from invoke.exceptions import Exit

            raise Exit(code=code)

    @task
    @edge
    def unlock(c):
        """Remove a stale deploy lock (say whose it was)."""
        open_service(c).unlock()

    @task(help={"lines": "lines to show per host (default 20)"})
    @edge(lines=Whole(minimum=1))
    def audit(c, lines=20):
        """Show the audit log of every host: who deployed or rolled back what, when, and how it ended."""
        open_service(c).audit(lines)

    @task(name="start", help={"name": "one accessory (default: all)"})
    @edge
    def accessories_start(c, name=""):
        """Start the accessories (created with their volumes if missing)."""
        open_service(c).accessories("start", [name] if name else [])

    @task(name="stop", help={"name": "one accessory (default: all)"})
    @edge
    def accessories_stop(c, name=""):
        """Stop the accessories (their containers and data are kept)."""
        open_service(c).accessories("stop", [name] if name else [])

    @task(name="logs", help={"name": "one accessory (default: all)"})
    @edge
    def accessories_logs(c, name=""):
        """Show the accessories' last log lines."""
        open_service(c).accessories("logs", [name] if name else [])

    accessories = Collection("accessories", accessories_start, accessories_stop, accessories_logs)
    return [ssh_deploy, rollback, setup, status, logs, exec_, unlock, audit], accessories


def attach(ns: Collection, environments: Mapping[str, Mapping[str, Any]]) -> None:
    """Add the SSH tasks to every environment whose entry says ``target: ssh``.

    When the environment also has a local compose stack, ``<env>.logs`` means the remote hosts' logs (the
    environment *is* those hosts); the stack's own ``logs`` task stays reachable as ``<env>.local-logs``.
    """
    from ..config import deploy_target

    for name, entry in environments.items():
        if deploy_target(entry) != "ssh":
            continue
        collection = environment_collection(ns, name)
        tasks, accessories = ssh_tasks(name)
        for t in tasks:
            if t.name in collection.tasks:
                collection.add_task(collection.tasks.pop(t.name), name=f"local-{t.name}")
            collection.add_task(t)
        collection.add_collection(accessories)
