"""``ecs.*`` orchestration: read state, plan, show, and execute deploys and rollbacks with lock, wait and audit."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from ..clients.ecs import EcsClient, ServiceState, short_arn
from ..core.actor import stamp, utc_now
from ..core.history import AuditRecord, previous_good_release
from ..core.locks import DRY_RUN_LOCK_NOTE, DeployLock
from ..errors import ConfigError, Refused, RolledBack
from ..plan import Plan, PlanRun, WithArguments, display, run_plan
from .planner import (
    DeployIntent,
    EcsDeploy,
    deploy_plan,
    env_file_split,
    plan_task_definition,
    previous_revision,
    revisions_to_deregister,
    rollback_plan,
    with_secret_writes,
)
from .taskdef import TaskDefinition
from .waiter import DeploymentFailed, wait_for_deployment


@dataclass
class Outcome:
    """What happened, for the audit record."""

    result: str = "failed"
    detail: str = ""
    label: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class EcsService:
    def __init__(self, project: Any, env_name: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.project = project
        self.settings = project.settings
        self.env = self.settings.environment(env_name)
        self.target = self.settings.ecs.target(self.env.name)
        self.sleep = sleep
        if not self.target.cluster:
            raise ConfigError(f"dockyard.ecs.cluster: not set for environment {self.env.name}; name the ECS cluster "
                              f"in invoke.yaml (dockyard.ecs.cluster or dockyard.environments.{self.env.name}.ecs)")

    def say(self, text: str = "") -> None:
        self.project.say(text)

    @cached_property
    def client(self) -> EcsClient:
        from ..clients.aws import aws_client, aws_session

        session = aws_session(self.settings)
        aws_client(self.settings, "sts", session)  # raises a one-line error when credentials/region are missing
        return EcsClient(session, endpoint_url=self.settings.aws_endpoint_url, sleep=self.sleep)

    def state(self) -> ServiceState:
        return self.client.service(self.target.cluster, self.target.service)

    # --- inputs ----------------------------------------------------------------------------------------------------
    def image_for(self, version: str) -> tuple[str, str]:
        """(the release's version, its pinned image reference)."""
        from ..core.compose import release_image
        from ..core.versions import configured_release

        release = configured_release(self.settings, self.project.git, version)
        return str(release.version), release_image(self.settings, release)

    def require_published(self, version: str, image: str) -> None:
        if not self.target.check_image:
            return
        registry = self.settings.registry
        if registry.kind == "ecr":
            name = self.settings.repository.split("/", 1)[1]
            published = self.client.ecr_has_image(name, version)
        else:
            from ..core.credentials import gather_credentials
            from ..registry import remote_digest

            credentials = gather_credentials(self.settings, mask=self.project.mask, env_file=self.env.env_file)
            try:
                published = remote_digest(credentials, self.settings.repository, version) is not None
            except OSError as exc:
                raise Refused(f"cannot reach the registry to check {image} ({exc}); set dockyard.ecs.check_image: "
                              "false to skip the check") from None
        if not published:
            raise Refused(f"image {image} is not published (tag {version} is not in the registry): run "
                          f"`inv publish {version}` first")

    def intent(self, state: ServiceState, image: str) -> DeployIntent:
        current = self.client.task_definition(state.task_definition)
        if not self.target.env_file:
            return plan_task_definition(current, image=image, containers=self.target.containers)
        loaded = self.project.env_file(self.env)
        missing = [k for k in self.target.secret_keys if k not in loaded.values]
        if missing:
            raise ConfigError(f"dockyard.ecs.secret_keys: {', '.join(missing)} not in {self.env.env_file}; add "
                              "them there or drop them from secret_keys")
        wanted: dict[str, str] = {}
        secrets: dict[str, str] = {}
        environment, _ = env_file_split(loaded.values, self.target.secret_keys, self.target.ssm_prefix)
        if self.target.secret_keys and self.target.secrets_backend == "secretsmanager":
            secrets, writes = self.pinned_secrets({k: loaded.values[k] for k in self.target.secret_keys})
            intent = plan_task_definition(current, image=image, containers=self.target.containers,
                                          environment=environment, secrets=secrets)
            return replace(intent, secret_writes=writes)
        if self.target.secret_keys:
            from ..clients.ssm import parameter_arn

            prefix = self.target.ssm_prefix if self.target.ssm_prefix.endswith("/") else self.target.ssm_prefix + "/"
            wanted = {f"{prefix}{k}": loaded.values[k] for k in self.target.secret_keys}
            account = self.ssm.account()
            region = self.client.session.region_name
            secrets = {name.rsplit("/", 1)[-1]: parameter_arn(name, region=region, account=account) for name in wanted}
        intent = plan_task_definition(current, image=image, containers=self.target.containers,
                                      environment=environment, secrets=secrets)
        return with_secret_writes(intent, wanted, self.ssm.values(wanted) if wanted else {})

    def pinned_secrets(self, values: dict[str, str]) -> tuple[dict[str, str], tuple[Any, ...]]:
        """Each secret key's ``valueFrom``, pinned to the version holding its value, and the versions to write.

        A value Secrets Manager already holds as the secret's current version is pinned to that version; any other
        gets a new version (a new secret, the first time) whose id is chosen here, so the plan shows the revision
        as it will be registered and a rollback to it gets these values back.
        """
        from ..clients.secretsmanager import pinned
        from ..core.secret_versions import secret_versions

        refs, writes = secret_versions(self.secrets_manager.current,
                                       {key: (self.target.secret_name(key), value) for key, value in values.items()})
        return {key: pinned(arn, version) for key, (arn, version) in refs.items()}, writes

    @cached_property
    def secrets_manager(self) -> Any:
        from ..clients.secretsmanager import SecretsManagerClient

        return SecretsManagerClient(self.client.session, endpoint_url=self.settings.aws_endpoint_url, sleep=self.sleep)

    # --- lock and audit ----------------------------------------------------------------------------------------------
    # With a bucket: S3 objects, shared with the Elastic Beanstalk deploys. Without one: SSM parameters, which need
    # nothing created beforehand (see dockyard/core/locks.py and history.py).
    def _s3(self) -> Any:
        from ..clients.aws import aws_client
        from ..clients.s3 import S3Client

        return S3Client(aws_client(self.settings, "s3", self.client.session))

    @cached_property
    def ssm(self) -> Any:
        from ..clients.ssm import SsmClient

        return SsmClient(self.client.session, endpoint_url=self.settings.aws_endpoint_url, sleep=self.sleep)

    def _key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.target.prefix, self.settings.app, *parts) if p.strip("/"))

    def lock(self, version: str = "VERSION") -> DeployLock:
        """The environment's lock; a refusal by a dead holder names the deploy of ``version`` that clears it (the
        same deploy again, with --force-unlock: ecs.rollback has no such flag)."""
        clear = f"inv ecs.deploy --env {self.env.name} --version {version} --force-unlock"
        if self.target.bucket:
            from ..core.locks import S3LockStore

            store: Any = S3LockStore(self._s3(), self.target.bucket, self._key("locks", f"{self.env.name}.json"))
        else:
            from ..clients.ssm import parameter_name
            from ..core.locks import SsmLockStore

            store = SsmLockStore(self.ssm, parameter_name(self._key("locks", self.env.name)))
        return DeployLock(store, environment=self.env.name, sleep=self.sleep, clear=clear)

    def lock_status(self) -> str:
        """``free``, or who holds the lock (``STALE: …`` when that holder looks dead), for ``ecs.status``."""
        from ..core.locks import lock_status

        return lock_status(self.lock())

    @property
    def lock_location(self) -> str:
        return self.lock().where + ("" if self.target.bucket else " (no dockyard.ecs.bucket)")

    def audit_log(self) -> Any:
        if self.target.bucket:
            from ..core.history import S3AuditStore

            return S3AuditStore(self._s3(), self.target.bucket, self._key())
        from ..core.history import SsmAuditStore

        return SsmAuditStore(self.ssm, self._key())

    def audit(self, action: str, version: str, outcome: Outcome, started: str, previous: str, *,
              who: str = "", image: str = "") -> None:
        from ..core.actor import actor

        record = AuditRecord(action=action, environment=self.env.name, target=f"ecs:{self.target.where}",
                             version=version, label=outcome.label, who=who or actor(), started=started,
                             finished=stamp(utc_now()), result=outcome.result, previous_label=previous,
                             image=image, detail=outcome.detail, extra=dict(outcome.extra))
        self.say(f"audit: {self.audit_log().write(record)}")

    def journal_store(self) -> Any:
        """Where this environment's deploy journal lives: beside its lock (see :mod:`dockyard.core.journal`)."""
        from ..core.journal import S3JournalStore, SsmJournalStore

        if self.target.bucket:
            return S3JournalStore(self._s3(), self.target.bucket, self._key("journal", f"{self.env.name}.json"))
        from ..clients.ssm import parameter_name

        return SsmJournalStore(self.ssm, parameter_name(self._key("journal", self.env.name)))

    def open_journal(self, action: str, version: str, started: Any, previous: str, who: str,
                     image: str = "") -> Any:
        """Settle what an earlier, killed deploy left (holding the lock), then begin this deploy's entry."""
        from ..core.journal import DeployJournal, JournalEntry, deploy_id, settle

        store = self.journal_store()
        settle(store, self.audit_log(), say=self.say)
        journal = DeployJournal(store, JournalEntry(
            deploy=deploy_id(who, stamp(started)), action=action, environment=self.env.name,
            target=f"ecs:{self.target.where}", version=version, previous_label=previous, started=stamp(started),
            who=who, image=image))
        journal.begin()
        return journal

    def journal_line(self) -> str:
        """``ecs.status``'s line about a deploy in progress or one that never finished ("" when there is none)."""
        from ..core.journal import journal_line

        return journal_line(self.journal_store(), self.lock_status())

    def records(self) -> list[Any]:
        """This service's audit records, newest first (other targets may share the store)."""
        return [r for r in self.audit_log().records(self.env.name) if r.target == f"ecs:{self.target.where}"]

    # --- deploy ------------------------------------------------------------------------------------------------------
    def diff(self, version: str = "") -> DeployIntent:
        version, image = self.image_for(version)
        state = self.state()
        intent = self.intent(state, image)
        self.show(intent)
        return intent

    def show(self, intent: DeployIntent) -> None:
        self.say(f"{self.target.where}: {intent.current.label} -> new revision of {intent.desired.family}")
        for line in intent.lines or ["(no changes: the service already runs this)"]:
            self.say(f"  {line}")

    def planned_deploy(self, version: str, image: str, *, timeout: float = 0, no_wait: bool = False,
                       no_rollback: bool = False, force_unlock: bool = False,
                       skip_release_command: bool = False) -> tuple[Plan, str]:
        """Read the service's state and plan the deploy from it: (the plan, the live task definition's ARN)."""
        from ..core.release_command import release_command_of
        from .release import log_stream_of

        state = self.state()
        intent = self.intent(state, image)
        self.require_published(version, image)
        self.show(intent)
        container = self.target.containers[0]
        plan = deploy_plan(EcsDeploy(
            version=version, image=image, where=self.target.where, cluster=self.target.cluster,
            service=self.target.service, environment=self.env.name, lock_where=self.lock_location,
            live=state.task_definition, intent=intent, timeout=timeout or self.target.timeout, keep=self.target.keep,
            force_unlock=force_unlock, no_wait=no_wait, no_rollback=no_rollback,
            release=release_command_of(self.env), skip_release=skip_release_command, container=container,
            placement=state.placement, logs=log_stream_of(intent.desired, container)))
        return plan, state.task_definition

    def deploy(self, version: str = "", *, dry_run: bool = False, timeout: float = 0, no_wait: bool = False,
               no_rollback: bool = False, force_unlock: bool = False, skip_release_command: bool = False) -> Plan:
        """Take the lock, then read the state and plan from it, then run the plan (whose first step finds the lock
        held by this deploy). A dry run takes no lock: it plans from the state as it reads it, and says so."""
        from ..core.release_command import AUDIT_KEY, SKIPPED, ReleaseCommandFailed, release_command_of

        version, image = self.image_for(version)
        options = {"timeout": timeout, "no_wait": no_wait, "no_rollback": no_rollback, "force_unlock": force_unlock,
                   "skip_release_command": skip_release_command}
        release = release_command_of(self.env)
        if dry_run:
            plan, _ = self.planned_deploy(version, image, **options)
            display(plan, mask=self.project.mask)
            self.say(DRY_RUN_LOCK_NOTE)
            return plan
        lock = self.lock(version)
        started_at = utc_now()
        run = PlanRun()
        outcome = Outcome()
        if release is not None:
            outcome.extra[AUDIT_KEY] = SKIPPED if skip_release_command else "not run"
        live = ""
        lock.acquire(version, force_unlock=force_unlock, say=self.say)
        try:
            plan, live = self.planned_deploy(version, image, **options)
        except BaseException:
            lock.release()  # refused from the state (not published, bad settings): nothing changed, no record
            raise
        journal = None
        try:
            journal = self.open_journal("deploy", version, started_at, short_arn(live), lock.holder, image)
            performers = self.performers(lock, started_at)
            run_plan(plan, performers, mask=self.project.mask, into=run, on_step=journal.reached)
        except BaseException as exc:
            outcome.result = "rolled back" if isinstance(exc, RolledBack) else "failed"
            outcome.detail = getattr(exc, "message", "") or type(exc).__name__
            if isinstance(exc, ReleaseCommandFailed):
                outcome.extra[AUDIT_KEY] = f"failed: {exc.reason}"
                outcome.detail = f"release command failed: {exc.reason}; {short_arn(live)} still serves"
            raise
        else:
            outcome.result, outcome.detail = ("started", "not waited for (--no-wait)") if no_wait else ("succeeded", "")
        finally:
            if "revision" in run.outputs:
                outcome.label = run.outputs["revision"].label
            if release is not None and "release" in run.outputs:
                outcome.extra[AUDIT_KEY] = "succeeded"
            if lock.held:
                try:
                    self.audit("deploy", version, outcome, stamp(started_at), short_arn(live), who=lock.holder,
                               image=image)
                    if journal is not None:
                        journal.close()  # only once the record is written: else the next command settles it
                finally:
                    lock.release()
        self.say(f"deployed {version} to {self.target.where} as {outcome.label}"
                 + (" (not waited for)" if no_wait else ""))
        return plan

    def performers(self, lock: DeployLock, started: Any) -> dict[str, Any]:
        from .release import EcsReleaseRunner

        return {"lock": WithArguments(lock, acquire={"say": lambda text: self.say(f"      {text}")}), "ssm": self.ssm,
                "ecs": self.client, "wait": EcsWaiter(self, since=started), "revisions": self,
                "release": EcsReleaseRunner(self.client, cluster=self.target.cluster, say=self.say,
                                            interval=self.target.poll_interval, sleep=self.sleep),
                "secrets": self.secrets_manager}

    def _wait(self, arn: str, timeout: float, *, since: Any = None) -> None:
        wait_for_deployment(self.state, arn, timeout=timeout, interval=self.target.poll_interval, since=since,
                            sleep=self.sleep, report=lambda line: self.say(f"      {line}"))

    def register(self, definition: TaskDefinition, new_secret_arns: tuple[tuple[str, str], ...] = ()) -> TaskDefinition:
        from .planner import with_new_secret_arns

        registered = self.client.register(with_new_secret_arns(definition, new_secret_arns))
        self.say(f"      registered {registered.label}")
        return registered

    def prune(self, *, protected: Iterable[str]) -> list[str]:
        protected = set(protected)
        family = short_arn(next(iter(protected))).rsplit(":", 1)[0]
        active = self.client.active_revisions(family)
        doomed = revisions_to_deregister(active, self.target.keep, protected)
        for arn in doomed:
            self.client.deregister(arn)
        if doomed:
            self.say("      deregistered " + ", ".join(short_arn(a) for a in doomed))
        return doomed

    # --- rollback ----------------------------------------------------------------------------------------------------
    def version_of(self, definition: TaskDefinition) -> str:
        """The release tag the app containers' image has (the label when it has none)."""
        image = definition.images().get(self.target.containers[0], "")
        name, _, tag = image.rpartition(":")
        return tag if name and "/" not in tag else definition.label

    def rollback_target(self, live: str, family: str) -> str:
        """The previous good release from the audit records; the previous ACTIVE revision only when there are none.

        Says which it chose and why.
        """
        active = self.client.active_revisions(family)
        records = self.records()
        if records:
            good = previous_good_release(records, short_arn(live), [short_arn(a) for a in active])
            if good is None:
                raise Refused(f"no successful deploy of {self.env.name} before {short_arn(live)} in the audit records "
                              f"(or its revision is no longer ACTIVE); name one: `inv ecs.rollback --revision N`")
            self.say(f"rolling back to {good.label}: the last successful {good.action} before {short_arn(live)} "
                     f"(version {good.version or '?'}, by {good.who}, {good.finished or good.started})")
            return good.label
        previous = previous_revision(active, live)
        if not previous:
            raise Refused(f"no ACTIVE revision of {family} older than {short_arn(live)} to roll back to; name "
                          "one: `inv ecs.rollback --revision N`")
        self.say(f"rolling back to {short_arn(previous)}: no audit records of {self.env.name}, so the ACTIVE revision "
                 f"before {short_arn(live)} (not known to have worked)")
        return previous

    def planned_rollback(self, revision: str, *, timeout: float = 0) -> tuple[Plan, TaskDefinition, str]:
        """Read the state (and the audit records), choose the target, plan: (plan, target, live ARN)."""
        state = self.state()
        live = state.task_definition
        family = short_arn(live).rsplit(":", 1)[0]
        if revision:
            ref = revision if ":" in revision else f"{family}:{revision}"
            target = self.client.task_definition(ref)
        else:
            target = self.client.task_definition(self.rollback_target(live, family))
        if target.arn == live:
            raise Refused(f"{self.target.where} already runs {target.label}; nothing to roll back")
        current = self.client.task_definition(live)
        from .taskdef import diff

        self.say(f"{self.target.where}: {short_arn(live)} -> {target.label}")
        for line in diff(current, target):
            self.say(f"  {line}")
        plan = rollback_plan(where=self.target.where, cluster=self.target.cluster, service=self.target.service,
                             environment=self.env.name, lock_where=self.lock_location, target=target,
                             timeout=timeout or self.target.rollback_timeout)
        return plan, target, live

    def rollback(self, revision: str = "", *, dry_run: bool = False, timeout: float = 0) -> Plan:
        """Like :meth:`deploy`: the lock first (named for the revision once it is chosen), then state, plan, run."""
        if dry_run:
            plan, _, _ = self.planned_rollback(revision, timeout=timeout)
            display(plan, mask=self.project.mask)
            self.say(DRY_RUN_LOCK_NOTE)
            return plan
        lock = self.lock()
        started = utc_now()
        outcome = Outcome()
        lock.acquire(revision or "the previous good revision", action="rollback", say=self.say)
        try:
            plan, target, live = self.planned_rollback(revision, timeout=timeout)
            lock.relabel(target.label)
        except BaseException:
            lock.release()
            raise
        outcome.label = target.label
        journal = None
        try:
            journal = self.open_journal("rollback", self.version_of(target), started, short_arn(live), lock.holder)
            run_plan(plan, self.performers(lock, started), mask=self.project.mask, on_step=journal.reached)
            outcome.result = "succeeded"
        except BaseException as exc:
            outcome.detail = getattr(exc, "message", "") or type(exc).__name__
            raise
        finally:
            if lock.held:
                try:
                    self.audit("rollback", self.version_of(target), outcome, stamp(started), short_arn(live),
                               who=lock.holder)
                    if journal is not None:
                        journal.close()
                finally:
                    lock.release()
        self.say(f"rolled back {self.target.where} to {target.label}")
        return plan


