"""``ci.test``: build the testing image, start the services on a private network, wait, run the tests, clean up.

:func:`plan_test_run` turns settings + the current commit into a :class:`TestRun` (names, commands) and a
:class:`~dockyard.plan.Plan`; ``--dry-run`` prints that plan, a real run executes it and always removes what it
started (unless ``keep``).
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..clients.buildx import Builder
from ..clients.docker import DockerClient, build_command
from ..errors import ConfigError, DockyardError
from ..images import BuildSpec, declared_args
from ..plan import ApiCall, Output, Plan, RunCommand, Step
from ..runner import Command, Runner
from . import commands
from .readiness import ProbeOutcome, Readiness


class TestsFailed(DockyardError):
    """The test command exited non-zero; the exit code is the tests' own."""


@dataclass(frozen=True)
class TestRun:
    """Everything one ``ci.test`` run creates, named up front so cleanup can find it."""

    run_id: str
    app: str
    image: str  # <repository>:<short-sha>-testing
    network: str
    services: tuple[Any, ...]  # ServiceSpec
    build: Command
    cache_candidates: tuple[str, ...]
    test_command: str
    setup_command: str
    env: dict[str, str] = field(repr=False)
    reports: Path
    entrypoint: str = "bypass"  # dockyard.command_entrypoint
    buildkit: bool = False  # the testing image is built with BuildKit (``image.builder``)

    def container(self, service: str) -> str:
        return f"{self.run_id}-{service}"

    def service_command(self, svc: Any) -> Command:
        return commands.service_run(name=self.container(svc.name), alias=svc.name, image=svc.image,
                                    network=self.network, env=svc.env, run_id=self.run_id, app=self.app)

    def tests_command(self) -> Command:
        return commands.test_run(name=f"{self.run_id}-tests", image=self.image, network=self.network,
                                 command=self.test_command, env=self.env, run_id=self.run_id, app=self.app,
                                 reports=self.reports, entrypoint=self.entrypoint)

    def setup(self) -> Command:
        return commands.test_run(name=f"{self.run_id}-setup", image=self.image, network=self.network,
                                 command=self.setup_command, env=self.env, run_id=self.run_id, app=self.app,
                                 entrypoint=self.entrypoint)


def testing_tag(repository: str, revision_label: str, suffix: str) -> str:
    return f"{repository}:{revision_label}-{suffix}"


def cache_refs(repository: str, tags: tuple[str, ...], branch: str) -> tuple[str, ...]:
    """Registry images whose layers may seed the build (``{branch}`` is the current branch, made tag-safe)."""
    safe_branch = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in branch)[:128]
    refs = []
    for tag in tags:
        if "{branch}" in tag:
            if not safe_branch:
                continue
            tag = tag.replace("{branch}", safe_branch)
        refs.append(f"{repository}:{tag}")
    return tuple(dict.fromkeys(refs))


def testing_build(ci: Any, compose_build: BuildSpec | None, root: Path) -> BuildSpec:
    """How the testing image is built: ``ci.dockerfile``/``context``/``target`` where set, else as the compose file
    of ``ci.environment`` builds its app service (``compose_build``; None when that environment has none)."""
    if compose_build is None and ci.dockerfile is None and ci.context is None:
        raise ConfigError(f"dockyard.ci.dockerfile: not set, and dockyard.environments.{ci.environment} has no "
                          "compose file to read the build from; set ci.dockerfile (and ci.context)")
    base = compose_build or BuildSpec(context=ci.context or root, dockerfile=None)
    context = ci.context or base.context
    dockerfile = ci.dockerfile or (base.dockerfile if ci.context is None else None)
    spec = BuildSpec(context=context, dockerfile=dockerfile, args=dict(base.args), target=ci.target or base.target)
    named = spec.dockerfile or spec.context / "Dockerfile"
    if not named.is_file():
        key = "dockyard.ci.dockerfile" if ci.dockerfile or ci.context else (
            f"dockyard.environments.{ci.environment}.compose (its app service's build section)")
        raise ConfigError(f"{key}: {named} does not exist; point it at the app's Dockerfile")
    return spec


