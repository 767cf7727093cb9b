"""Deploying to SSH hosts: read each host's state, plan (pure), then run the plan host by host.

A host is anything with ``run(Command)``, ``write_file``, ``read_file`` and ``http_get`` (see
:class:`dockyard.clients.ssh.SshHost`); this module imports no client. Waits take ``sleep`` and ``clock``. The lock
(an atomic ``mkdir`` on the first host) and the audit log (a line per host) are :mod:`dockyard.core`'s.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.actor import actor, stamp, utc_now
from ..core.history import SUCCEEDED, AuditRecord, HostAuditLog
from ..core.locks import DeployLock, HostDirLockStore
from ..core.release_command import AUDIT_KEY, ReleaseCommand, ReleaseCommandFailed
from ..core.signals import INTERRUPTED, INTERRUPTS
from ..errors import CommandFailed, DockyardError, HealthCheckFailed, Refused, Unreachable
from ..health import NOT_FOUND_LIMIT, Probe
from ..plan import ApiCall, Plan, Step
from ..runner import Command
from . import commands as cmd
from .journal import (SWITCHED, SWITCHING, HostJournal, JournalEntry, ask_proxy, aside_name, begin, plan_recovery,
                      run_recovery)
from .model import Accessory, ComposeServices, HostSpec, Layout, RunSpec, StagingTarget
from .proxy import VERSION_PATH, live_version, render_proxy_conf, render_upstream
from .pulled import PulledImages

Say = Callable[[str], None]

# What ``docker pull`` says when the registry cannot be reached at all (as opposed to refusing or lacking the image).
UNREACHABLE_WORDS = ("no such host", "connection refused", "i/o timeout", "network is unreachable",
                     "server misbehaving", "tls handshake timeout", "dial tcp")


# --- state of one host -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Container:
    name: str
    state: str
    version: str
    role: str
    created: str
    image: str
    service: str = ""  # the compose service of an app or worker container

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting")


@dataclass(frozen=True)
class HostState:
    containers: tuple[Container, ...]
    live: str | None  # the version the proxy serves: asked of nginx (upstream.conf's when it does not answer)
    upstream_text: str | None
    written: str | None = None  # the version upstream.conf names (nginx serves it only once reloaded)
    asked: bool = False  # whether ``live`` is nginx's own answer

    @property
    def switch_pending(self) -> bool:
        """upstream.conf names another version than nginx serves: a switch was cut short before the reload."""
        return self.asked and self.written != self.live

    def apps(self) -> list[Container]:
        return sorted((c for c in self.containers if c.role == "app"), key=lambda c: c.created, reverse=True)

    def app(self, version: str) -> Container | None:
        return next((c for c in self.apps() if c.version == version), None)

    def proxy(self) -> Container | None:
        return next((c for c in self.containers if c.role == "proxy"), None)

    def workers(self, version: str | None = None) -> list[Container]:
        """Worker containers (of ``version``), newest first."""
        return sorted((c for c in self.containers if c.role == "worker" and version in (None, c.version)),
                      key=lambda c: (c.created, c.name), reverse=True)

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)


def parse_containers(text: str) -> tuple[Container, ...]:
    out = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 6:
            out.append(Container(*parts[:7]))
    return tuple(out)


@dataclass
class HostSession:
    """A connected host, the spec it came from and its layout (state directory resolved on the host)."""

    host: Any
    spec: HostSpec
    layout: Layout

    @property
    def name(self) -> str:
        return self.spec.name

    def state(self) -> HostState:
        containers = parse_containers(self.host.run(cmd.list_containers(self.layout)).stdout)
        upstream = self.host.read_file(self.layout.upstream_conf)
        written = live_version(upstream)
        proxy = next((c for c in containers if c.role == "proxy"), None)
        asked, served = ask_proxy(self.host, self.layout) if proxy is not None and proxy.running else (False, None)
        return HostState(containers, served if asked else written, upstream, written=written, asked=asked)


def open_session(host: Any, spec: HostSpec, *, create: bool = True) -> HostSession:
    root = host.run(cmd.resolve_dir(spec.state_dir, spec.prefix, create=create)).stdout.strip().splitlines()[-1]
    return HostSession(host, spec, Layout(spec.prefix, root))


def check_docker(session: HostSession) -> str:
    result = session.host.run(cmd.docker_version(session.layout), check=False)
    if not result.ok or not result.stdout.strip():
        said = (result.stderr or result.stdout).strip().splitlines()
        reason = said[-1] if said else f"exit {result.returncode}"
        raise Refused(f"{session.name}: Docker is not usable there ({reason}); install Docker and let "
                      f"{session.spec.address.user} use it")
    return result.stdout.strip()


# --- lock -------------------------------------------------------------------------------------------------------


def host_lock(session: HostSession, env_name: str, *, sleep: Callable[[float], None] = time.sleep) -> DeployLock:
    """The environment's deploy lock: an atomic ``mkdir`` on the (first) host's state directory."""
    store = HostDirLockStore(session.host, session.layout.lock_dir, host_name=session.name)
    return DeployLock(store, environment=env_name, sleep=sleep, clear=f"inv {env_name}.unlock")


# --- plans --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostPlan:
    """What a deploy (or rollback) does on one host, decided from its state."""

    session_name: str
    version: str
    image: str
    container: str
    previous: str | None
    remove_first: tuple[str, ...] = ()  # a stopped container of the same version, re-created
    stop: tuple[str, ...] = ()  # running app containers other than the new one
    prune: tuple[str, ...] = ()  # stopped versions beyond ``keep``
    prune_images: tuple[str, ...] = ()
    rollback: bool = False
    noop: bool = False  # the version is already live and healthy-looking
    login: bool = False  # log in to the registry before the pull (it wants credentials)
    env_file: bool = False  # upload the env file (the project has one) and start the app with it
    worker_env_files: tuple[str, ...] = ()  # workers (compose services) whose env file is uploaded
    volumes: tuple[str, ...] = ()  # named volumes created when missing (never removed)
    accessories: tuple[Accessory, ...] = ()  # compose accessories not running: started before the app
    app_run: Command | None = None  # the app's `docker run` (none on a rollback: its container is retained)
    worker_runs: tuple[Command, ...] = ()  # the workers' `docker run`, after the app's health gate
    workers: tuple[str, ...] = ()  # this version's worker containers (started, or on a rollback restarted)
    stop_workers: tuple[str, ...] = ()  # running workers of other versions, stopped after the switch
    worker_start_seconds: float = 0.0
    static_dir: str = ""  # the image's static files (dockyard.static.dir), copied out for the proxy before the switch
    digest: str = ""  # the registry's digest of ``image`` when dockyard could read it: pulled by it, then tagged

    def lines(self) -> list[str]:
        who = self.session_name
        if self.noop:
            return [f"{who}: {self.version} is already live; nothing to do"]
        out = [f"{who}: {self.previous or 'nothing'} -> {self.version}"]
        if self.rollback:
            out.append(f"  start the retained container {self.container} (no pull)")
        else:
            if self.login:
                out.append("  log in to the registry (password on stdin)")
            out.append(f"  pull {pull_display(self.image, self.digest)}")
            if self.env_file and not self.worker_env_files:
                out.append("  upload the env file (mode 0600)")
            elif self.env_file or self.worker_env_files:
                uploaded = (["app"] if self.env_file else []) + list(self.worker_env_files)
                out.append(f"  upload the env files of {', '.join(uploaded)} (mode 0600)")
            if self.volumes:
                out.append(f"  create the volumes {', '.join(self.volumes)} if missing (kept across deploys)")
            for accessory in self.accessories:
                out.append(f"  start the accessory {accessory.name} ({accessory.image})")
            if self.remove_first:
                out.append(f"  set aside the earlier {', '.join(self.remove_first)} (removed once the new one "
                           "serves, put back if it fails)")
            out.append(f"  start {self.container} beside the old one")
            if self.app_run is not None:
                out.append(f"    $ {self.app_run.display()}")
        out.append("  wait until it answers the health check, else remove it and stop")
        if self.workers:
            if self.rollback:
                out.append(f"  start the retained workers {', '.join(self.workers)}")
            else:
                out.append(f"  start the workers {', '.join(self.workers)}")
                out += [f"    $ {run.display()}" for run in self.worker_runs]
            out.append(f"  check they still run after {self.worker_start_seconds:g}s, else "
                       f"{'stop' if self.rollback else 'remove'} them and {self.container} and stop")
        if self.static_dir:
            out.append(f"  copy its static files ({self.static_dir}) to the directory the proxy serves them from")
        out.append("  switch the proxy to it (graceful reload), drain")
        if self.stop or self.stop_workers:
            out.append(f"  stop {', '.join(self.stop + self.stop_workers)} (kept for rollback)")
        if self.prune:
            out.append(f"  remove old versions {', '.join(self.prune)}")
        out.append(f"  remove the images dockyard pulled here for older versions (keep {self.image} and the retained ones)")
        out.append("  append to the audit log")
        return out


def pull_display(image: str, digest: str) -> str:
    if not digest:
        return image
    return f"{image.rpartition(':')[0]}@{digest} (the registry's {image.rpartition(':')[2]}) and tag it {image}"


def plan_host(target: StagingTarget, session: HostSession, state: HostState, version: str, *,
              rollback: bool = False, login: bool = False, env_file: bool = False,
              services: ComposeServices | None = None, worker_env_files: Sequence[str] = (),
              digest: str = "") -> HostPlan:
    """What to do on one host, from its state; ``login`` and ``env_file`` say whether the deploy has registry
    credentials and an env file to hand over (a rollback needs neither: it pulls nothing). ``services`` is what
    the compose file runs (:func:`dockyard.staging.compose.compose_services`; none: the app alone), and
    ``worker_env_files`` the workers with an env file to upload. ``digest`` pins the pull (a multi-platform
    index's: each host's engine takes its own platform from it)."""
    layout = session.layout
    services = services or ComposeServices(app=RunSpec(""))
    container = layout.app_container(version)
    existing = state.app(version)
    if rollback and existing is None:
        raise Refused(f"{session.name}: no retained container of {version} to roll back to "
                      f"(retained: {', '.join(c.version for c in state.apps()) or 'none'}); deploy it instead")
    if rollback:
        workers = tuple(sorted(c.name for c in state.workers(version)))
    else:
        workers = tuple(layout.worker_container(w.service, version) for w in services.workers)
    # the live, running version is never re-created here: removing its container would stop what serves
    if state.live == version and existing is not None and existing.running:
        return HostPlan(session.name, version, target.image(version), container, state.live, noop=True)
    remove_first = () if rollback else tuple(c.name for c in [existing, *state.workers(version)] if c is not None)
    others = [c for c in state.apps() if c.version != version]
    stop = tuple(c.name for c in others if c.running)
    stop_workers = tuple(c.name for c in state.workers() if c.version != version and c.running)
    kept = others[: target.keep]
    doomed = others[target.keep:]
    kept_versions = {c.version for c in kept} | {version}
    doomed_workers = [c for c in state.workers() if c.version not in kept_versions]
    kept_images = {c.image for c in kept} | {target.image(version)}
    prune_images = tuple(sorted({c.image for c in doomed} - kept_images))
    fresh = not rollback
    accessories = tuple(a for a in services.accessories
                        if fresh and not _running(state, layout.accessory_container(a.name)))
    worker_env_files = tuple(w.service for w in services.workers if w.service in worker_env_files) if fresh else ()
    return HostPlan(
        session.name, version, target.image(version), container, state.live,
        remove_first=remove_first, stop=stop,
        prune=tuple(c.name for c in doomed) + tuple(c.name for c in doomed_workers),
        prune_images=prune_images, rollback=rollback, login=login and fresh, env_file=env_file and fresh,
        worker_env_files=worker_env_files, volumes=tuple(layout.volume(v) for v in services.volumes) if fresh else (),
        accessories=accessories,
        app_run=cmd.run_app(target, layout, version, env_file=env_file, spec=services.app) if fresh else None,
        worker_runs=tuple(cmd.run_worker(target, layout, version, w, env_file=w.service in worker_env_files)
                          for w in services.workers) if fresh else (),
        workers=workers, stop_workers=stop_workers,
        worker_start_seconds=target.worker_start_seconds if workers else 0.0, static_dir=target.static_dir,
        digest=digest if fresh else "")


#: the audit outcome of a deploy its release command stopped
RELEASE_FAILED = "release-command-failed"


@dataclass(frozen=True)
class ReleasePlan:
    """The release command of a deploy, on the primary host (first of the first batch), before any container of
    the new version starts: the image pulled there, the env file, volumes and accessories it needs, then a one-off
    ``docker run --rm`` bounded by the command's timeout."""

    session_name: str
    version: str
    image: str
    command: ReleaseCommand
    run: Command  # the one-off `docker run --rm` (inside :func:`.commands.bounded_release` on the host)
    previous: str | None
    login: bool = False
    env_file: bool = False
    volumes: tuple[str, ...] = ()
    accessories: tuple[Accessory, ...] = ()
    digest: str = ""  # as HostPlan.digest

    def lines(self) -> list[str]:
        out = []
        if self.login:
            out.append("log in to the registry (password on stdin)")
        out.append(f"pull {pull_display(self.image, self.digest)}")
        if self.env_file:
            out.append("upload the env file (mode 0600)")
        if self.volumes:
            out.append(f"create the volumes {', '.join(self.volumes)} if missing")
        for accessory in self.accessories:
            out.append(f"start the accessory {accessory.name} ({accessory.image})")
        out.append(f"run {self.command.text!r} once, in a one-off container of {self.version} (at most "
                   f"{self.command.timeout}s, then stopped and removed)")
        out.append(f"  $ {self.run.display()}")
        out.append(f"a failure stops the deploy here: nothing is swapped, {self.previous or 'nothing'} keeps serving")
        return out


