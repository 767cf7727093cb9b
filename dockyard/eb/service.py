"""What the ``deploy`` and ``eb.*`` tasks call: reads state through the clients, builds plans, says what it does."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from collections.abc import Callable
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from ..clients.eb import ENV_NAMESPACE, SECRETS_NAMESPACE, EbClient, EnvironmentState, make_client
from ..core.actor import stamp, utc_now
from ..core.history import AuditRecord, S3AuditStore, previous_good_release
from ..core.locks import DRY_RUN_LOCK_NOTE, DeployLock, S3LockStore
from ..core.versions import Release, configured_release, label_version
from ..errors import ConfigError, Refused
from ..plan import Plan, WithArguments, display, run_plan
from .bundle import Bundle, BundleInputs, build_bundle
from .deploy import (
    DeployFailed,
    EbDeploy,
    EbWaiter,
    WaitPolicy,
    bundle_dockerrun_diff,
    check_label,
    deploy_plan,
    dry_run_report,
    result_of,
    rollback_plan,
    setenv_plan,
    swap_plan,
)
from .dockerrun import DockercfgLocation, dockercfg

AUTH_HINTS = {
    "dockercfg": "check the dockercfg: `inv eb.dockercfg`",
    "ssm": "check the SSM parameters {eb.ssm_username} and {eb.ssm_password}, and that the instance profile may "
           "read them (`inv eb.policies`)",
    "ecr": "check that the instance profile may pull from ECR (`inv eb.policies`)",
    "none": "the registry wants credentials: set dockyard.eb.auth",
}


@dataclass(frozen=True)
class EbDeployed:
    """What a deploy decided, the plan it showed or ran, and how it ended (``planned`` for a dry run)."""

    decided: EbDeploy
    plan: Plan
    result: str

    @property
    def label(self) -> str:
        return self.decided.label

    @property
    def previous_label(self) -> str:
        return self.decided.previous_label


class EbService:
    def __init__(self, project: Any, env_name: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.project = project
        self.settings = project.settings
        self.eb = self.settings.eb
        self.env = self.settings.environment(env_name)
        self.target = self.eb.environment(env_name)
        self.sleep = sleep
        self._rollback_secrets: Any = None  # the secrets change of the rollback being planned (for its record)

    def say(self, text: str = "") -> None:
        self.project.say(text)

    @property
    def application(self) -> str:
        return self.eb.application

    @cached_property
    def client(self) -> EbClient:
        return make_client(self.settings, self.eb, sleep=self.sleep)

    def policy(self, timeout: float = 0) -> WaitPolicy:
        return WaitPolicy(healthy_states=self.eb.healthy_states, health_window=self.eb.health_window,
                          timeout=timeout or self.eb.timeout, poll_interval=self.eb.poll_interval,
                          auth_hint=AUTH_HINTS.get(self.eb.auth, AUTH_HINTS["dockercfg"]).format(eb=self.eb))

    # --- inputs ----------------------------------------------------------------------------------------------------
    def release(self, version: str = "") -> Release:
        return configured_release(self.settings, self.project.git, version)

    def image(self, release: Release) -> str:
        from ..core.compose import release_image

        return release_image(self.settings, release)

    def credentials(self) -> Any:
        from ..core.credentials import gather_credentials

        return gather_credentials(self.settings, mask=self.project.mask, env_file=self.env.env_file)

    def require_image(self, release: Release) -> None:
        from ..registry import remote_digest

        if self.eb.auth == "none" and not self.settings.registry.username:
            return
        if remote_digest(self.credentials(), self.settings.repository, release.image_tag) is None:
            raise Refused(f"release {release.version} is not published: {self.image(release)} is not in the "
                          "registry (run `inv release`, or push the image)")

    def dockercfg_location(self) -> DockercfgLocation | None:
        if self.eb.auth != "dockercfg":
            return None
        if not self.eb.bucket:
            raise ConfigError("dockyard.eb.bucket: not set; the dockercfg and the bundles live in this S3 bucket")
        return DockercfgLocation(self.eb.bucket, self.eb.dockercfg_key)

    def bundle(self, release: Release, platform: str = "", *, skip_release_command: bool = False) -> Bundle:
        from ..core.compose import deploy_compose
        from ..core.release_command import release_command_of

        if platform:  # a platform asked for on the command line (eb.bundle --platform); the settings' are checked
            self.eb.require_auth_works_on(platform, f"--platform {platform}")
        platform = platform or self.target.platform
        image = self.image(release)
        compose = None
        if platform != "v1":  # v1 runs one container and reads no compose file
            compose = deploy_compose(self.settings, self.env, image, needed_by=(
                f"the {platform} platform builds its containers from the compose file; set it (or use eb.platform: "
                "v1)"), port=self.eb.host_port)
        return build_bundle(BundleInputs(
            project_root=self.settings.root, env=self.env, eb_environment=self.target.name,
            platform=platform, image=image, auth=self.eb.auth, registry=self.settings.registry.url,
            dockercfg=self.dockercfg_location(), ssm_username=self.eb.ssm_username,
            ssm_password=self.eb.ssm_password, ssm_password_arn=self.parameter_arn(self.eb.ssm_password)
            if self.eb.auth == "ssm" else "", container_port=self.eb.container_port, default_memory=self.eb.memory,
            compose=compose, volumes=self.eb.volumes,
            release_command=None if skip_release_command else release_command_of(self.env)))

    def lock(self, clear: str = "") -> DeployLock:
        """The environment's lock; ``clear``: the command a refusal by a dead holder names."""
        store = S3LockStore(self.client.s3, self.eb.bucket, self.eb.key("locks", f"{self.env.name}.json"))
        return DeployLock(store, environment=self.env.name, sleep=self.sleep,
                          clear=clear or f"inv eb.deploy --env {self.env.name} --version VERSION --force-unlock")

    def lock_status(self) -> str:
        """``free``, or who holds the lock (``STALE: …`` when that holder looks dead), for ``eb.status``."""
        from ..core.locks import lock_status

        return lock_status(self.lock()) if self.eb.bucket else "none (dockyard.eb.bucket is not set)"

    def audit(self) -> S3AuditStore:
        return S3AuditStore(self.client.s3, self.eb.bucket, self.eb.key())

    def journal_store(self) -> Any:
        """Where this environment's deploy journal lives: beside its lock (see :mod:`dockyard.core.journal`)."""
        from ..core.journal import S3JournalStore

        return S3JournalStore(self.client.s3, self.eb.bucket, self.eb.key("journal", f"{self.env.name}.json"))

    def open_journal(self, action: str, version: str, target: str, started: datetime, previous: str,
                     who: str, image: str = "") -> Any:
        """Settle what an earlier, killed deploy left (holding the lock), then begin this deploy's entry."""
        from ..core.journal import DeployJournal, JournalEntry, deploy_id, settle

        store = self.journal_store()
        settle(store, self.audit(), say=self.say)
        journal = DeployJournal(store, JournalEntry(
            deploy=deploy_id(who, stamp(started)), action=action, environment=self.env.name, target=target,
            version=version, previous_label=previous, started=stamp(started), who=who, image=image))
        journal.begin()
        return journal

    def journal_line(self) -> str:
        """``eb.status``'s line about a deploy in progress or one that never finished ("" when there is none)."""
        from ..core.journal import journal_line

        return journal_line(self.journal_store(), self.lock_status()) if self.eb.bucket else ""

    def ready_state(self, name: str) -> EnvironmentState:
        self.client.require_application(self.application)
        state = self.client.require_environment(self.application, name)
        if state.status != "Ready":
            raise Refused(f"environment {name} is {state.status}, not Ready: dockyard does not queue behind another "
                          "update; wait until it is Ready (`inv eb.status`), then deploy again")
        return state

    # --- deploy ------------------------------------------------------------------------------------------------------
    def deploy(self, version: str = "", *, dry_run: bool = False, no_wait: bool = False, timeout: float = 0,
               no_rollback: bool = False, force_unlock: bool = False, environment: str = "",
               action: str = "deploy", skip_release_command: bool = False) -> EbDeployed:
        """Take the lock, then read state and plan from it, then run the plan (its first step finds the lock held
        by this deploy); a deploy refused by the lock has read and changed nothing. A dry run takes no lock: it
        plans from the state as it reads it, and says so."""
        name = environment or self.target.name
        from ..core.release_command import release_command_of
        from ..core.versions import NO_RELEASE_COMMAND

        release = self.release(version)
        skip_release_command = skip_release_command and release_command_of(self.env) is not None
        if skip_release_command:  # another bundle, so another label
            release = replace(release, label_suffix=NO_RELEASE_COMMAND)
        self.client.require_bucket(self.eb.bucket)
        lock = self.lock(f"inv eb.deploy --env {self.env.name} --version {release.version} --force-unlock")
        options = {"timeout": timeout, "no_wait": no_wait, "no_rollback": no_rollback, "force_unlock": force_unlock,
                   "skip_release_command": skip_release_command}
        if dry_run:
            state, decided, bundle = self.plan_inputs(release, name, lock, **options)
            plan = deploy_plan(decided)
            display(plan, mask=self.project.mask)
            self.say(dry_run_report(bundle, self._diff_against_live(state, bundle)))
            self.say(DRY_RUN_LOCK_NOTE)
            return EbDeployed(decided, plan, "planned")
        started = utc_now()
        lock.acquire(str(release.version), force_unlock=force_unlock, say=lambda text: self.say(f"  {text}"))
        try:
            state, decided, bundle = self.plan_inputs(release, name, lock, **options)
        except BaseException:
            lock.release()  # refused from the state (not Ready, not published): nothing changed, no record
            raise
        plan = deploy_plan(decided)
        error: BaseException | None = None
        journal = None
        try:
            journal = self.open_journal(action, str(release.version), name, started, decided.previous_label,
                                        lock.holder, self.image(release))
            run = run_plan(plan, self.performers(lock, decided.policy), mask=self.project.mask,
                           on_step=journal.reached)
            if no_wait:
                self.say(f"{name} is updating to {release.label}; follow it with `inv eb.events --follow`")
            else:
                self.say(f"{name} runs {release.label} ({run.outputs['outcome'].detail})")
        except BaseException as exc:
            error = exc
            raise
        finally:
            if lock.held:
                self._finish(lock, decided, started, action, error, journal)
        return EbDeployed(decided, plan, result_of(None, no_wait=no_wait))

    def performers(self, lock: DeployLock, policy: WaitPolicy) -> dict[str, Any]:
        return {"lock": WithArguments(lock, acquire={"say": lambda text: self.say(f"  {text}")}), "eb": self.client,
                "wait": EbWaiter(self.client, policy, say=self.say, sleep=self.sleep, secrets=self.secret_store),
                "secrets": self.secret_store}

    def plan_inputs(self, release: Release, name: str, lock: DeployLock, *, timeout: float = 0, no_wait: bool = False,
                    no_rollback: bool = False, force_unlock: bool = False, skip_release_command: bool = False
                    ) -> tuple[EnvironmentState, EbDeploy, Bundle]:
        """The state read before the plan, and what the deploy decides from it."""
        state = self.ready_state(name)
        self.require_image(release)
        location = self.dockercfg_location()
        if location is not None and self.client.s3.metadata(location.bucket, location.key) is None:
            raise Refused(f"no dockercfg at s3://{location.bucket}/{location.key}: run `inv eb.dockercfg` first")
        from ..core.release_command import release_command_of

        bundle = self.bundle(release, skip_release_command=skip_release_command)
        key = self.eb.bundle_key(release.label)
        reuse_object, reuse_version = check_label(
            self.client.version(self.application, release.label),
            self.client.s3.metadata(self.eb.bucket, key), self.eb.bucket, key, bundle.digest)
        decided = EbDeploy(
            application=self.application, environment=name, release=release, bundle_zip=bundle.zip_bytes(),
            bundle_digest=bundle.digest, bucket=self.eb.bucket, key=key, policy=self.policy(timeout),
            previous_label=state.version_label, reuse_object=reuse_object, reuse_version=reuse_version,
            lock_where=lock.where, lock_environment=self.env.name, force_unlock=force_unlock,
            no_rollback=no_rollback, no_wait=no_wait, release_command=release_command_of(self.env),
            skip_release_command=skip_release_command, secrets=self.secrets_change(name))
        if decided.secrets is not None and decided.secrets.writes and state.version_label and not no_rollback:
            # this deploy changes secret values: a failure rolls back with the previous label's values
            decided = replace(decided, rollback_secrets=self.secrets_to_restore(decided.secrets,
                                                                                 state.version_label))
        return state, decided, bundle

    def _finish(self, lock: DeployLock, d: EbDeploy, started: datetime, action: str,
                error: BaseException | None, journal: Any = None) -> None:
        try:
            self.audit().write(AuditRecord(
                action=action, environment=self.env.name, target=d.environment,
                version=str(d.release.version), label=d.label, who=lock.holder,
                started=stamp(started), finished=stamp(utc_now()), image=self.image(d.release),
                result=result_of(error, no_wait=d.no_wait), previous_label=d.previous_label,
                detail=(getattr(error, "message", str(error)) if error is not None else "")[:500],
                extra={**release_audit(d, error), **self.secret_store.record(d.secrets)}))
            if journal is not None:
                journal.close()  # only once the record is written: else the next command settles it
        finally:
            lock.release()

    def _diff_against_live(self, state: EnvironmentState, bundle: Bundle) -> str:
        live = None
        if state.version_label:
            version = self.client.version(self.application, state.version_label)
            if version is not None:
                live = self.client.s3.read(version.bucket, version.key)
        return bundle_dockerrun_diff(live, bundle, state.version_label)

    # --- status and events -----------------------------------------------------------------------------------------
    def status(self) -> tuple[EnvironmentState, str, list[str]]:
        """The environment's state, and the causes EB gives for its health (titled, possibly none)."""
        state = self.client.require_environment(self.application, self.target.name)
        causes = self.client.health_causes(state.name)
        if causes is not None:
            return state, "causes:", causes
        # basic health reporting has no causes: the recent warnings say the most
        warnings = [e.line() for e in self.client.events(self.application, state.name, max_records=20)
                    if e.severity in ("WARN", "ERROR", "FATAL")][-5:]
        return state, "recent warnings:", warnings

    def follow_events(self, *, count: int = 20, follow: bool = False, timeout: float = 0, until_ready: bool = False,
                      clock: Callable[[], float] = time.monotonic) -> None:
        """Print recent events; with ``follow``, new ones as they arrive until ``timeout`` seconds have passed (0:
        no limit) or, with ``until_ready``, the environment is Ready with no update in progress."""
        client, name = self.client, self.target.name
        shown = client.events(self.application, name, max_records=count)
        for event in shown[-count:]:
            self.say(event.line())
        seen = {(e.date, e.message) for e in shown}
        since = shown[-1].date if shown else None
        deadline = clock() + timeout if timeout else None
        while follow:
            if until_ready and client.require_environment(self.application, name).status == "Ready":
                # one last look, so the events that came with Ready are not cut off
                follow = False
            elif deadline is not None and clock() >= deadline:
                self.say(f"(stopped following after {timeout:g}s)")
                return
            else:
                self.sleep(self.eb.poll_interval if deadline is None else
                           max(0.0, min(self.eb.poll_interval, deadline - clock())))
            for event in client.events(self.application, name, since=since):
                if (event.date, event.message) not in seen:
                    seen.add((event.date, event.message))
                    self.say(event.line())
                    since = event.date
        if until_ready:
            self.say(f"{name} is Ready")

    # --- rollback ------------------------------------------------------------------------------------------------
    def previous_good_label(self, current: str) -> str:
        good = previous_good_release(self.audit().records(self.env.name), current)
        if good is not None:
            return good.label
        raise Refused(f"no earlier successful deploy of {self.env.name} in the audit records: name a LABEL "
                      "(see `inv eb.versions`)")

    def rollback_label(self, text: str) -> str:
        """What ``eb.rollback --label`` names: a label as it is, or a release (``2.0.0-rc.1``, its git tag) as the
        label it was deployed under (``<version>-<sha7>``)."""
        from ..core.versions import BadVersion

        if label_version(text) is not None or self.client.version(self.application, text) is not None:
            return text
        try:
            return self.release(text).label
        except BadVersion:
            return text  # a label dockyard did not make; the existence check below decides

    def planned_rollback(self, label: str, lock: DeployLock) -> tuple[Plan, EnvironmentState, str]:
        """Read the state (and the audit records), choose the label, plan: (plan, state, label)."""
        name = self.target.name
        state = self.ready_state(name)
        label = self.rollback_label(label) if label else self.previous_good_label(state.version_label)
        if self.client.version(self.application, label) is None:
            raise Refused(f"application version {label!r} does not exist (see `inv eb.versions`)")
        self._rollback_secrets = self.restored_secrets(name, label)
        plan = rollback_plan(application=self.application, environment=name, lock_environment=self.env.name,
                             lock_where=lock.where, current=state.version_label, label=label,
                             secrets=self._rollback_secrets)
        return plan, state, label

    def rollback(self, label: str = "", *, timeout: float = 0, dry_run: bool = False) -> Plan:
        """Like :meth:`deploy`: the lock first (named for the label once it is chosen), then state, plan, run."""
        name = self.target.name
        lock = self.lock(f"inv eb.deploy --env {self.env.name} --version VERSION --force-unlock")
        policy = self.policy(timeout)
        if dry_run:
            plan, _, _ = self.planned_rollback(label, lock)
            display(plan, mask=self.project.mask)
            self.say(DRY_RUN_LOCK_NOTE)
            return plan
        lock.acquire(label or "the previous good version", action="rollback",
                     say=lambda text: self.say(f"  {text}"))
        try:
            plan, state, label = self.planned_rollback(label, lock)
            lock.relabel(label)
        except BaseException:
            lock.release()
            raise
        started = utc_now()
        error: BaseException | None = None
        journal = None
        try:
            journal = self.open_journal("rollback", str(label_version(label) or ""), name, started,
                                        state.version_label, lock.holder)
            run_plan(plan, self.performers(lock, policy), mask=self.project.mask, on_step=journal.reached)
            self.say(f"{name} runs {label} again")
        except BaseException as exc:
            error = exc
            raise
        finally:
            if lock.held:
                try:
                    self.audit().write(AuditRecord(
                        action="rollback", environment=self.env.name, target=name,
                        version=str(label_version(label) or ""), label=label, who=lock.holder,
                        started=stamp(started), finished=stamp(utc_now()),
                        result="failed" if error is not None else "succeeded", previous_label=state.version_label,
                        extra=self.secret_store.record(self._rollback_secrets)))
                    if journal is not None:
                        journal.close()
                finally:
                    lock.release()
        return plan

    # --- dockercfg -------------------------------------------------------------------------------------------------
    def write_dockercfg(self, *, fmt: str = "", dry_run: bool = False) -> str:
        location = DockercfgLocation(self.eb.bucket, self.eb.dockercfg_key)
        if not location.bucket:
            raise ConfigError("dockyard.eb.bucket: not set; name the bucket the dockercfg goes to")
        fmt = fmt or self.eb.format_for(self.target.platform)
        creds = self.credentials()
        text = dockercfg(creds.registry, creds.username, creds.password, fmt=fmt)
        if dry_run:
            self.say(f"would upload a {fmt} dockercfg for {creds.username}@{creds.registry} to "
                     f"s3://{location.bucket}/{location.key} (private, SSE)")
            return location.key
        self.client.require_bucket(location.bucket)
        self.client.upload(location.bucket, location.key, text.encode(), sha256="", content_type="application/json",
                           progress=False)
        self.say(f"uploaded a {fmt} dockercfg for {creds.username}@{creds.registry} to "
                 f"s3://{location.bucket}/{location.key} (private, SSE)")
        return location.key

    # --- secrets ----------------------------------------------------------------------------------------------
    @cached_property
    def ssm(self) -> Any:
        from ..clients.ssm import SsmClient

        return SsmClient(self.client.session, endpoint_url=self.settings.aws_endpoint_url, sleep=self.sleep)

    @cached_property
    def secrets_manager(self) -> Any:
        from ..clients.secretsmanager import SecretsManagerClient

        return SecretsManagerClient(self.client.session, endpoint_url=self.settings.aws_endpoint_url,
                                    sleep=self.sleep)

    @cached_property
    def secret_store(self) -> Any:
        """The performer of the secret steps; it remembers the versions this command wrote, for the record."""
        from .secrets import EbSecretStore

        return EbSecretStore(self.eb.secrets_backend, eb=self.client, ssm=self.ssm,
                             secrets_manager=self.secrets_manager)

    @cached_property
    def account(self) -> str:
        """The caller's account id (STS, asked once per command)."""
        return self.ssm.account()

    def parameter_arn(self, name: str) -> str:
        """The ARN of SSM parameter ``name`` in this session's region and account."""
        from ..clients.ssm import parameter_arn

        return parameter_arn(name, region=self.client.session.region_name, account=self.account)

    def secret_values(self, values: dict[str, str] | None = None) -> dict[str, str]:
        """The ``.env`` values, refused (one line) when a secret key is not among them."""
        if values is None:
            values = dict(self.project.env_file(self.env).values)
        missing = [k for k in self.eb.secret_keys if k not in values]
        if missing:
            raise ConfigError(f"dockyard.eb.secret_keys: {', '.join(missing)} not in {self.env.env_file}; add "
                              "them there or drop them from secret_keys")
        return values

    def secrets_change(self, name: str, values: dict[str, str] | None = None, *, keys: tuple[str, ...] | None = None,
                       move_to_plain: bool = True) -> Any:
        """What storing ``values`` (default: the ``.env`` file's) of the secret keys changes (None when there are no
        secret keys and none of our secret options is left on the environment)."""
        from .secrets import owned, plan_secrets

        prefix = self.eb.secret_prefix(self.env.name)
        current_secrets = self.client.environment_variables(self.application, name, SECRETS_NAMESPACE)
        from_env = keys is None  # the configured keys, whose values the .env file must hold
        keys = self.eb.secret_keys if keys is None else keys
        if not keys and not any(owned(arn, prefix) for arn in current_secrets.values()):
            return None
        values = self.secret_values(values) if from_env else dict(values or {})
        arn = self.parameter_arn if self.eb.secrets_backend == "ssm" and keys else None
        return plan_secrets(
            backend=self.eb.secrets_backend, keys=tuple(keys), values=values,
            names={key: self.eb.secret_name(self.env.name, key) for key in keys}, prefix=prefix,
            current_secrets=current_secrets, current_plain=self.client.environment_variables(self.application, name),
            ssm_stored=self.ssm.secure_versioned, ssm_arn=arn, sm_current=self.secrets_manager.current,
            move_to_plain=move_to_plain)

    def restored_secrets(self, name: str, label: str) -> Any:
        """The change that gives the secret keys back the values the last successful deploy of ``label`` had.

        EB's environment secrets name an ARN and no version: the instances read the latest value when the
        application is deployed. So a rollback stores each recorded version's value again as the latest (a new
        SSM parameter version, read back with GetParameter's ``NAME:VERSION`` selector from the parameter's
        history; a new Secrets Manager version, read by its ``VersionId``) before it redeploys ``label``. Pointing
        the environment at old versions cannot be done with these ARNs, and versioned names would leave a
        parameter or secret behind per deploy; SSM keeps the last 100 versions of a parameter, and a Secrets
        Manager version is kept while it is recent or labelled. A value already the latest writes nothing."""
        secrets = self.recorded_secrets(label)
        if not secrets:
            if self.eb.secret_keys:
                self.say(f"no record of the secrets {label} ran with: the secret keys keep their current values")
            return None
        values = {}
        for key, ref in secrets.items():
            values[key] = self._recorded_value(key, ref, label)
            if values[key]:
                self.project.mask.add(values[key])  # for what botocore logs under `inv -d`
        keys = tuple(k for k in secrets if k in self.eb.secret_keys)
        return self.secrets_change(name, {k: values[k] for k in keys}, keys=keys, move_to_plain=False)

    def recorded_secrets(self, label: str) -> dict[str, dict[str, str]]:
        """key -> {name, arn, version} of the secrets the last successful deploy (or rollback) of ``label`` ran with."""
        from .secrets import recorded

        record = next((r for r in self.audit().records(self.env.name)
                       if r.label == label and r.succeeded and r.action in ("deploy", "rollback")), None)
        return recorded(record.extra) if record is not None else {}

    def secrets_to_restore(self, change: Any, label: str) -> tuple[Any, ...]:
        """The writes that give the keys ``change`` writes back the values ``label`` last ran with, for the
        automatic rollback of a deploy that changes them (read now, while they are still the stored ones). A key
        ``label`` did not have is left; one whose recorded version is gone is said and left (the deploy goes on:
        refusing it would not bring that value back)."""
        import uuid

        from .secrets import SecretWriteStep

        secrets = self.recorded_secrets(label)
        out = []
        for write in change.writes:
            ref = secrets.get(write.key)
            if ref is None:
                continue
            try:
                value = self._recorded_value(write.key, ref, label)
            except Refused as exc:
                self.say(f"warning: {exc.message}; if this deploy is rolled back, {write.key} keeps its new value")
                continue
            self.project.mask.add(value)
            out.append(SecretWriteStep(
                write.key, write.name, ref.get("arn") or write.arn, value,
                version_id=str(uuid.uuid4()) if self.eb.secrets_backend == "secretsmanager" else "", exists=True))
        return tuple(out)

    def _recorded_value(self, key: str, ref: dict[str, str], label: str) -> str:
        where = f"{ref.get('name')} version {ref.get('version') or '?'}"
        if ":secret:" in ref.get("arn", ""):
            from ..clients.aws import AwsError

            try:
                return self.secrets_manager.value(ref["arn"], ref["version"])
            except (AwsError, KeyError):
                raise Refused(f"cannot restore secret {key} of {label}: Secrets Manager no longer has {where}; "
                              "set the value in .env and deploy") from None
        stored = self.ssm.secure_versioned(ref.get("name", ""), int(ref.get("version") or 0)) \
            if (ref.get("version") or "").isdigit() else None
        if stored is None:
            raise Refused(f"cannot restore secret {key} of {label}: SSM no longer has {where} (it keeps the last "
                          "100 versions); set the value in .env and deploy")
        return stored[0]

    # --- setenv ---------------------------------------------------------------------------------------------------
    def setenv_changes(self, values: dict[str, str]) -> tuple[list[dict[str, str]], list[dict[str, str]], list[str]]:
        """(option settings to set, options to remove, diff lines with values masked) of the plain properties; the
        secret keys are :meth:`secrets_change`'s."""
        current = self.client.environment_variables(self.application, self.target.name)
        desired = {key: value for key, value in values.items() if key not in self.eb.secret_keys}
        lines, settings, remove = [], [], []
        for key in sorted(set(current) | set(desired)):
            if key in self.eb.secret_keys:
                continue  # a secret now: the secrets change removes the plain property
            if key not in desired:
                if key.startswith("DOCKYARD_REGISTRY_"):
                    continue  # set by the ssm login hook's ebextension
                lines.append(f"- {key}")
                remove.append({"Namespace": ENV_NAMESPACE, "OptionName": key})
            elif key not in current:
                lines.append(f"+ {key}={_masked(desired[key])}")
                settings.append({"Namespace": ENV_NAMESPACE, "OptionName": key, "Value": desired[key]})
            elif current[key] != desired[key]:
                lines.append(f"~ {key}={_masked(desired[key])} (was {_masked(current[key])})")
                settings.append({"Namespace": ENV_NAMESPACE, "OptionName": key, "Value": desired[key]})
        return settings, remove, lines

    def setenv(self, *, dry_run: bool = False, timeout: float = 0) -> list[str]:
        """Make the environment's properties the ``.env`` values (the ``eb.secret_keys`` ones as environment
        secrets: stored in SSM or Secrets Manager, named by ARN)."""
        # The diff masks every value itself; the masker gets them too, for what botocore logs under `inv -d`.
        values = self.secret_values(dict(self.project.env_file(self.env).values))
        name = self.target.name
        state = self.ready_state(name)
        settings, remove, lines = self.setenv_changes(values)
        secrets = self.secrets_change(name, values, move_to_plain=False)
        shown = lines + list(secrets.diff if secrets is not None else ())
        self.say(f"environment properties of {name}:")
        for line in shown or ["(no change)"]:
            self.say(f"  {line}")
        if not shown:
            return shown
        plan = setenv_plan(application=self.application, environment=name, diff=tuple(lines),
                           option_settings=tuple(settings), options_to_remove=tuple(remove),
                           label=state.version_label, secrets=secrets)
        if dry_run:
            display(plan, mask=self.project.mask)
            return shown
        run_plan(plan, self.setenv_performers(timeout), mask=self.project.mask)
        self.say(f"applied {len(shown)} change(s) to {name}")
        return shown

    def setenv_performers(self, timeout: float) -> dict[str, Any]:
        return {"eb": self.client, "wait": EbWaiter(self.client, self.policy(timeout), say=self.say, sleep=self.sleep),
                "secrets": self.secret_store}

    # --- blue/green -----------------------------------------------------------------------------------------------
    def twins(self) -> tuple[EnvironmentState, EnvironmentState]:
        """(live, idle): the live twin holds the primary environment's CNAME prefix."""
        if not self.target.twin:
            raise ConfigError(f"dockyard.environments.{self.env.name}.eb.twin: not set; blue/green needs a twin "
                              "environment")
        self.client.require_application(self.application)
        first = self.client.require_environment(self.application, self.target.name)
        second = self.client.require_environment(self.application, self.target.twin)
        primary_prefix = self.target.name + "."
        if second.cname.startswith(primary_prefix):
            return second, first
        return first, second

    def swap(self, version: str = "", *, timeout: float = 0, dry_run: bool = False,
             smoke: Callable[[str], bool] | None = None) -> None:
        live, idle = self.twins()
        path = self.eb.smoke_path or self.env.health_path
        plan = swap_plan(application=self.application, live=live.name, idle=idle.name, live_cname=live.cname,
                         version=version, smoke_url=f"http://{idle.endpoint_url}{path}", timeout=timeout)
        if dry_run:
            display(plan, mask=self.project.mask)
            self.say(f"step 1, deploying to {idle.name}, in detail:")
            self.deploy(version, dry_run=True, timeout=timeout, environment=idle.name, no_rollback=True)
            return
        performers = {"service": self, "eb": self.client, "smoke": SmokeTest(smoke or _smoke),
                      "swap": CnameSwapWait(self, deadline=time.monotonic() + (timeout or self.eb.timeout))}
        run_plan(plan, performers, mask=self.project.mask)
        self.say(f"{idle.name} now serves {live.cname}; {live.name} is idle")


