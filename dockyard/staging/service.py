"""What the ``<env>.*`` SSH tasks do: connect, read every host's state, build the plan, show or run it."""
from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from collections.abc import Callable, Sequence
from typing import Any

from ..core.entrypoint import APPLY
from ..core.history import HostAuditLog, previous_good_release
from ..core.release_command import AUDIT_KEY, SKIPPED, release_command_of
from ..errors import ConfigError, DockyardError, Refused
from ..plan import Plan, WithArguments, display, run_plan
from . import commands as cmd
from .deploy import (
    HostDeployer,
    HostPlan,
    HostSession,
    ReleasePlan,
    Registration,
    check_docker,
    deploy_plan,
    describe_error,
    host_lock,
    open_session,
    plan_host,
    plan_release,
    setup_host,
    start_accessories,
)
from .journal import HostJournal, release, settle_hosts
from .model import Accessory, ComposeServices, StagingTarget, valid_version


class StagingService:
    def __init__(self, project: Any, env_name: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.project = project
        self.settings = project.settings
        self.env = project.environment(env_name)
        self.target: StagingTarget = self.settings.ssh.target(env_name)
        self.sleep = sleep
        if not self.target.hosts:
            raise ConfigError(f"dockyard.ssh.hosts is empty for {env_name}: list user@host[:port] under dockyard.ssh "
                              f"(or dockyard.environments.{env_name}.ssh) in invoke.yaml")
        self._hosts: list[Any] | None = None

    def say(self, text: str = "") -> None:
        self.project.say(text)

    def warn(self, text: str) -> None:
        self.project.warn(text)

    # --- hosts ----------------------------------------------------------------------------------------------

    def hosts(self) -> list[Any]:
        if self._hosts is None:
            from ..clients.ssh import SshHost, SshOptions

            t = self.target
            self._mask_env_values()
            options = SshOptions(key_file=t.key_file, use_agent=t.use_agent, known_hosts=t.known_hosts,
                                 accept_new_host_keys=t.accept_new_host_keys, connect_timeout=t.connect_timeout,
                                 command_timeout=self.settings.ssh.command_timeout(self.env.name))
            self._hosts = [SshHost(s.address.user, s.address.host, s.address.port, options, mask=self.project.mask,
                                   name=s.name) for s in t.hosts]
        return self._hosts

    def _mask_env_values(self) -> None:
        """What the app was given may come back in what it prints (``exec env``, logs): mask it there too."""
        from ..envfile import parse_env_file

        if self.target.env_file.is_file():
            try:
                self.project.mask.add(*secret_values(parse_env_file(self.target.env_file)))
            except DockyardError:
                pass  # a broken .env is reported by the deploy that reads it; exec and logs still work

    def sessions(self, *, check: bool = True, create: bool = True) -> list[HostSession]:
        """Connect to every host at once; nothing is changed when one is unreachable (nor ever, without
        ``create``: what read-only tasks use)."""
        from ..clients.ssh import open_hosts, run_on_hosts

        hosts = self.hosts()
        open_hosts(hosts)

        specs = {id(h): spec for h, spec in zip(hosts, self.target.hosts)}

        def prepare(host):
            session = open_session(host, specs[id(host)], create=create)
            if check:
                check_docker(session)
            return session

        outcomes = run_on_hosts(hosts, prepare)
        for outcome in outcomes:
            if outcome.error is not None:
                raise outcome.error
        return [o.value for o in outcomes]

    def close(self) -> None:
        for host in self._hosts or []:
            host.close()

    # --- inputs ---------------------------------------------------------------------------------------------

    def resolve_version(self, version: str) -> str:
        """The image tag to run: a release as on every target (its tag prefix dropped), else the tag given, else
        ``version_format`` of the current commit."""
        from ..core.versions import deploy_tag

        version = deploy_tag(version, self.settings.release.tag_prefix) if version else ""
        if not version:
            sha = os.environ.get("CIRCLE_SHA1") or os.environ.get("GITHUB_SHA") or ""
            if not sha:
                result = self.project.git.git("rev-parse", "HEAD", check=False)
                sha = result.stdout.strip() if result.ok else ""
            if not sha:
                raise Refused("no VERSION given and no commit found (CIRCLE_SHA1, GITHUB_SHA, git rev-parse HEAD)")
            version = self.target.default_version(sha)
        if not valid_version(version):
            raise DockyardError(f"VERSION {version!r} is not a valid image tag (letters, digits, '_', '.', '-')",
                                exit_code=2)
        return version

    def env_values(self) -> dict[str, str] | None:
        """The environment's .env values (checked against its .env.example), or None without either file."""
        from ..envfile import load_env_file

        t = self.target
        if not t.env_file.exists() and not t.env_example.exists():
            return None
        loaded = load_env_file(t.env_file, t.env_example, root=self.settings.root)
        self.project.mask.add(*secret_values(loaded.values))
        return dict(loaded.values)

    def env_text(self) -> str | None:
        values = self.env_values()
        return None if values is None else cmd.env_file_text(values)

    def compose_services(self, version: str) -> ComposeServices:
        """What the hosts run for ``version``, from the environment's compose file; its notes are shown once."""
        from .compose import compose_services

        services = compose_services(self.settings, self.env, self.target, self.target.image(version))
        for note in services.notes:
            self.warn(f"note: {note}")
        return services

    def accessories_of(self, services: ComposeServices) -> list[Accessory]:
        """``dockyard.ssh.accessories``, then the compose file's services with an image of their own."""
        return [*self.target.accessories, *services.accessories]

    def accessory_values(self, accessories: Sequence[Accessory],
                         dotenv: dict[str, str] | None) -> dict[str, dict[str, str]]:
        """Each accessory's environment: its settings ``env``, or compose ``env_file`` (the .env) then
        ``environment``."""
        out = {}
        for accessory in accessories:
            values = dict(dotenv or {}) if accessory.env_file else {}
            values.update(accessory.env)
            self.project.mask.add(*secret_values(values))
            out[accessory.name] = values
        return out

    def service_env_texts(self, services: ComposeServices,
                          dotenv: dict[str, str] | None) -> tuple[str | None, dict[str, str]]:
        """The app's env file (the .env, then its compose ``environment``) and each worker's (the .env when its
        compose entry lists ``env_file``, then its ``environment``); a worker with neither gets none."""
        def text(values: dict[str, str]) -> str:
            self.project.mask.add(*secret_values(values))
            return cmd.env_file_text(values)

        app_values = {**(dotenv or {}), **dict(services.app.environment)}
        app_text = text(app_values) if (dotenv is not None or app_values) else None
        workers = {}
        for worker in services.workers:
            values = {**((dotenv or {}) if worker.env_file else {}), **dict(worker.environment)}
            if values:
                workers[worker.service] = text(values)
        return app_text, workers

    def registration(self, env_text: str | None) -> Registration:
        registry = self.settings.registry
        if registry.kind != "ecr" and not registry.username:
            return Registration(env_text=env_text)  # a public registry: no login
        from ..core.credentials import gather_credentials

        credentials = gather_credentials(self.settings, mask=self.project.mask, env_file=self.target.env_file,
                                         interactive=True)
        return Registration(credentials.registry, credentials.username, credentials.password, env_text)

    # --- deploy and rollback ----------------------------------------------------------------------------------

    def needs_login(self) -> bool:
        """Whether hosts log in to pull: decided from the settings, so a dry run plans what a run does."""
        registry = self.settings.registry
        return registry.kind == "ecr" or bool(registry.username)

    def deploy(self, version: str, *, dry_run: bool = False, lock_wait: float | None = None, limit: int = 0,
               rollback: bool = False, force_unlock: bool = False, skip_release_command: bool = False) -> Plan:
        action = "rollback" if rollback else "deploy"
        env_text: str | None = None
        worker_texts: dict[str, str] = {}
        accessory_env: dict[str, dict[str, str]] = {}
        services: ComposeServices | None = None
        if not rollback:
            version = self.resolve_version(version)
            dotenv = self.env_values()
            services = self.compose_services(version)
            env_text, worker_texts = self.service_env_texts(services, dotenv)
            accessory_env = self.accessory_values(services.accessories, dotenv)
        check_env_lines(env_text, worker_texts, accessory_env)
        sessions = self.sessions()
        try:
            states = {s.name: s.state() for s in sessions}
            for session in sessions:
                if states[session.name].proxy() is None or not states[session.name].proxy().running:
                    raise Refused(f"{session.name}: the proxy is not running; run `inv {self.env.name}.setup` first")
            states = settle_hosts(sessions, states, self.target, host_lock(sessions[0], self.env.name),
                                  say=self.say, force_unlock=force_unlock, dry_run=dry_run)
            if rollback:
                from ..core.versions import deploy_tag

                version = deploy_tag(version, self.settings.release.tag_prefix) if version else ""
                version = version or self.default_rollback(sessions, states)
                if not valid_version(version):
                    raise DockyardError(f"VERSION {version!r} is not a valid image tag", exit_code=2)
            login = not rollback and self.needs_login()
            # Pulled by the registry's digest, read once here: every host runs the same image (a multi-platform
            # index's digest: each host's engine takes its own platform).
            digest = self.project.registry_digest(version, env_file=self.target.env_file) if login else ""
            plans = {s.name: plan_host(self.target, s, states[s.name], version, rollback=rollback, login=login,
                                       env_file=env_text is not None, services=services,
                                       worker_env_files=tuple(worker_texts), digest=digest) for s in sessions}
            release_plan, notes, extra = self.release_step(sessions[0], plans[sessions[0].name], services,
                                                      rollback=rollback, skip=skip_release_command)
            plan = deploy_plan(self.env.name, action, version, sessions, plans,
                               batch_size=limit or self.target.batch_size, force_unlock=force_unlock,
                               lock_wait=self.target.lock_wait if lock_wait is None else lock_wait,
                               release=release_plan, notes=notes)
            if dry_run:
                display(plan, mask=self.project.mask)
                return plan
            registration = self.registration(env_text) if login else Registration(env_text=env_text)
            registration.worker_env_texts = worker_texts
            registration.accessory_env = accessory_env
            lock = host_lock(sessions[0], self.env.name, sleep=self.sleep)
            host_batches = HostBatches(self, {s.name: s for s in sessions}, registration, services, extra=extra)
            self.say(plan.render(self.project.mask))
            try:
                run_plan(plan, {"lock": WithArguments(lock, acquire={"say": self._indented}), "hosts": host_batches,
                                "release": host_batches}, mask=self.project.mask)
            except BaseException as exc:
                release(lock, exc)
                deployed = all(host_batches.outcomes.get(s.name, "").startswith("ok") for s in sessions)
                if not (isinstance(exc, DockyardError) and deployed and not lock.held):
                    self._report(sessions, host_batches.outcomes)
                    raise
                # only the lock's release broke (a dropped connection), and its second try freed it
            release(lock)
            self._report(sessions, host_batches.outcomes)
            self.say(f"{self.env.name} now runs {version}")
            return plan
        finally:
            self.close()

    def release_step(self, primary: HostSession, primary_plan: HostPlan, services: ComposeServices | None, *,
                     rollback: bool, skip: bool) -> tuple[ReleasePlan | None, list[str], dict[str, str]]:
        """The release command's step on the primary (or why there is none), and what the audit records add."""
        command = release_command_of(self.env)
        if rollback:
            return None, [], {}
        if command is None:
            notes = [f"--skip-release-command: {self.env.name} has no release command"] if skip else []
            return None, notes, {}
        if skip:
            return None, [f"the release command {command.text!r} is skipped (--skip-release-command); the audit "
                          "records say so"], {AUDIT_KEY: SKIPPED}
        release = plan_release(self.target, primary, primary_plan, command, services=services,
                               entrypoint_mode=self.settings.command_entrypoint)
        if release is None:
            return None, [f"the release command is not run: {primary_plan.version} already serves on "
                          f"{primary.name}"], {}
        return release, [], {}

    def _indented(self, text: str) -> None:
        self.say(f"  {text}")

    def _report(self, sessions: Sequence[HostSession], outcomes: dict[str, str]) -> None:
        if len(sessions) < 2 and all(o.startswith("ok") for o in outcomes.values()):
            return
        for session in sessions:
            self.say(f"  {session.name}: {outcomes.get(session.name, 'not started')}")

    def default_rollback(self, sessions: Sequence[HostSession], states: dict) -> str:
        first = sessions[0]
        records = HostAuditLog(first.host, first.layout.audit_log).records(self.env.name)
        retained = set.intersection(*({c.version for c in states[s.name].apps()} for s in sessions))
        live = states[first.name].live
        good = previous_good_release(records, live or "", retained)
        if good is None:
            raise Refused(f"no previous version to roll back to on {first.name} (live: {live or 'none'}, retained: "
                          f"{', '.join(sorted(retained)) or 'none'}); name one: `inv {self.env.name}.rollback VERSION`")
        return good.version

    # --- setup and the rest -------------------------------------------------------------------------------------

    def setup(self, *, dry_run: bool = False) -> None:
        services = self.compose_services(self.env.name)
        accessories = self.accessories_of(services)
        env_values = self.accessory_values(accessories, self.env_values() if services.accessories else None)
        for accessory in self.target.accessories:  # settings values are all taken as secrets, as always
            self.project.mask.add(*accessory.env.values())
        if dry_run:
            for spec in self.target.hosts:
                volumes = ", ".join(f"{spec.prefix}-{v}" for v in services.volumes) or "none"
                self.say(f"{spec.name}: check docker, create the network {spec.prefix}, start the proxy on port "
                         f"{spec.proxy_port} ({self.target.proxy_image}), volumes: {volumes}, accessories: "
                         f"{', '.join(a.name for a in accessories) or 'none'}")
            self.say("(dry run: nothing was changed)")
            return
        try:
            for session in self.sessions(check=False):
                for line in setup_host(self.target, session, env_values, self.say, accessories=accessories,
                                       volumes=services.volumes):
                    self.say(f"{session.name}: {line}")
        finally:
            self.close()

    def accessories(self, action: str, names: Sequence[str]) -> None:
        services = self.compose_services(self.env.name)
        accessories = self.accessories_of(services)
        known = {a.name for a in accessories}
        try:
            for session in self.sessions():
                state = session.state()
                if action == "start":
                    env_values = self.accessory_values(accessories, self.env_values() if services.accessories else None)
                    for line in start_accessories(self.target, session, state, env_values, names=names or None,
                                                  accessories=accessories):
                        self.say(f"{session.name}: {line}")
                    continue
                for name in names or [a.name for a in accessories]:
                    if name not in known:
                        raise Refused(f"no accessory named {name!r}")
                    container = session.layout.accessory_container(name)
                    if action == "stop":
                        session.host.run(cmd.stop(session.layout, [container], self.target.stop_timeout), check=False)
                        self.say(f"{session.name}: {name} stopped")
                    else:
                        session.host.run(cmd.logs(session.layout, container, tail=100), stream=True, check=False)
        finally:
            self.close()

    def status(self) -> None:
        try:
            sessions = self.sessions(check=False, create=False)
            holder = host_lock(sessions[0], self.env.name).current()
            self.say(f"lock: {holder.describe() if holder else 'free'}")
            for session in sessions:
                state = session.state()
                running = [c for c in state.apps() if c.running]
                health = "n/a"
                if state.live:
                    deployer = HostDeployer(self.target, session, say=self.say)
                    _, ip = deployer.address(session.layout.app_container(state.live))
                    if ip:
                        probe, _ = session.host.http_get(ip, self.target.app_port, self.target.health_path,
                                                         host=self.target.health_host)
                        health = probe.detail
                proxy = state.proxy()
                if proxy is not None and proxy.running and not state.asked:
                    health = f"the proxy does not answer; upstream.conf names {state.written or 'none'}"
                self.say(f"{session.name}: live {state.live or 'none'} (health {health}); proxy "
                         f"{proxy.state if proxy else 'missing'}; running {', '.join(c.version for c in running) or 'none'};"
                         f" retained {', '.join(c.version for c in state.apps() if not c.running) or 'none'}")
                workers = worker_summary(state)
                if workers:
                    self.say(f"    workers: {workers}")
                for line in unsettled(session, state):
                    self.say(f"    {line}")
                tail = session.host.run(cmd.tail_file(session.layout.audit_log, 3)).stdout.strip()
                for line in tail.splitlines():
                    self.say(f"    {line}")
        finally:
            self.close()

    def audit(self, lines: int) -> None:
        try:
            for session in self.sessions(check=False, create=False):
                self.say(f"== {session.name}")
                text = session.host.run(cmd.tail_file(session.layout.audit_log, lines)).stdout.rstrip()
                self.say(text or "(no deploys yet)")
        finally:
            self.close()

    def unlock(self) -> None:
        try:
            session = self.sessions(check=False)[0]
            holder = host_lock(session, self.env.name).force_unlock()
            if holder is None:
                self.say(f"no lock on {session.name}")
                return
            self.say(f"removed the lock on {session.name} ({holder.describe()})")
        finally:
            self.close()

    def container_of(self, session: HostSession, service: str) -> str:
        if service in ("", "app"):
            state = session.state()
            if not state.live:
                raise Refused(f"{session.name}: no version is live; deploy one first")
            return session.layout.app_container(state.live)
        if service == "proxy":
            return session.layout.proxy
        if self.target.accessory(service) is not None:
            return session.layout.accessory_container(service)
        state = session.state()
        worker = next((c for c in state.workers(state.live) if c.service == service), None) if state.live else None
        if worker is not None:
            return worker.name
        accessory = next((c for c in state.containers if c.role == "accessory" and c.version == service), None)
        if accessory is not None:  # a compose accessory: its label names it
            return accessory.name
        known = ", ".join(["app", "proxy", *(a.name for a in self.target.accessories),
                           *sorted({c.service for c in state.workers(state.live)} if state.live else ()),
                           *sorted(c.version for c in state.containers if c.role == "accessory"
                                   and self.target.accessory(c.version) is None)])
        raise Refused(f"no service {service!r} (known: {known})")

    def logs(self, *, follow: bool, service: str, tail: int, seconds: float | None = None) -> None:
        try:
            sessions = self.sessions(check=False, create=False)
            if follow:
                self.follow_logs(sessions, service, tail, seconds)
                return
            for session in sessions:
                container = self.container_of(session, service)
                self.say(f"== {session.name}: {container}")
                session.host.run(cmd.logs(session.layout, container, tail=None if tail < 0 else tail),
                                 stream=True, check=False)
        finally:
            self.close()

    def follow_logs(self, sessions: Sequence[HostSession], service: str, tail: int, seconds: float | None) -> None:
        """Every host at once, each line prefixed with its host; ends on Ctrl-C, after ``seconds``, or when every
        stream has ended."""
        import threading

        containers = [(s, self.container_of(s, service)) for s in sessions]
        stop = threading.Event()
        printing = threading.Lock()
        errors: list[BaseException] = []

        def follow(session: HostSession, container: str) -> None:
            def line(text: str) -> None:
                with printing:
                    self.say(f"{session.name} | {text}")

            try:
                session.host.follow(cmd.logs(session.layout, container, tail=None if tail < 0 else tail,
                                             follow=True), line, stop=stop, seconds=seconds)
            except DockyardError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=follow, args=pair, daemon=True) for pair in containers]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.2)
        except KeyboardInterrupt:  # the usual way to end --follow
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
        if errors:
            raise errors[0]

    def exec(self, command: str, *, all_hosts: bool, service: str, tty: bool = False, stdin: str | None = None) -> int:
        if tty and all_hosts:
            raise DockyardError("--tty runs one interactive command on one host: drop --all-hosts", exit_code=2)
        try:
            sessions = self.sessions(check=False)
            code = 0
            for session in sessions if all_hosts else sessions[:1]:
                container = self.container_of(session, service)
                if all_hosts:
                    self.say(f"== {session.name}")
                entrypoint = self.entrypoint_of(session, container)
                result = session.host.run(cmd.exec_in(session.layout, container, command, tty=tty, stdin=stdin,
                                                      entrypoint=entrypoint), stream=True, check=False, pty=tty)
                code = code or result.returncode
            return code
        finally:
            self.close()

    def entrypoint_of(self, session: Any, container: str) -> tuple[str, ...]:
        """What goes in front of an exec'd command: the container's entrypoint under ``command_entrypoint: apply``."""
        if self.settings.command_entrypoint != APPLY:
            return ()
        said = session.host.run(cmd.container_entrypoint(session.layout, container), check=False).stdout.strip()
        try:
            return tuple(json.loads(said) or ())
        except ValueError:
            return ()