def testing_build_args(spec: BuildSpec, image_args: Mapping[str, str], ci_args: Mapping[str, str]) -> dict[str, str]:
    """``image.build_args``, then the compose file's args, then ``ci.build_args``; of the first and last only those the
    Dockerfile declares (no "build-args were not consumed" noise)."""
    declared = declared_args((spec.dockerfile or spec.context / "Dockerfile").read_text())
    args = {k: v for k, v in image_args.items() if k in declared}
    args.update(spec.args)
    args.update({k: v for k, v in ci_args.items() if k in declared})
    return args


def new_test_run(settings: Any, ci: Any, revision: Any, branch: str, *, no_cache: bool = False,
                 run_id: str | None = None, compose_build: BuildSpec | None = None, builder: Builder | None = None,
                 secrets: Sequence[str] = (), cache: Sequence[str] = ()) -> TestRun:
    run_id = run_id or f"{settings.app}-ci-{revision.short}-{uuid.uuid4().hex[:4]}".replace(".", "-")
    image = testing_tag(settings.repository, revision.label, ci.tag_suffix)
    spec = testing_build(ci, compose_build, settings.root)
    build_args = testing_build_args(spec, settings.build_args, ci.build_args)
    labels = {commands.APP_LABEL: settings.app, "org.opencontainers.image.revision": revision.sha,
              "dev.dockyard.environment": ci.tag_suffix}
    build = build_command(context=spec.context, dockerfile=spec.dockerfile, tags=(image,), labels=labels,
                          build_args=build_args, target=spec.target, no_cache=no_cache, builder=builder,
                          secrets=secrets, cache=() if no_cache else cache)
    return TestRun(
        run_id=run_id, app=settings.app, image=image, network=f"{run_id}-net", services=ci.services, build=build,
        cache_candidates=() if no_cache else cache_refs(settings.repository, ci.cache_from, branch),
        test_command=ci.test_command, setup_command=ci.setup_command, env=dict(ci.env), reports=ci.reports_dir,
        entrypoint=settings.command_entrypoint, buildkit=builder is not None and builder.is_buildkit,
    )


