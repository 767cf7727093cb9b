"""Local stacks and image builds for one environment, on the caller's Docker engine.

``StackService`` is what the ``<env>.*`` and ``image.*`` tasks call: it reads state through the clients, decides,
and says what it does. Containers are found by compose labels, never by reading ``docker ps`` text.
"""
from __future__ import annotations

import shlex
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .clients.buildx import compose_build_env
from .clients.compose import ComposeClient, ComposeProject, find_compose
from .clients.docker import DOCKER, Container, DockerClient, Image, build_command
from .config import Environment, Settings
from .core import static as static_files
from .core.compose import stack_variables
from .core.entrypoint import APPLY, exec_argv, run_entrypoint
from .errors import CommandFailed, ConfigError, HealthCheckFailed, Refused
from .health import HealthCheck
from .images import BuildSpec, build_args_for, build_spec, env_ref, image_tags, oci_labels
from .runner import Command

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def port_in_use(port: int, host: str = "0.0.0.0") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class StackService:
    project: Any  # dockyard.tasks.common.Project (kept loose: this module imports no task code)
    env: Environment

    @property
    def settings(self) -> Settings:
        return self.project.settings

    @property
    def docker(self) -> DockerClient:
        return self.project.docker

    def say(self, text: str) -> None:
        self.project.say(text)

    # --- compose ---------------------------------------------------------------------------------------------
    def compose(self) -> ComposeClient:
        if self.env.compose is None:
            raise ConfigError(
                f"dockyard.environments.{self.env.name}.compose: not set, so {self.env.name} has no local stack"
            )
        install = find_compose(self.project.runner, self.settings.compose_command)
        project = ComposeProject(install.prefix, self.env.project_name, self.env.compose,
                                 {**stack_variables(self.settings, self.env), **compose_build_env(self.project.builder)})
        client = ComposeClient(self.project.runner, project)
        if not self.settings.static.proxied(self.env.name):
            return client
        if not static_files.supports_reset(install.version):
            raise ConfigError(
                f"dockyard.static.stacks lists {self.env.name}, whose front proxy needs Compose 2.24 or later "
                f"(found {install.describe()}): install a newer Compose, or remove {self.env.name} from "
                "dockyard.static.stacks"
            )
        override = self.write_static_proxy(client.config())
        return ComposeClient(self.project.runner, replace(project, overrides=(override,)))

    # --- static files (dockyard.core.static) -----------------------------------------------------------------
    @property
    def static_dir(self) -> Path:
        """Where this stack's front proxy finds the static files and its configuration (on this machine)."""
        return Path.home() / ".dockyard" / self.env.project_name / "static"

    def write_static_proxy(self, model: dict[str, Any]) -> Path:
        """Write the front proxy's nginx configuration and the compose override that adds it; the override's path."""
        assert self.env.compose is not None
        static = self.settings.static
        ports = static_files.published_ports(model, self.env.app_service, self.env.compose)
        state = self.static_dir
        files = state / "files"
        files.mkdir(parents=True, exist_ok=True)
        files.chmod(0o755)  # nginx's workers are not this user
        conf = state / "nginx.conf"
        conf.write_text(static_files.render_local_proxy_conf(static, self.env.app_service, ports[0].target))
        conf.chmod(0o644)
        override = state / "compose.static.yml"
        override.write_text(static_files.render_local_override(static, self.env.app_service, ports, files, conf))
        return override

    def copy_static_files(self, image: str) -> None:
        """Copy ``static.dir`` out of ``image`` into the directory the front proxy serves (no program of the
        image runs). Files of an earlier image stay, so pages in flight keep their stylesheets."""
        static = self.settings.static
        label = f"dev.dockyard.static={self.env.project_name}"
        created = self.docker.run(static_files.create_argv(DOCKER, image, label), timeout=60)
        container = created.stdout.strip()
        try:
            copy = static_files.copy_out_argv(DOCKER, container, static.dir, self.static_dir / "files")
            copied = self.docker.run(copy, check=False, timeout=300)
        finally:
            self.docker.run([DOCKER, "rm", "--force", container], check=False, timeout=60)
        if not copied.ok:
            hint = ("set dockyard.static.collect to the command that writes it" if not static.collect
                    else "make dockyard.static.collect write there")
            raise Refused(f"image {image} has no static files at {static.dir} (dockyard.static.dir): {hint}")
        self.say(f"Static files of {image} ({static.dir}) served at {static.url}")

    def prepare(self) -> ComposeClient:
        """Checks shared by every stack task: env file complete, engine reachable, compose file valid."""
        self.project.env_file(self.env)
        self.docker.server_version()
        compose = self.compose()
        compose.config()
        return compose

    def containers(self, service: str = "", *, running_only: bool = False) -> list[Container]:
        filters = [f"label={PROJECT_LABEL}={self.env.project_name}"]
        if service:
            filters.append(f"label={SERVICE_LABEL}={service}")
        if running_only:
            filters.append("status=running")
        return self.docker.containers(filters=filters)

    def app_container(self) -> Container:
        running = self.containers(self.env.app_service, running_only=True)
        if not running:
            raise Refused(
                f"the {self.env.name} stack's {self.env.app_service!r} container is not running: "
                f"start it with `inv {self.env.name}.start`"
            )
        return running[0]

    # --- commands in the stack (one rule: dockyard.core.entrypoint) ----------------------------------------------
    def exec_command(self, compose: ComposeClient, service: str, argv: Sequence[str], *, tty: bool) -> Command:
        """``argv`` in the running ``service`` container, as ``dockyard.command_entrypoint`` says."""
        mode = self.settings.command_entrypoint
        entrypoint = self.entrypoint_of(compose, service) if mode == APPLY else ()
        return compose.project.exec(service, exec_argv(mode, entrypoint, argv), tty=tty)

    def run_command(self, compose: ComposeClient, service: str, argv: Sequence[str], *, tty: bool) -> Command:
        """``argv`` in a new one-off ``service`` container, as ``dockyard.command_entrypoint`` says."""
        entrypoint, args = run_entrypoint(self.settings.command_entrypoint, argv)
        return compose.project.run(service, args, tty=tty, entrypoint=entrypoint)

    def entrypoint_of(self, compose: ComposeClient, service: str) -> tuple[str, ...]:
        """The service's entrypoint: the compose file's ``entrypoint:``, else its image's."""
        declared = (compose.config().get("services") or {}).get(service, {}).get("entrypoint")
        if declared is not None:
            return tuple(declared) if isinstance(declared, list) else tuple(shlex.split(declared))
        running = self.containers(service, running_only=True)
        image = self.docker.inspect_image(running[0].image) if running else None
        return image.entrypoint if image else ()

    # --- the release command (dockyard.core.release_command) ------------------------------------------------------
    def release_command(self, compose: ComposeClient | None = None) -> str:
        """Run the environment's release command once in a one-off app container (dependencies started), bounded by
        ``release_command_timeout``; a failure is :class:`ReleaseCommandFailed` (exit 10)."""
        from .core.release_command import ReleaseCommandFailed, release_command_of
        from .runner import TimedOut

        command = release_command_of(self.env)
        if command is None:
            raise ConfigError(f"dockyard.environments.{self.env.name}.release_command is not set: set it to what "
                              "prepares the app for a new version (e.g. python manage.py migrate --noinput)")
        compose = compose or self.prepare()
        entrypoint, args = run_entrypoint(self.settings.command_entrypoint, command.argv)
        name = f"{self.env.project_name}-release"
        self.project.runner.run(Command(("docker", "rm", "--force", name)), check=False)  # one a kill left
        self.say(f"Running the release command {command.text!r} in a one-off {self.env.app_service} container "
                 f"(at most {command.timeout}s)")
        run = compose.project.release_run(self.env.app_service, args, name=name, entrypoint=entrypoint)
        try:
            result = compose.run(run, capture=False, check=False, echo=False, timeout=command.timeout)
        except TimedOut:
            self.project.runner.run(Command(("docker", "rm", "--force", name)), check=False)
            raise ReleaseCommandFailed(command, f"ran longer than {command.timeout}s (release_command_timeout) and "
                                       "was stopped", serving=f"the {self.env.name} stack") from None
        if not result.ok:
            raise ReleaseCommandFailed(command, f"exited {result.returncode} (its output is above)",
                                       serving=f"the {self.env.name} stack")
        return command.text

    # --- images ------------------------------------------------------------------------------------------------
    def image(self) -> Image | None:
        return self.docker.inspect_image(env_ref(self.settings, self.env))

    def build(self, *, no_cache: bool = False, pull: bool = False, compose: ComposeClient | None = None,
              version: str = "", extra_tags: tuple[str, ...] = (), spec: BuildSpec | None = None,
              platform: str | None = None, env_tags: bool = True) -> Image:
        """Build the app image from the compose file's build section (or ``spec``), tagged and labelled.

        ``version`` becomes the OCI version label and ``extra_tags`` more tags (a release: ``<repository>:X.Y.Z``).
        ``platform`` overrides the local one (:attr:`Project.local_platform`); ``env_tags=False`` gives the image
        only ``extra_tags`` (another platform's image of a multi-platform release must not move the environment's).
        """
        if spec is None:
            compose = compose or self.prepare()
            spec = build_spec(self.settings, self.env, compose.config())
        revision = self.project.git.revision()
        source = self.project.git.remote_url(self.settings.git_remote)
        own = image_tags(self.settings, self.env, revision) if env_tags else ()
        tags = tuple(dict.fromkeys((*own, *extra_tags)))
        platform = self.project.local_platform if platform is None else platform
        labels = oci_labels(self.settings, self.env, revision, version=version, source=_public_url(source))
        # The app may show what it runs (the sample's /health/ does) when its Dockerfile declares these.
        metadata = {"APP_VERSION": version or revision.label, "APP_REVISION": revision.sha}
        collect = self.settings.static.collect
        # With a collect layer the app's own build gets a tag of its own: the environment's tags move only to an
        # image that has its static files.
        built = (f"{self.settings.repository}:{static_files.UNCOLLECTED_TAG}-{revision.sha[:12]}",) if collect else tags
        command = build_command(
            context=spec.context, dockerfile=spec.dockerfile, tags=built, labels=labels,
            build_args=build_args_for(spec, self.settings.build_args, metadata), target=spec.target,
            no_cache=no_cache, pull=pull, builder=self.project.builder, secrets=self.project.build_secrets(),
            cache=() if no_cache else self.project.build_cache(previous=(env_ref(self.settings, self.env),)),
            platform=platform,
        )
        from .core.actor import actor
        from .core.hooks import DeployFacts

        events = self.project.deploy_events(self.env)
        events.check("pre-build")
        events.run("pre-build", DeployFacts(action="build", environment=self.env.name, target="local", image=tags[0],
                                            version=version or revision.label, actor=actor()))
        built_for = f", {platform}" if platform else ""
        self.say(f"Building {', '.join(tags)} from {revision.label} ({self.project.builder.kind}{built_for})")
        self.docker.build(command)
        image = self.docker.inspect_image(built[0])
        assert image is not None, "docker build succeeded but the image is missing"
        if collect:
            self.collect_static(built[0], image, tags, platform=platform)
            image = self.docker.inspect_image(tags[0])
            assert image is not None, "docker build succeeded but the image is missing"
        return image

    def collect_static(self, built: str, image: Image, tags: Sequence[str], *, platform: str = "") -> None:
        """Run ``static.collect`` in a layer over ``built`` and give that image ``tags``; ``built``'s own tag goes."""
        collect = self.settings.static.collect
        self.say(f"Collecting static files into {self.settings.static.dir}: {collect} (dockyard.static.collect)")
        dockerfile = static_files.collect_dockerfile(built, collect, image.user)
        try:
            self.docker.build(Command(static_files.collect_build_argv(DOCKER, tags, platform=platform),
                                      stdin=dockerfile))
        except CommandFailed:
            raise CommandFailed(
                f"dockyard.static.collect failed in {built} (its output is above); {', '.join(tags)} did not "
                "change: fix the command, or set it to \"\" when the Dockerfile collects the files itself"
            ) from None
        finally:
            self.docker.remove_images([built])

    def destroy(self) -> list[str]:
        """Remove the environment's image tags; refuses while a container of it runs."""
        image = self.image()
        if image is None:
            return []
        users = self.docker.containers(filters=[f"ancestor={image.id}", "status=running"])
        if users:
            names = ", ".join(c.name for c in users)
            stop = f"`inv {self.env.name}.stop`" if self.env.compose else f"`docker stop {users[0].name}`"
            raise Refused(f"image {env_ref(self.settings, self.env)} is in use by {names}: stop it first with {stop}")
        ours = [t for t in image.tags if t.startswith(self.settings.repository + ":")]
        self.docker.remove_images(ours)
        return ours

    # --- start -------------------------------------------------------------------------------------------------
    def start(self, *, build: bool = False, timeout: int | None = None, sleep: Callable[[float], None] | None = None,
              migrate: bool = False) -> str | None:
        """Start the stack and wait for its health check; ``migrate``: then run the release command."""
        compose = self.prepare()
        if migrate:
            from .core.release_command import release_command_of

            if release_command_of(self.env) is None:  # refused before anything starts
                raise ConfigError(f"--migrate: dockyard.environments.{self.env.name}.release_command is not set: "
                                  "set it (e.g. python manage.py migrate --noinput), or start without --migrate")
        if self.env.port and port_in_use(self.env.port) and not self._publishes(self.env.port):
            raise Refused(
                f"port {self.env.port} is already in use by another program: stop it, or set "
                f"dockyard.environments.{self.env.name}.port to a free port"
            )
        if build or self.image() is None:
            self.build(compose=compose)
        if self.settings.static.proxied(self.env.name):
            self.copy_static_files(env_ref(self.settings, self.env))
        self.say(f"Starting the {self.env.name} stack ({self.env.project_name})")
        compose.up()
        url = self.env.health_url
        if url is None:
            if migrate:
                self.release_command(compose)
            return None
        check = HealthCheck(url, timeout=timeout or self.env.health_timeout, setting=self.env.health_setting)
        if sleep is not None:
            check.sleep = sleep
        try:
            check.wait()
        except HealthCheckFailed as exc:
            self.project.warn(self.failure_logs())
            raise HealthCheckFailed(f"{exc}; the last log lines are above. Inspect with `inv {self.env.name}.logs`") from None
        if migrate:
            self.release_command(compose)
        return self.env.url

    def _publishes(self, port: int) -> bool:
        return any(f":{port}->" in c.ports for c in self.containers(running_only=True))

    def failure_logs(self, tail: int = 30) -> str:
        lines = []
        for container in self.containers():
            if container.service == self.env.app_service or container.state != "running":
                lines.append(f"--- last {tail} log lines of {container.name} ({container.state}) ---")
                lines.append(self.docker.logs(container.id, tail=tail))
        return "\n".join(lines) or "(no containers were created)"


def _public_url(remote: str) -> str:
    """A remote URL without credentials (https://user:token@host/... would leak into a label)."""
    if "@" in remote and "://" in remote:
        scheme, rest = remote.split("://", 1)
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return remote