def unsettled(session: HostSession, state: Any) -> list[str]:
    """What status says of a deploy that did not end there, and of an upstream.conf nginx has not loaded."""
    out = []
    if state.switch_pending:
        out.append(f"upstream.conf names {state.written or 'none'}, but the proxy serves {state.live or 'none'} "
                   "(a switch was cut short before the reload; the next deploy or rollback puts it right)")
    entry = HostJournal(session.host, session.layout).read()
    if entry is not None:
        out.append(f"an earlier {entry.action} of {entry.version} by {entry.who or 'someone'} did not end (it reached "
                   f"'{entry.step}'); the next deploy or rollback finishes or undoes it")
    return out


#: The longest line ``docker run --env-file`` reads (Go's bufio.Scanner: "token too long" beyond 64 KiB).
ENV_LINE_LIMIT = 64 * 1024 - 1


def check_env_lines(app_text: str | None, worker_texts: dict[str, str],
                    accessory_env: dict[str, dict[str, str]]) -> None:
    """Refuse, before anything is changed on a host, an env file that ``docker run`` would fail to read."""
    from ..errors import EnvFileError

    texts = [("the app", app_text or ""), *((f"the worker {k}", v) for k, v in worker_texts.items()),
             *((f"the accessory {k}", cmd.env_file_text(v)) for k, v in accessory_env.items())]
    for whose, text in texts:
        for line in text.splitlines():
            size = len(line.encode())
            if size > ENV_LINE_LIMIT:
                key = line.partition("=")[0]
                raise EnvFileError(f"{key} in the env file of {whose} is {size} bytes long: docker reads env file "
                                   f"lines of at most {ENV_LINE_LIMIT} bytes; shorten the value (nothing was changed)")


