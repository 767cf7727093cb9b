"""Deploying to SSH hosts: read each host's state, plan (pure), then run the plan host by host.

A host is anything with ``run(Command)``, ``write_file``, ``read_file`` and ``http_get`` (see
:class:`dockyard.clients.ssh.SshHost`); this module imports no client. Waits take ``sleep`` and ``clock``. The lock
(an atomic ``mkdir`` on the first host) and the audit log (a line per host) are :mod:`dockyard.core`'s.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.actor import actor, stamp, utc_now
from ..core.history import SUCCEEDED, AuditRecord, HostAuditLog
from ..core.locks import DeployLock, HostDirLockStore
from ..core.signals import INTERRUPTED, INTERRUPTS
from ..errors import CommandFailed, DockyardError, HealthCheckFailed, Refused, Unreachable
from ..health import NOT_FOUND_LIMIT, Probe
from ..plan import ApiCall, Plan, Step
from . import commands as cmd
from .model import HostSpec, Layout, StagingTarget
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

    @property
    def running(self) -> bool:
        return self.state in ("running", "restarting")


@dataclass(frozen=True)
class HostState:
    containers: tuple[Container, ...]
    live: str | None  # the version the proxy routes to
    upstream_text: str | None

    def apps(self) -> list[Container]:
        return sorted((c for c in self.containers if c.role == "app"), key=lambda c: c.created, reverse=True)

    def app(self, version: str) -> Container | None:
        return next((c for c in self.apps() if c.version == version), None)

    def proxy(self) -> Container | None:
        return next((c for c in self.containers if c.role == "proxy"), None)


def parse_containers(text: str) -> tuple[Container, ...]:
    out = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 6:
            out.append(Container(*parts[:6]))
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
        return HostState(containers, live_version(upstream), upstream)


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
    return DeployLock(store, environment=env_name, sleep=sleep)


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
            out.append(f"  pull {self.image}")
            if self.env_file:
                out.append("  upload the env file (mode 0600)")
            if self.remove_first:
                out.append(f"  remove the stopped {', '.join(self.remove_first)}")
            out.append(f"  start {self.container} beside the old one")
        out.append("  wait until it answers the health check, else remove it and stop")
        out.append("  switch the proxy to it (graceful reload), drain")
        if self.stop:
            out.append(f"  stop {', '.join(self.stop)} (kept for rollback)")
        if self.prune:
            out.append(f"  remove old versions {', '.join(self.prune)}")
        out.append(f"  remove the images dockyard pulled here for older versions (keep {self.image} and the retained ones)")
        out.append("  append to the audit log")
        return out


def plan_host(target: StagingTarget, session: HostSession, state: HostState, version: str, *,
              rollback: bool = False, login: bool = False, env_file: bool = False) -> HostPlan:
    """What to do on one host, from its state; ``login`` and ``env_file`` say whether the deploy has registry
    credentials and an env file to hand over (a rollback needs neither: it pulls nothing)."""
    layout = session.layout
    container = layout.app_container(version)
    existing = state.app(version)
    if rollback and existing is None:
        raise Refused(f"{session.name}: no retained container of {version} to roll back to "
                      f"(retained: {', '.join(c.version for c in state.apps()) or 'none'}); deploy it instead")
    if state.live == version and existing is not None and existing.running:
        return HostPlan(session.name, version, target.image(version), container, state.live, noop=True)
    remove_first = (existing.name,) if (existing is not None and not rollback) else ()
    others = [c for c in state.apps() if c.version != version]
    stop = tuple(c.name for c in others if c.running)
    kept = others[: target.keep]
    doomed = others[target.keep:]
    kept_images = {c.image for c in kept} | {target.image(version)}
    prune_images = tuple(sorted({c.image for c in doomed} - kept_images))
    return HostPlan(session.name, version, target.image(version), container, state.live,
                    remove_first=remove_first, stop=stop, prune=tuple(c.name for c in doomed),
                    prune_images=prune_images, rollback=rollback, login=login and not rollback,
                    env_file=env_file and not rollback)


def deploy_plan(env_name: str, action: str, version: str, sessions: Sequence[HostSession],
                plans: dict[str, HostPlan], *, batch_size: int, force_unlock: bool = False,
                lock_wait: float = 0) -> Plan:
    """The lock on the first host, each batch of hosts with its planned steps, then the lock released."""
    first = sessions[0]
    steps = [Step(f"take the deploy lock on {first.name}",
                  instruction=ApiCall.of("lock", "acquire", version=version, action=action, force_unlock=force_unlock,
                                         wait=lock_wait),
                  details=(f"mkdir {first.layout.lock_dir}",)
                  + (("clear any held one first (--force-unlock)",) if force_unlock else ()))]
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
                tuple(steps))


# --- doing it on one host -----------------------------------------------------------------------------------------


@dataclass
class Registration:
    """What a host needs to pull: the registry login (None for a public registry) and the env file's text."""

    registry: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    env_text: str | None = field(default=None, repr=False)