class TestRunner:
    """Executes a :class:`TestRun` on the local engine."""

    def __init__(self, run: TestRun, runner: Runner, docker: DockerClient, *, ready_timeout: float = 120,
                 say: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep) -> None:
        self.run = run
        self.runner = runner
        self.docker = docker
        self.ready_timeout = ready_timeout
        self.say = say
        self.sleep = sleep

    # --- the plan ------------------------------------------------------------------------------------------
    def plan(self) -> Plan:
        """The steps, as calls of this runner (the ``testrun`` performer) and commands of the ``local`` one."""
        run = self.run
        steps: list[Step] = []
        cache_from: Any = ()
        if run.cache_candidates:
            steps.append(Step("Find layer-cache images (local, else pulled from the registry)",
                              instruction=ApiCall.of("testrun", "find_cache_images", output="cache_images",
                                                     candidates=tuple(run.cache_candidates)),
                              details=run.cache_candidates))
            cache_from = Output("cache_images")
        steps.append(Step(f"Build the testing image {run.image} (never pushed)",
                          instruction=ApiCall.of("testrun", "build_image", cache_from=cache_from),
                          command=run.build,
                          details=("plus --cache-from for each cache image found",) if run.cache_candidates else ()))
        steps.append(Step(f"Create the private network {run.network}",
                          instruction=RunCommand(commands.network_create(run.network, run.run_id, run.app))))
        for svc in run.services:
            steps.append(Step(f"Start {svc.name} ({svc.image})",
                              instruction=ApiCall.of("testrun", "start_service", name=svc.name),
                              command=run.service_command(svc)))
        for svc in run.services:
            if svc.ready:
                steps.append(Step(f"Wait until {svc.name} is ready",
                                  instruction=ApiCall.of("testrun", "wait_until_ready", name=svc.name),
                                  command=commands.probe(run.container(svc.name), svc.ready)))
        if run.setup_command:
            steps.append(Step("Load the schema and fixtures", instruction=ApiCall.of("testrun", "run_setup"),
                              command=run.setup()))
        steps.append(Step("Run the tests", instruction=ApiCall.of("testrun", "run_tests"),
                          command=run.tests_command(), details=(f"reports: {run.reports}",)))
        return Plan(f"ci.test {run.run_id}: afterwards the containers and network are removed", tuple(steps))

    # --- actions ---------------------------------------------------------------------------------------------
    def find_cache_images(self, candidates: Sequence[str]) -> list[str]:
        found: list[str] = []
        for ref in candidates:
            if self.docker.inspect_image(ref) is not None:
                found.append(ref)
                continue
            try:  # bounded by dockyard.registry.stall_timeout, like every pull
                self.docker.pull(ref)
            except DockyardError:
                continue  # a cache image that cannot be had makes a cold build, not a failure
            found.append(ref)
        self.say("      cache images: " + (", ".join(found) or "none found (cold build)"))
        return found

    def build_image(self, cache_from: Sequence[str] = ()) -> None:
        argv = list(self.run.build.argv)
        for ref in cache_from:
            argv[-1:-1] = ["--cache-from", ref]
        if cache_from and not self.run.buildkit and self.docker.inspect_image(self.run.image) is not None:
            # The legacy builder uses only --cache-from images once any is given: keep our own last build too
            # (BuildKit always uses its local cache as well; there --cache-from names registry images only).
            argv[-1:-1] = ["--cache-from", self.run.image]
        build = Command(tuple(argv), env=self.run.build.env, cwd=self.run.build.cwd)
        self.docker.build(build)

    def service(self, name: str) -> Any:
        return next(s for s in self.run.services if s.name == name)

    def start_service(self, name: str) -> None:
        svc = self.service(name)
        if self.docker.inspect_image(svc.image) is None:
            try:
                self.docker.pull(svc.image)
            except DockyardError as exc:
                raise DockyardError(
                    f"service image {svc.image} is not on this engine and could not be pulled ({exc}): "
                    f"run `inv ci.cache.load`, or fix dockyard.ci.services.{svc.name}.image", exit_code=exc.exit_code
                ) from None
        self.runner.run(self.run.service_command(svc))

    def wait_until_ready(self, name: str) -> int:
        svc = self.service(name)
        container = self.run.container(svc.name)

        def probe() -> ProbeOutcome:
            result = self.runner.run(commands.probe(container, svc.ready), check=False, timeout=30)
            return ProbeOutcome(result.ok, result.stdout + result.stderr)

        def running() -> bool:
            state = self.runner.run([commands.DOCKER, "inspect", "--format", "{{.State.Running}}", container],
                                    check=False)
            if state.stdout.strip() == "true":
                return True
            self.say(f"--- last log lines of {container} ---\n{self.docker.logs(container, tail=30)}")
            return False

        return Readiness(svc.name, probe, running, expected_output=svc.ready_output,
                         timeout=self.ready_timeout, sleep=self.sleep).wait()

    def run_setup(self) -> None:
        result = self.runner.run(self.run.setup(), capture=False, check=False)
        if not result.ok:
            raise DockyardError(f"the setup command failed (exit {result.returncode}): "
                                "fix dockyard.ci.setup_command or the fixtures it loads")

    def run_tests(self) -> int:
        reports = self.run.reports
        reports.mkdir(parents=True, exist_ok=True)
        os.chmod(reports, 0o777)  # the image's user (not root) writes its reports here
        result = self.runner.run(self.run.tests_command(), capture=False, check=False)
        if result.returncode != 0:
            raise TestsFailed(f"tests failed (exit {result.returncode}); reports in {reports}",
                              exit_code=result.returncode)
        self.say(f"tests passed; reports in {reports}")
        return 0

    # --- cleanup ---------------------------------------------------------------------------------------------
    def leftovers(self) -> list[str]:
        return self.runner.run(commands.containers_of_run(self.run.run_id), check=False).stdout.split()

    def cleanup(self) -> None:
        """Remove every container and the network of this run (idempotent, never raises for what is gone)."""
        ids = self.leftovers()
        if ids:
            self.runner.run(commands.remove_containers(ids), check=False)
        self.runner.run(commands.network_remove(self.run.network), check=False)

    def kept(self) -> str:
        names = ", ".join(self.run.container(s.name) for s in self.run.services)
        return (f"kept (--keep): {names or 'no services'} on network {self.run.network}; remove them with "
                f"`docker rm -f $(docker ps -aq --filter label={commands.RUN_LABEL}={self.run.run_id})` and "
                f"`docker network rm {self.run.network}`")