def plan_release(target: StagingTarget, session: HostSession, host_plan: HostPlan, command: ReleaseCommand, *,
                 services: ComposeServices | None = None, entrypoint_mode: str = "bypass") -> ReleasePlan | None:
    """The release command's step on the primary, from its host plan; none on a rollback (nothing new runs) or
    when the version already serves there (its deploy ran the command)."""
    if host_plan.rollback or host_plan.noop:
        return None
    spec = (services or ComposeServices(app=RunSpec(""))).app
    return ReleasePlan(
        session.name, host_plan.version, host_plan.image, command,
        cmd.run_release_command(target, session.layout, host_plan.version, spec, command.argv,
                                env_file=host_plan.env_file, entrypoint_mode=entrypoint_mode),
        host_plan.previous, login=host_plan.login, env_file=host_plan.env_file, volumes=host_plan.volumes,
        digest=host_plan.digest,
        accessories=host_plan.accessories)


def _running(state: HostState, name: str) -> bool:
    found = state.container(name)
    return found is not None and found.running


def deploy_plan(env_name: str, action: str, version: str, sessions: Sequence[HostSession],
                plans: dict[str, HostPlan], *, batch_size: int, force_unlock: bool = False,
                lock_wait: float = 0, release: ReleasePlan | None = None, notes: Sequence[str] = ()) -> Plan:
    """The lock on the first host, the release command (on the primary), each batch of hosts with its planned
    steps, then the lock released."""
    first = sessions[0]
    steps = [Step(f"take the deploy lock on {first.name}",
                  instruction=ApiCall.of("lock", "acquire", version=version, action=action, force_unlock=force_unlock,
                                         wait=lock_wait),
                  details=(f"mkdir {first.layout.lock_dir}",)
                  + (("clear any held one first (--force-unlock)",) if force_unlock else ()))]
    if release is not None:
        steps.append(Step(f"run the release command on {release.session_name}",
                          instruction=ApiCall.of("release", "run", plan=release), details=tuple(release.lines())))
    groups = batches(sessions, batch_size)
    for n, group in enumerate(groups, 1):
        names = ", ".join(s.name for s in group)
        planned = tuple(plans[s.name] for s in group)
        steps.append(Step(f"{action} {version} on {names}" + (f" (batch {n}/{len(groups)})" if len(groups) > 1
                                                              else ""),
                          instruction=ApiCall.of("hosts", "deploy", plans=planned),
                          details=tuple(line for p in planned for line in p.lines())))
    steps.append(Step("release the deploy lock", instruction=ApiCall.of("lock", "release")))
    return Plan(f"{action} {version} to {env_name} ({len(sessions)} host{'s' if len(sessions) > 1 else ''})",
                tuple(steps), notes=tuple(notes))