class SmokeTest:
    """The performer of a swap's smoke test: the idle twin answers, or the CNAMEs are not swapped."""

    def __init__(self, check: Callable[[str], bool]) -> None:
        self._check = check

    def check(self, url: str, idle: str, live: str) -> None:
        if not self._check(url):
            raise DeployFailed(f"smoke test of {idle} failed ({url}); CNAMEs not swapped, {live} still serves")


class CnameSwapWait:
    """The performer of a swap's last step: poll until the twin that was idle holds the live CNAME, Ready."""

    def __init__(self, service: EbService, *, deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.deadline = deadline
        self.clock = clock

    def until_swapped(self, application: str, now_live: str, cname: str) -> None:
        while True:
            live, _ = self.service.twins()
            if live.name == now_live and live.status == "Ready":
                return
            if self.clock() > self.deadline:
                raise DeployFailed(f"swapped CNAMEs but {now_live} does not hold {cname} yet")
            self.service.sleep(self.service.eb.poll_interval)


def _masked(value: str) -> str:
    if value.startswith("{{resolve:"):
        return value
    return "********" if value else "''"


def _smoke(url: str, attempts: int = 5) -> bool:
    from ..clients.http import probe

    for _ in range(attempts):
        if probe(url, timeout=5).ok:
            return True
        time.sleep(1)
    return False


def policies_json(settings: Any, eb: Any) -> str:
    from .policies import policies

    return json.dumps(policies(settings, eb), indent=2)


def events_since(minutes: int) -> datetime:
    return datetime.fromtimestamp(time.time() - minutes * 60, tz=timezone.utc)


def release_audit(d: EbDeploy, error: BaseException | None) -> dict[str, str]:
    """What the audit record says of the release command (nothing when the environment has none)."""
    from ..core.release_command import AUDIT_KEY, SKIPPED, ReleaseCommandFailed

    if d.release_command is None:
        return {}
    if d.skip_release_command:
        return {AUDIT_KEY: SKIPPED}
    if isinstance(error, ReleaseCommandFailed):
        return {AUDIT_KEY: f"failed: {error.reason}"}
    if error is None:
        return {AUDIT_KEY: "started with the deployment (not waited for)" if d.no_wait else "succeeded"}
    return {AUDIT_KEY: "unknown: the deployment failed (see detail)"}
