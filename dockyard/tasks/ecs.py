"""Amazon ECS: deploy a release to a service (diff, register, update, wait, roll back), status, rollback, render,
policies."""
from __future__ import annotations

from typing import Any, Mapping

from invoke import Collection, task

from .common import Project, edge, table, write_output
from .flags import OutputFile

ENV_HELP = "environment to act on (its ECS cluster/service come from dockyard.ecs; default prod)"


def _service(c: Any, env: str):
    from ..ecs.service import EcsService

    return EcsService(Project(c), env)


@task(help={"version": "release to deploy (X.Y.Z, X.Y.Z-rc.N or its git tag; default: the latest release tag)",
            "env": ENV_HELP,
            "dry_run": "print the task-definition diff and the plan; register and change nothing",
            "timeout": "seconds to wait for the deployment (default: ecs.timeout)",
            "no_wait": "return once the service is updated (no wait, no rollback)",
            "no_rollback": "leave a failed deployment in place instead of rolling back",
            "force_unlock": "clear a stale deploy lock first",
            "skip_release_command": "emergencies only: do not run the environment's release_command (the audit "
                                    "record says it was skipped)"})
@edge
def deploy(c, version="", env="prod", dry_run=False, timeout=0, no_wait=False, no_rollback=False,
           force_unlock=False, skip_release_command=False):
    """Deploy a release to the ECS service: new task-definition revision, release command, update, wait."""
    from .targets import run_target

    run_target(c, "ecs", "deploy", env, {"version": version or "", "dry_run": dry_run, "timeout": timeout,
                                         "no_wait": no_wait, "no_rollback": no_rollback, "force_unlock": force_unlock,
                                         "skip_release_command": skip_release_command})


@task(help={"version": "release to compare with (default: the latest release tag)", "env": ENV_HELP})
@edge
def diff(c, version="", env="prod"):
    """Show how deploying VERSION would change the service's task definition."""
    _service(c, env).diff(version or "")


@task(help={"env": ENV_HELP, "events": "how many recent service events to show"})
@edge
def status(c, env="prod", events=5):
    """Show the ECS service: counts, task definition and images, deployments, recent events."""
    show_status(_service(c, env), int(events))


def show_status(service: Any, events: int = 5):  # -> (ServiceState, TaskDefinition)
    """Print the service's state (``ecs.status`` and ``inv status``); returns it with the live task definition."""
    from ..clients.ecs import short_arn

    state = service.state()
    definition = service.client.task_definition(state.task_definition)
    service.say(f"{service.target.where}: {state.status}, {state.running}/{state.desired} running, "
                f"{state.pending} pending, task definition {short_arn(state.task_definition)}")
    for name, image in sorted(definition.images().items()):
        service.say(f"  container {name}: {image}")
    rows = [("DEPLOYMENT", "STATUS", "TASK DEFINITION", "RUNNING", "DESIRED", "ROLLOUT")]
    rows += [(d.id, d.status, short_arn(d.task_definition), str(d.running), str(d.desired), d.rollout_state or "-")
             for d in state.deployments]
    service.say(table(rows))
    service.say(f"  lock: {service.lock_status()}")
    journal = service.journal_line()
    if journal:
        service.say(f"  journal: {journal}")
    for event in state.events[: int(events)]:
        service.say(f"  {event.created:%Y-%m-%d %H:%M:%S} {event.message}" if event.created else f"  {event.message}")
    return state, definition


@task(help={"revision": "revision number or family:revision (default: the last successful deploy before the live "
                        "one, from the audit records; with no records, the ACTIVE revision before the live one)",
            "env": ENV_HELP, "dry_run": "show the diff and the plan only",
            "timeout": "seconds to wait (default: ecs.rollback_timeout)"})
@edge
def rollback(c, revision="", env="prod", dry_run=False, timeout=0):
    """Point the ECS service back at an earlier task-definition revision and wait for it."""
    from .targets import run_target

    run_target(c, "ecs", "rollback", env, {"to": str(revision or ""), "dry_run": dry_run, "timeout": timeout})


@task(help={"version": "release whose image the app containers get (default: the latest release tag)",
            "env": "environment whose compose file is converted (default prod)",
            "output": "write the JSON here instead of printing it"})
@edge(output=OutputFile())
def render(c, version="", env="prod", output=""):
    """Print a task definition (JSON) generated from ENV's compose file, for creating a new ECS service."""
    import json
    from pathlib import Path

    from ..containers import container_definitions
    from ..core.compose import deploy_compose, release_image
    from ..core.versions import configured_release
    from ..ecs.planner import render_task_definition

    project = Project(c)
    settings = project.settings
    environment = project.environment(env)
    image = release_image(settings, configured_release(settings, project.git, version))
    target = settings.ecs.target(env)
    compose = deploy_compose(settings, environment, image, needed_by="ecs.render converts that compose file",
                             port=target.host_port)
    converted = container_definitions(compose.model, images=compose.images, project_root=settings.root,
                                      compose_dir=compose.compose_dir, default_memory=target.default_memory,
                                      named_volumes=target.volumes, volumes_setting="dockyard.ecs.volumes")
    text = json.dumps(render_task_definition(target.family, converted), indent=2) + "\n"
    for change in converted.changes:
        project.warn(f"warning: {change}")
    for service, files in sorted(converted.env_files.items()):
        project.warn(f"note: {service} reads {', '.join(files)}: not copied into the task definition (secrets); "
                     "set dockyard.ecs.env_file: true to send it at deploy time")
    if converted.shipped:
        project.warn("note: host paths " + ", ".join(sorted(converted.shipped)) + " must exist on the container "
                     "instances (or bake those files into an image)")
    if output:
        write_output(Path(output), text)
        project.say(f"wrote {output}")
    else:
        print(text, end="")


@task
@edge
def policies(c):
    """Print least-privilege IAM policies for the deployer and the task execution role (from the settings)."""
    import json

    from ..ecs.policies import policies as ecs_policies

    project = Project(c)
    project.say(json.dumps(ecs_policies(project.settings), indent=2))


def attach(ns: Collection, environments: Mapping[str, Mapping[str, Any]]) -> None:
    ns.add_collection(Collection("ecs", deploy, diff, status, rollback, render, policies))