# --- doing it on one host -----------------------------------------------------------------------------------------


@dataclass
class Registration:
    """What a host needs to pull: the registry login (None for a public registry) and the env file's text."""

    registry: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    env_text: str | None = field(default=None, repr=False)
    worker_env_texts: dict[str, str] = field(default_factory=dict, repr=False)  # service -> its env file
    accessory_env: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)  # name -> values


@dataclass
class HostDeployer:
    target: StagingTarget
    session: HostSession
    say: Say
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    health_interval: float = 0.25
    started: str = ""  # when this host's deploy began (for its audit record)
    journal: JournalEntry | None = None  # where this host's deploy is (also on the host: :mod:`.journal`)
    extra: dict[str, str] = field(default_factory=dict)  # what the audit records add (the release command's fate)

    @property
    def host(self) -> Any:
        return self.session.host

    @property
    def layout(self) -> Layout:
        return self.session.layout

    def run(self, command, **kwargs):
        return self.host.run(command, **kwargs)

    def deploy(self, plan: HostPlan, registration: Registration) -> str:
        if plan.noop:
            return f"{plan.version} already live"
        self.started = stamp(utc_now())
        # The journal comes first: whatever cuts this deploy short, the next command finds where it stopped.
        self.journal = begin(plan, previous=plan.previous)
        HostJournal(self.host, self.layout).write(self.journal)
        try:
            done = self._deploy(plan, registration)
        except INTERRUPTS:
            self.abandon(INTERRUPTED)
            raise
        except HealthCheckFailed:
            self.abandon(None, audit=False)  # the gate removed what it started and wrote the record
            raise
        except DockyardError as exc:
            note = self.abandon(None)
            if note:
                exc.args = (f"{exc.message}; {note}",)
            raise
        self.end_journal()
        return done

    def _deploy(self, plan: HostPlan, registration: Registration) -> str:
        started = self.clock()

        def progress(text: str) -> None:
            self.say(f"  {self.session.name}: {text} ({self.clock() - started:.1f}s)")

        if plan.rollback:
            self.run(cmd.start(self.layout, plan.container))
            progress(f"started the retained {plan.container}")
        else:
            self.prepare(plan, registration, progress, worker_env_files=plan.worker_env_files)
            if plan.remove_first:
                self.set_aside(plan.remove_first)
            self.run(plan.app_run or cmd.run_app(self.target, self.layout, plan.version, env_file=plan.env_file))
            progress(f"started {plan.container}")
        self.health_gate(plan)
        progress(f"{plan.container} is healthy")
        if plan.workers:
            self.start_workers(plan)
            progress(f"started {', '.join(plan.workers)}")
        try:
            if plan.static_dir:
                self.publish_static(plan)
                progress(f"copied the static files of {plan.container} for the proxy")
            self.switch(plan)
        except DockyardError:
            self.discard_workers(plan)
            raise
        progress(f"the proxy serves {plan.version}")
        stopped = plan.stop + plan.stop_workers
        if stopped:
            if self.target.drain_seconds and plan.stop:
                self.sleep(self.target.drain_seconds)
            self.run(cmd.stop(self.layout, stopped, self.target.stop_timeout), check=False)
            progress(f"stopped {', '.join(stopped)}")
        if plan.prune:
            self.run(cmd.remove(self.layout, plan.prune), check=False)
        pruned = self.prune_images(plan)
        if pruned:
            progress(f"removed the images {', '.join(pruned)}")
        self.audit(plan, SUCCEEDED)
        return f"{plan.previous or 'nothing'} -> {plan.version}"

    def prepare(self, plan: HostPlan | ReleasePlan, registration: Registration, progress,
                worker_env_files: Sequence[str] = ()) -> None:
        """What a container of the new version needs on this host before it starts: the registry login, the image,
        the env files (0600), the named volumes and the accessories; the same for the app and the release command."""
        if plan.login:
            self.login(registration)
        self.pull(plan.image, digest=plan.digest)
        progress(f"pulled {plan.image}")
        if plan.env_file:
            self.host.write_file(self.layout.env_file, registration.env_text or "", mode=0o600)
        for service in worker_env_files:
            self.host.write_file(self.layout.worker_env_file(service), registration.worker_env_texts[service],
                                 mode=0o600)
        if plan.volumes:
            self.run(cmd.ensure_volumes(self.target, self.layout, plan.volumes))
        if plan.accessories:
            for line in start_accessories(self.target, self.session, self.session.state(),
                                          registration.accessory_env, accessories=plan.accessories):
                progress(f"accessory {line}")

    def run_release_command(self, plan: ReleasePlan, registration: Registration) -> str:
        """Pull, hand over the env file, volumes and accessories, then the release command in a one-off container
        (its output streamed, masked); a failure or timeout is audited here and stops the deploy (exit 10)."""
        started = self.clock()
        self.started = stamp(utc_now())

        def progress(text: str) -> None:
            self.say(f"  {self.session.name}: {text} ({self.clock() - started:.1f}s)")

        self.prepare(plan, registration, progress)
        self.run(cmd.remove(self.layout, [self.layout.release_container]), check=False)  # one a killed deploy left
        timeout = plan.command.timeout
        progress(f"release command {plan.command.text!r} in a one-off container of {plan.version}:")
        ran = self.clock()
        try:
            result = self.run(cmd.bounded_release(self.layout, plan.run, timeout), check=False, stream=True,
                              timeout=timeout + 60)
        except INTERRUPTS:
            self._remove_release_container()
            self.audit_release(plan, INTERRUPTED, "interrupted while the release command ran")
            raise
        except DockyardError:
            self._remove_release_container()
            raise
        took = self.clock() - ran
        if result.ok:
            progress(f"the release command succeeded in {took:.1f}s")
            return f"ran {plan.command.text!r} ({took:.1f}s)"
        # the host script exits 124 once it stopped the command; its clock counts whole seconds (date +%s)
        if result.returncode == 124 and took >= timeout - 1.5:
            reason = f"ran longer than {timeout}s (release_command_timeout) and was stopped"
        else:
            reason = f"exited {result.returncode}"
        self._remove_release_container()
        self.audit_release(plan, RELEASE_FAILED, f"release command {reason}")
        raise ReleaseCommandFailed(plan.command, f"{reason} on {self.session.name} (its output is above)",
                                   serving=plan.previous or "")

    def _remove_release_container(self) -> None:
        try:
            self.run(cmd.remove(self.layout, [self.layout.release_container]), check=False)
        except DockyardError:
            pass  # the host is gone: the next deploy removes it before its own release command

    def audit_release(self, plan: ReleasePlan, result: str, detail: str) -> None:
        record = AuditRecord(action="deploy", environment=self.target.env_name, target=self.session.name,
                             version=plan.version, label=plan.version, who=actor(),
                             started=self.started or stamp(utc_now()), finished=stamp(utc_now()), result=result,
                             previous_label=plan.previous or "", previous_version=plan.previous or "",
                             image=plan.image, detail=detail, extra={AUDIT_KEY: detail})
        try:
            HostAuditLog(self.host, self.layout.audit_log).write(record)
        except DockyardError:
            pass  # the deploy's own error says what happened; a host that cannot take the record is shown there

    def prune_images(self, plan: HostPlan) -> list[str]:
        """Remove the images dockyard pulled here other than the live one and the retained containers' (best effort).

        Only images this prefix's deploys pulled (:class:`PulledImages`), never the user's own or another
        environment's; of those, not only the images of containers pruned now, also those left by a version that
        failed its health check. What the engine refuses (still used by a container) stays; a deploy never fails
        here.
        """
        listed = self.run(cmd.list_images(self.layout, self.target.repository), check=False)
        if not listed.ok:
            return []
        state = self.session.state()
        keep = {plan.image} | {c.image for c in state.apps()} | {c.image for c in state.workers()}
        pulled = PulledImages(self.host, self.layout.pulled_images)
        ours = pulled.names()
        doomed = [image for image in images_to_prune(listed.stdout, self.target.repository, keep) if image in ours]
        if not doomed:
            return []
        self.run(cmd.remove_images(self.layout, doomed), check=False)
        left = self.run(cmd.list_images(self.layout, self.target.repository), check=False)
        still = set(left.stdout.split()) if left.ok else set(doomed)
        removed = [image for image in doomed if image not in still]
        pulled.forget(removed)
        return removed

    def start_workers(self, plan: HostPlan) -> None:
        """Start this version's workers; one that is gone (or restarting) ``worker_start_seconds`` later fails the
        deploy: the workers and the new app are removed (stopped, on a rollback) and the old version keeps serving."""
        for container, run in zip(plan.workers, plan.worker_runs or [None] * len(plan.workers)):
            result = self.run(run or cmd.start(self.layout, container), check=False)
            if not result.ok:
                said = " ".join((result.stderr or result.stdout).split())
                self.fail_workers(plan, container, f"did not start ({said[-200:]})")
        if plan.worker_start_seconds:
            self.sleep(plan.worker_start_seconds)
        said = self.run(cmd.container_status(self.layout, plan.workers), check=False).stdout
        status = {}
        for line in said.splitlines():
            name, _, rest = line.strip().lstrip("/").partition(" ")
            status[name] = rest.split()
        for container in plan.workers:
            state, restarts, code = ((status.get(container) or ["missing"]) + ["0", "?"])[:3]
            if state != "running" or restarts != "0":
                self.fail_workers(plan, container, f"exited right after its start (exit {code})")

    def discard_workers(self, plan: HostPlan) -> None:
        if not plan.workers:
            return
        if plan.rollback:
            self.run(cmd.stop(self.layout, plan.workers, self.target.stop_timeout), check=False)
        else:
            self.run(cmd.remove(self.layout, plan.workers), check=False)

    def fail_workers(self, plan: HostPlan, container: str, problem: str) -> None:
        tail = self.run(cmd.logs(self.layout, container, tail=20), check=False)
        self.say(f"{self.session.name}: last log lines of {container}:")
        for line in (tail.stdout + tail.stderr).strip().splitlines()[-20:]:
            self.say(f"  | {line}")
        self.discard_workers(plan)
        if plan.rollback:
            self.run(cmd.stop(self.layout, [plan.container], self.target.stop_timeout), check=False)
        else:
            self.run(cmd.remove(self.layout, [plan.container]), check=False)
        self.audit(plan, "failed")
        kept = f"{plan.previous} keeps serving" if plan.previous else "nothing was live"
        verb = "stopped" if plan.rollback else "removed"
        raise HealthCheckFailed(f"{self.session.name}: worker {container} {problem}; it, the other workers of "
                                f"{plan.version} and {plan.container} were {verb} and {kept}")

    def login(self, registration: Registration) -> None:
        result = self.run(cmd.login(self.layout, registration.registry, registration.username,
                                    registration.password), check=False)
        if not result.ok:
            from ..core.credentials import RegistryCredentials
            from ..registry import login_error

            said = self.host.mask((result.stderr or result.stdout).strip())
            error = login_error(RegistryCredentials(registration.registry, registration.username, "x"), said)
            raise type(error)(f"{self.session.name}: {error.message}", exit_code=error.exit_code)

    def pull(self, image: str, *, digest: str = "") -> None:
        """``docker pull`` of ``image``, or with ``digest`` of exactly that digest, then tagged ``image``."""
        already_here = self.run(cmd.image_present(self.layout, image), check=False).ok
        pinned = f"{image.rpartition(':')[0]}@{digest}" if digest else image
        result = self.run(cmd.pull(self.layout, pinned), check=False)
        if result.ok and digest:
            result = self.run(cmd.docker(self.layout, "tag", pinned, image), check=False)
        if result.ok:
            if not already_here:  # an image that was here before is not ours to remove later
                PulledImages(self.host, self.layout.pulled_images).record(image)
            return
        said = " ".join((result.stderr or result.stdout).split())
        if any(s in said.lower() for s in ("not found", "manifest unknown", "does not exist")):
            raise Refused(f"{self.session.name}: image {image} is not in the registry ({said[-160:]}); "
                          f"publish it first, or check the VERSION")
        if any(s in said.lower() for s in UNREACHABLE_WORDS):
            registry = image.split("/", 1)[0] if "/" in image else "docker.io"
            raise Unreachable(f"{self.session.name}: registry {registry} is unreachable from there "
                              f"({said[-200:]}); check the host's DNS and network, and dockyard.image.repository")
        raise CommandFailed(f"{self.session.name}: docker pull {image} failed: {said[-300:]}")

    def address(self, container: str) -> tuple[str, str]:
        result = self.run(cmd.container_address(self.layout, container), check=False)
        state, _, ip = result.stdout.strip().partition(" ")
        return state or "missing", ip.strip()

    def health_gate(self, plan: HostPlan) -> Probe:
        deadline = self.clock() + self.target.health_timeout
        last = Probe(False, None, "not checked")
        not_found = 0
        while True:
            state, ip = self.address(plan.container)
            if state not in ("running", "created", "restarting"):
                last = Probe(False, None, f"the container is {state}")
                break
            if ip:
                last, _ = self.host.http_get(ip, self.target.app_port, self.target.health_path,
                                             timeout=min(5.0, self.target.health_timeout),
                                             host=self.target.health_host)
                if last.ok:
                    return last
                not_found = not_found + 1 if last.status == 404 else 0
                if not_found >= NOT_FOUND_LIMIT:
                    self.fail_health(plan, last, self.target.health_setting.not_found(f"{self.session.name}: {plan.version}"))
            if self.clock() >= deadline:
                break
            self.sleep(self.health_interval)
        self.fail_health(plan, last)
        raise AssertionError("unreachable")  # pragma: no cover

    def fail_health(self, plan: HostPlan, last: Probe, problem: str = "") -> None:
        tail = self.run(cmd.logs(self.layout, plan.container, tail=20), check=False)
        lines = (tail.stdout + tail.stderr).strip().splitlines()
        self.say(f"{self.session.name}: last log lines of {plan.container}:")
        for line in lines[-20:]:
            self.say(f"  | {line}")
        if plan.rollback:
            self.run(cmd.stop(self.layout, [plan.container], self.target.stop_timeout), check=False)
        else:
            self.run(cmd.remove(self.layout, [plan.container]), check=False)
        self.audit(plan, "health-failed")
        kept = f"{plan.previous} keeps serving" if plan.previous else "nothing was live"
        setting = self.target.health_setting
        problem = problem or (
            f"{self.session.name}: {plan.version} did not answer {self.target.health_path} ({setting.path_key}) "
            f"with 2xx within {self.target.health_timeout:g}s (last: {last.detail}{setting.hint(last)}"
            f"{self.port_hint(last)})"
        )
        raise HealthCheckFailed(f"{problem}; it was {'stopped' if plan.rollback else 'removed'} and {kept}")

    def port_hint(self, last: Probe) -> str:
        """A refused connection most often means the app listens on another port than the one probed."""
        if last.status is None and "refused" in last.detail.lower():
            return (f"; nothing answered on port {self.target.app_port} in the container: set dockyard.ssh.app_port "
                    "to the port the app listens on")
        return ""

    def publish_static(self, plan: HostPlan) -> None:
        """Copy the new version's static files where the proxy serves them, and give the proxy the configuration
        that serves them (a host set up before ``dockyard.static`` was set gets it here; the switch reloads it)."""
        copied = self.run(cmd.copy_static(self.layout, plan.container, plan.static_dir), check=False)
        if not copied.ok:
            said = " ".join((copied.stderr or copied.stdout).split())
            raise CommandFailed(f"{self.session.name}: could not copy the static files of {plan.container} from "
                                f"{plan.static_dir} (dockyard.static.dir): {said[-300:]}; the old version keeps "
                                "serving")
        conf = render_proxy_conf(static_url=self.target.static_url)
        if self.host.read_file(self.layout.proxy_conf) != conf:
            self.host.write_file(self.layout.proxy_conf, conf, mode=0o644)

    def switch(self, plan: HostPlan) -> None:
        """Write the upstream, test and reload nginx, check the new version answers through the proxy, then record
        it in the journal; a step that fails puts the old upstream back (and reloads, if nginx had taken the new)."""
        journal = HostJournal(self.host, self.layout)
        upstream = render_upstream(plan.container, self.target.app_port, plan.version)
        before = self.host.read_file(self.layout.upstream_conf)
        journal.write(self.journal.at(SWITCHING))
        self.host.write_file(self.layout.upstream_conf, upstream, mode=0o644)
        result = self.run(cmd.reload_proxy(self.layout), check=False)
        if not result.ok:
            if before is not None:
                self.host.write_file(self.layout.upstream_conf, before, mode=0o644)
            said = " ".join((result.stderr or result.stdout).split())
            raise CommandFailed(f"{self.session.name}: the proxy refused the new upstream ({said[-300:]}); "
                                f"the old version keeps serving; run `inv {self.target.env_name}.setup`")
        try:
            self.confirm_switch(plan.version)
        except CommandFailed:
            if before is not None:
                self.host.write_file(self.layout.upstream_conf, before, mode=0o644)
                self.run(cmd.reload_proxy(self.layout), check=False)
            raise
        self.journal = self.journal.at(SWITCHED)
        journal.write(self.journal)
        if self.journal.set_aside:  # the new version serves: what it replaced is not needed any more
            self.run(cmd.remove(self.layout, [aside_name(n) for n in self.journal.set_aside]), check=False)

    def set_aside(self, names: Sequence[str]) -> None:
        """Rename the earlier containers of this version out of the way, rather than remove them before the new
        one is proven (a failed start or health gate puts them back: :mod:`.journal`)."""
        self.journal = replace(self.journal, set_aside=tuple(names))
        HostJournal(self.host, self.layout).write(self.journal)
        for name in names:
            self.run(cmd.remove(self.layout, [aside_name(name)]), check=False)  # one an older failure left
            self.run(cmd.rename(self.layout, name, aside_name(name)))

    def confirm_switch(self, version: str, timeout: float = 15.0) -> None:
        """Wait until new connections reach the new workers (a reload is asynchronous) and the app answers its
        health check through the proxy."""
        deadline = self.clock() + timeout
        _, ip = self.address(self.layout.proxy)
        answer = ""
        last = Probe(False, None, "not checked")
        while self.clock() < deadline:
            if ip:
                probe, body = self.host.http_get(ip, 80, VERSION_PATH, timeout=3)
                answer = body.strip()
                if probe.ok and answer == version:
                    last, _ = self.host.http_get(ip, 80, self.target.health_path, timeout=5,
                                                 host=self.target.health_host)
                    if last.ok:
                        return
            self.sleep(0.1)
        if answer == version:
            raise CommandFailed(f"{self.session.name}: {version} does not answer {self.target.health_path} through "
                                f"the proxy ({last.detail}); the old version is back; check "
                                f"`inv {self.target.env_name}.logs --service proxy`")
        raise CommandFailed(f"{self.session.name}: the proxy still serves {answer or 'nothing'} {timeout:g}s after "
                            f"the reload; check `inv {self.target.env_name}.logs --service proxy`")

    def abandon(self, result: str | None, *, audit: bool = True) -> str:
        """Settle this host's deploy that stopped early (undo it, or finish it if the new version already serves),
        as the next command would from the journal; returns what now serves. A host that is gone keeps its
        journal: the next command settles it."""
        try:
            recovery = plan_recovery(self.journal, self.session.state(), self.layout, self.target.app_port)
            run_recovery(recovery, self.session, env_name=self.target.env_name,
                         stop_timeout=self.target.stop_timeout, result=result, audit=audit)
        except DockyardError:
            return "the next deploy there finishes or undoes what this one left"
        if recovery.finish:
            return f"{self.journal.version} serves"
        removed = f"{', '.join(recovery.remove)} removed, " if recovery.remove else ""
        return f"{removed}{self.journal.previous or 'nothing'} {'keeps serving' if self.journal.previous else 'is live'}"

    def end_journal(self) -> None:
        HostJournal(self.host, self.layout).clear()

    def audit(self, plan: HostPlan, result: str) -> None:
        record = AuditRecord(action="rollback" if plan.rollback else "deploy", environment=self.target.env_name,
                             target=self.session.name, version=plan.version, label=plan.version, who=actor(),
                             started=self.started or stamp(utc_now()), finished=stamp(utc_now()), result=result,
                             previous_label=plan.previous or "", previous_version=plan.previous or "",
                             image="" if plan.rollback else plan.image, extra=dict(self.extra))
        try:
            HostAuditLog(self.host, self.layout.audit_log).write(record)
        except CommandFailed as exc:
            raise CommandFailed(f"{self.session.name}: the {record.action} of {plan.version} ended {result}, but "
                                f"{exc.message}: fix the disk or its permissions there") from None