SECRET_KEY_WORDS = ("SECRET", "PASSWORD", "PASSWD", "TOKEN", "KEY", "CREDENTIAL", "PRIVATE", "DSN", "URL")


def worker_summary(state: Any) -> str:
    """``v2: worker running, beat running; v1: worker exited``: the workers of each version, newest first."""
    versions: dict[str, list[str]] = {}
    for container in sorted(state.workers(), key=lambda c: (c.created, c.name), reverse=True):
        versions.setdefault(container.version, []).append(f"{container.service or container.name} {container.state}")
    return "; ".join(f"{version}: {', '.join(sorted(items))}" for version, items in versions.items())


def secret_values(values: dict[str, str]) -> list[str]:
    """Values worth masking in output: those of secret-looking keys, and any long value.

    Masking every value would also hide ordinary words (``APP_ENV=staging`` would mask every container name).
    """
    return [v for k, v in values.items() if any(w in k.upper() for w in SECRET_KEY_WORDS) or len(v) >= 16]


class HostBatches:
    """The performer of a plan's batches: each batch's hosts at once, each following its planned steps."""

    def __init__(self, service: StagingService, sessions: dict[str, HostSession], registration: Registration,
                 services: ComposeServices | None = None, *, extra: dict[str, str] | None = None) -> None:
        self.service = service
        self.sessions = sessions
        self.registration = registration
        self.services = services
        self.outcomes: dict[str, str] = {}
        self.extra = dict(extra or {})  # what every host's audit record adds (the release command's fate)
        self.release_ran = False

    def replan(self, session: HostSession, planned: HostPlan) -> HostPlan:
        """The host's plan from its state now; one that moved while this deploy waited for the lock (--lock-wait)
        is refused, as the plan shown is not what would run. Accessories the release command's step started are
        no change."""
        s = self.service
        now = plan_host(s.target, session, session.state(), planned.version, rollback=planned.rollback,
                        login=planned.login, env_file=planned.env_file, services=self.services,
                        worker_env_files=planned.worker_env_files, digest=planned.digest)
        planned_names, now_names = {a.name for a in planned.accessories}, {a.name for a in now.accessories}
        started, stopped = planned_names - now_names, now_names - planned_names
        if replace(now, accessories=planned.accessories) != planned or stopped or (started and not self.release_ran):
            raise Refused(f"{session.name} changed while this deploy waited for the lock; nothing was done "
                          "there: run the deploy again to see its new plan")
        return now

    def run(self, plan: ReleasePlan) -> str:
        """The release command's step (the ``release`` performer): on the primary, before any batch."""
        session = self.sessions[plan.session_name]
        s = self.service
        now = plan_host(s.target, session, session.state(), plan.version, login=plan.login, env_file=plan.env_file,
                        services=self.services, digest=plan.digest)
        if plan_release(s.target, session, now, plan.command, services=self.services,
                        entrypoint_mode=s.settings.command_entrypoint) != plan:
            raise Refused(f"{session.name} changed while this deploy waited for the lock; nothing was done: run the "
                          "deploy again to see its new plan")
        done = HostDeployer(s.target, session, say=s.say, sleep=s.sleep).run_release_command(plan, self.registration)
        self.extra[AUDIT_KEY] = f"{done} on {session.name} before the switch"
        self.release_ran = True
        return done

    def deploy(self, plans: Sequence[HostPlan]) -> None:
        from ..clients.ssh import run_on_hosts

        s = self.service
        by_host = {id(self.sessions[p.session_name].host): (self.sessions[p.session_name], p) for p in plans}

        def work(host):
            session, planned = by_host[id(host)]
            self.replan(session, planned)
            return HostDeployer(s.target, session, say=s.say, sleep=s.sleep,
                                extra=self.extra).deploy(planned, self.registration)

        results = run_on_hosts([self.sessions[p.session_name].host for p in plans], work)
        failures = []
        for planned, result in zip(plans, results):
            if result.ok:
                self.outcomes[planned.session_name] = f"ok: {result.value}"
            else:
                self.outcomes[planned.session_name] = f"FAILED: {describe_error(result.error)}"
                failures.append(result.error)
        if failures:
            raise failures[0]
