"""Local docker compose stack of one environment: start, stop, logs, shell, run, test, build."""
from __future__ import annotations

import shlex
import sys
from typing import Any, Mapping

from invoke import Collection, task

from . import environment_collection
from .common import Project, edge, exit_like


def _service(name: str):
    def open_stack(c: Any):  # -> StackService
        from ..stacks import StackService

        project = Project(c)
        return StackService(project, project.environment(name))

    return open_stack


def stack_tasks(env_name: str) -> list:
    """The ``<env>.*`` tasks, bound to one environment."""
    open_stack = _service(env_name)

    @task(help={"build": "rebuild the app image first, even if it exists",
                "timeout": "seconds to wait for the health check (default: the environment's health_timeout)",
                "migrate": "then run the environment's release_command once (as `release-command` does)"})
    @edge
    def start(c, build=False, timeout=0, migrate=False):
        """Start the stack (building the image if missing) and wait until the app is healthy."""
        stack = open_stack(c)
        url = stack.start(build=build, timeout=timeout or None, migrate=migrate)
        stack.say(f"{env_name} is up: {url}" if url else f"{env_name} is up")

    @task
    @edge
    def stop(c):
        """Stop the stack's containers (they are kept; `down` removes them)."""
        compose = open_stack(c).compose()
        compose.run(compose.project.stop(), capture=False)

    @task
    @edge
    def restart(c):
        """Restart the stack's containers."""
        stack = open_stack(c)
        compose = stack.prepare()
        compose.run(compose.project.restart(), capture=False)

    @task(help={"volumes": "also remove the stack's volumes (its data)"})
    @edge
    def down(c, volumes=False):
        """Stop and remove the stack's containers and network."""
        stack = open_stack(c)
        compose = stack.compose()
        compose.run(compose.project.down(volumes=volumes), capture=False)

    @task
    @edge
    def ps(c):
        """List the stack's containers."""
        stack = open_stack(c)
        compose = stack.compose()
        compose.run(compose.project.ps(), capture=False, echo=False)

    @task(help={"follow": "keep streaming new lines", "service": "only this service's logs",
                "tail": "lines to show from the end of each log (default: all)"})
    @edge
    def logs(c, follow=False, service="", tail=-1):
        """Show the stack's logs."""
        stack = open_stack(c)
        compose = stack.compose()
        command = compose.project.logs(follow=follow, tail=None if tail < 0 else tail,
                                       services=[service] if service else [])
        compose.run(command, capture=False, echo=False, check=not follow)

    @task(help={"service": "service to enter (default: the app service)"})
    @edge
    def shell(c, service=""):
        """Open an interactive shell in the running app container (docker compose exec)."""
        stack = open_stack(c)
        compose = stack.compose()
        service = service or stack.env.app_service
        if service == stack.env.app_service:
            stack.app_container()  # refuses, with the command to start it, when the app is not running
        # Without a terminal (piped commands, CI) compose must not allocate a TTY.
        tty = sys.stdin.isatty()
        command = stack.exec_command(compose, service, [stack.env.shell], tty=tty)
        exit_like(compose.run(command, capture=False, interactive=True, check=False))

    @task(help={"cmd": "the command to run, quoted as one argument", "service": "service (default: the app)"})
    @edge
    def run(c, cmd, service=""):
        """Run a one-off command in a new container of the stack, removed afterwards."""
        stack = open_stack(c)
        compose = stack.prepare()
        service = service or stack.env.app_service
        argv = shlex.split(cmd)
        exit_like(compose.run(stack.run_command(compose, service, argv, tty=False), capture=False, check=False))

    @task(help={"cmd": "test command (default: the environment's test_command)"})
    @edge
    def test(c, cmd=""):
        """Run the app's tests inside the stack (in the running app container when it runs)."""
        stack = open_stack(c)
        compose = stack.prepare()
        argv = shlex.split(cmd or stack.env.test_command)
        if stack.containers(stack.env.app_service, running_only=True):
            command = stack.exec_command(compose, stack.env.app_service, argv, tty=False)
        else:
            command = stack.run_command(compose, stack.env.app_service, argv, tty=False)
        result = compose.run(command, capture=False, check=False)
        exit_like(result, f"dockyard: tests failed (exit {result.returncode})")

    @task(name="release-command")
    @edge
    def release_command(c):
        """Run the environment's release_command (migrations) once, in a one-off app container; exit 10 on failure."""
        from ..core.actor import actor
        from ..core.hooks import DeployFacts
        from ..errors import DockyardError

        stack = open_stack(c)
        # on the deploy targets the release command ends as part of the deploy, whose notification says how
        events = stack.project.deploy_events(stack.env)
        facts = DeployFacts(action="release-command", environment=env_name, target="local", actor=actor(),
                            result="succeeded")
        try:
            text = stack.release_command()
        except DockyardError as exc:
            facts.result, facts.exit_code, facts.message = "failed", exc.exit_code, exc.message
            events.notify(facts)
            raise
        stack.say(f"the release command {text!r} succeeded")
        events.notify(facts)

    @task(help={"no_cache": "build without the layer cache", "pull": "pull newer base images first"})
    @edge
    def build(c, no_cache=False, pull=False):
        """Build the stack's app image (same as `inv image.build ENV`)."""
        stack = open_stack(c)
        image = stack.build(no_cache=no_cache, pull=pull)
        stack.say(f"built {image.id[7:19]}: {', '.join(image.tags)}")

    return [start, stop, restart, down, ps, logs, shell, run, test, release_command, build]


def attach(ns: Collection, environments: Mapping[str, Mapping[str, Any]]) -> None:
    for name, entry in environments.items():
        if entry.get("compose"):
            collection = environment_collection(ns, name)
            for t in stack_tasks(name):
                collection.add_task(t)