# --- setup ----------------------------------------------------------------------------------------------------------


def setup_host(target: StagingTarget, session: HostSession, env_values: dict[str, dict[str, str]], say: Say,
               *, accessories: Sequence[Accessory] | None = None, volumes: Sequence[str] = ()) -> list[str]:
    """Idempotently: Docker present, directories, network, proxy, accessories. Returns what was done."""
    host, layout = session.host, session.layout
    done = [f"docker {check_docker(session)}"]
    host.run(cmd.make_dirs(layout))
    host.run(cmd.ensure_network(layout))
    host.write_file(layout.proxy_conf, render_proxy_conf(static_url=target.static_url), mode=0o644)
    state = session.state()
    if state.upstream_text is None:
        host.write_file(layout.upstream_conf, render_upstream(None, target.app_port, None), mode=0o644)
    proxy = state.proxy()
    if proxy is not None and proxy.running and proxy.image == target.proxy_image:
        host.run(cmd.reload_proxy(layout))
        done.append(f"proxy {layout.proxy} reloaded")
    else:
        if proxy is not None:
            host.run(cmd.remove(layout, [proxy.name]))
        started = host.run(cmd.run_proxy(target, layout, session.spec.proxy_port), check=False)
        if not started.ok:
            said = " ".join((started.stderr or started.stdout).split())[-300:]
            raise CommandFailed(f"{session.name}: the proxy ({target.proxy_image}) did not start ({said}); set "
                                "dockyard.ssh.proxy_image to an nginx image this host can pull or has")
        done.append(f"proxy {layout.proxy} started on port {session.spec.proxy_port}")
    if volumes:
        host.run(cmd.ensure_volumes(target, layout, [layout.volume(v) for v in volumes]))
        done.append(f"volumes {', '.join(layout.volume(v) for v in volumes)} present")
    done += start_accessories(target, session, state, env_values, accessories=accessories)
    return done