class EcsWaiter:
    """The performer of a plan's wait: the new revision steady, else the rollback to the live one."""

    def __init__(self, service: EcsService, *, since: Any) -> None:
        self.service = service
        self.since = since

    def deployed(self, version: str, arn: str, timeout: float, live: str, no_rollback: bool = False) -> None:
        s = self.service
        try:
            s._wait(arn, timeout, since=self.since)
        except DeploymentFailed as failure:
            if no_rollback:
                raise type(failure)(f"deploy of {version} failed: {failure.message}; left in place "
                                    "(--no-rollback)") from None
            s.project.warn(f"dockyard: deploy failed: {failure.message}; rolling back to {short_arn(live)}")
            s.client.update_service(s.target.cluster, s.target.service, live)
            try:
                s._wait(live, s.target.rollback_timeout, since=utc_now())
            except DeploymentFailed as exc:
                raise DeploymentFailed(f"deploy failed ({failure.message}) and the rollback to {short_arn(live)} "
                                       f"did not finish either ({exc.message}): check `inv ecs.status`") from None
            raise RolledBack(f"deploy failed ({failure.message}); rolled back to {short_arn(live)}") from None

    def rolled_to(self, arn: str, timeout: float) -> None:
        self.service._wait(arn, timeout, since=self.since)