@dataclass
class HostDeployer:
    target: StagingTarget
    session: HostSession
    say: Say
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    health_interval: float = 0.25
    started: str = ""  # when this host's deploy began (for its audit record)

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
        try:
            return self._deploy(plan, registration)
        except INTERRUPTS:
            try:
                self.audit(plan, INTERRUPTED)
            except DockyardError:
                pass  # the host is gone: the interrupt is what the user must see
            raise

    def _deploy(self, plan: HostPlan, registration: Registration) -> str:
        started = self.clock()

        def progress(text: str) -> None:
            self.say(f"  {self.session.name}: {text} ({self.clock() - started:.1f}s)")

        if plan.rollback:
            self.run(cmd.start(self.layout, plan.container))
            progress(f"started the retained {plan.container}")
        else:
            if plan.login:
                self.login(registration)
            self.pull(plan.image)
            progress(f"pulled {plan.image}")
            if plan.env_file:
                self.host.write_file(self.layout.env_file, registration.env_text or "", mode=0o600)
            if plan.remove_first:
                self.run(cmd.remove(self.layout, plan.remove_first))
            self.run(cmd.run_app(self.target, self.layout, plan.version, env_file=plan.env_file))
            progress(f"started {plan.container}")
        self.health_gate(plan)
        progress(f"{plan.container} is healthy")
        self.switch(plan)
        progress(f"the proxy serves {plan.version}")
        if plan.stop:
            if self.target.drain_seconds:
                self.sleep(self.target.drain_seconds)
            self.run(cmd.stop(self.layout, plan.stop, self.target.stop_timeout), check=False)
            progress(f"stopped {', '.join(plan.stop)}")
        if plan.prune:
            self.run(cmd.remove(self.layout, plan.prune), check=False)
        pruned = self.prune_images(plan)
        if pruned:
            progress(f"removed the images {', '.join(pruned)}")
        self.audit(plan, SUCCEEDED)
        return f"{plan.previous or 'nothing'} -> {plan.version}"

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
        keep = {plan.image} | {c.image for c in state.apps()}
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

    def login(self, registration: Registration) -> None:
        result = self.run(cmd.login(self.layout, registration.registry, registration.username,
                                    registration.password), check=False)
        if not result.ok:
            from ..core.credentials import RegistryCredentials
            from ..registry import login_error

            said = self.host.mask((result.stderr or result.stdout).strip())
            error = login_error(RegistryCredentials(registration.registry, registration.username, "x"), said)
            raise type(error)(f"{self.session.name}: {error.message}", exit_code=error.exit_code)

    def pull(self, image: str) -> None:
        already_here = self.run(cmd.image_present(self.layout, image), check=False).ok
        result = self.run(cmd.pull(self.layout, image), check=False)
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
            f"with 2xx within {self.target.health_timeout:g}s (last: {last.detail}{setting.hint(last)})"
        )
        raise HealthCheckFailed(f"{problem}; it was {'stopped' if plan.rollback else 'removed'} and {kept}")

    def switch(self, plan: HostPlan) -> None:
        upstream = render_upstream(plan.container, self.target.app_port, plan.version)
        before = self.host.read_file(self.layout.upstream_conf)
        self.host.write_file(self.layout.upstream_conf, upstream, mode=0o644)
        result = self.run(cmd.reload_proxy(self.layout), check=False)
        if not result.ok:
            if before is not None:
                self.host.write_file(self.layout.upstream_conf, before, mode=0o644)
            said = " ".join((result.stderr or result.stdout).split())
            raise CommandFailed(f"{self.session.name}: the proxy refused the new upstream ({said[-300:]}); "
                                f"the old version keeps serving; run `inv {self.target.env_name}.setup`")
        self.confirm_switch(plan.version)

    def confirm_switch(self, version: str, timeout: float = 15.0) -> None:
        """Wait until new connections reach the new workers (a reload is asynchronous)."""
        deadline = self.clock() + timeout
        _, ip = self.address(self.layout.proxy)
        answer = ""
        while self.clock() < deadline:
            if ip:
                probe, body = self.host.http_get(ip, 80, VERSION_PATH, timeout=3)
                answer = body.strip()
                if probe.ok and answer == version:
                    return
            self.sleep(0.1)
        raise CommandFailed(f"{self.session.name}: the proxy still serves {answer or 'nothing'} {timeout:g}s after "
                            f"the reload; check `inv {self.target.env_name}.logs --service proxy`")

    def audit(self, plan: HostPlan, result: str) -> None:
        record = AuditRecord(action="rollback" if plan.rollback else "deploy", environment=self.target.env_name,
                             target=self.session.name, version=plan.version, label=plan.version, who=actor(),
                             started=self.started or stamp(utc_now()), finished=stamp(utc_now()), result=result,
                             previous_label=plan.previous or "", previous_version=plan.previous or "",
                             image="" if plan.rollback else plan.image)
        HostAuditLog(self.host, self.layout.audit_log).write(record)


# --- setup ----------------------------------------------------------------------------------------------------------


def setup_host(target: StagingTarget, session: HostSession, env_values: dict[str, dict[str, str]], say: Say,
               *, accessories: Iterable[str] | None = None) -> list[str]:
    """Idempotently: Docker present, directories, network, proxy, accessories. Returns what was done."""
    host, layout = session.host, session.layout
    done = [f"docker {check_docker(session)}"]
    host.run(cmd.make_dirs(layout))
    host.run(cmd.ensure_network(layout))
    host.write_file(layout.proxy_conf, render_proxy_conf(), mode=0o644)
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
        host.run(cmd.run_proxy(target, layout, session.spec.proxy_port))
        done.append(f"proxy {layout.proxy} started on port {session.spec.proxy_port}")
    done += start_accessories(target, session, state, env_values, names=accessories)
    return done


def start_accessories(target: StagingTarget, session: HostSession, state: HostState,
                      env_values: dict[str, dict[str, str]], *, names: Iterable[str] | None = None) -> list[str]:
    done = []
    wanted = list(names) if names is not None else [a.name for a in target.accessories]
    for name in wanted:
        accessory = target.accessory(name)
        if accessory is None:
            known = ", ".join(a.name for a in target.accessories) or "none"
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