def start_accessories(target: StagingTarget, session: HostSession, state: HostState,
                      env_values: dict[str, dict[str, str]], *, names: Iterable[str] | None = None,
                      accessories: Sequence[Accessory] | None = None) -> list[str]:
    """Start ``names`` of ``accessories`` (default: all of them; the settings' when not given): a missing one is
    created, a stopped one started, a running one left alone (so is its data)."""
    known_ones = list(target.accessories if accessories is None else accessories)
    done = []
    wanted = list(names) if names is not None else [a.name for a in known_ones]
    for name in wanted:
        accessory = next((a for a in known_ones if a.name == name), None)
        if accessory is None:
            known = ", ".join(a.name for a in known_ones) or "none"
            raise Refused(f"no accessory named {name!r} (configured: {known})")
        container = session.layout.accessory_container(name)
        existing = next((c for c in state.containers if c.name == container), None)
        if existing is not None and existing.running:
            done.append(f"{name} already running")
            continue
        if existing is not None:
            session.host.run(cmd.start(session.layout, container))
            done.append(f"{name} started")
            continue
        values = env_values.get(name) or dict(accessory.env)
        if values:
            session.host.write_file(session.layout.accessory_env_file(name), cmd.env_file_text(values), mode=0o600)
        session.host.run(cmd.run_accessory(target, session.layout, accessory, env_file=bool(values)))
        done.append(f"{name} created from {accessory.image}")
    return done


def images_to_prune(listed: str, repository: str, keep: set[str]) -> list[str]:
    """``repository:tag`` lines (``docker image ls``) minus ``keep``; untagged images are left alone."""
    out = []
    for line in listed.split():
        name, _, tag = line.rpartition(":")
        if name == repository and tag and tag != "<none>" and line not in keep and line not in out:
            out.append(line)
    return out


def batches(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i:i + size]) for i in range(0, len(items), max(1, size))]


def describe_error(exc: BaseException) -> str:
    return exc.message if isinstance(exc, DockyardError) else f"{type(exc).__name__}: {exc}"
