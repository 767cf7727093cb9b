"""One adapter per deploy target behind ``inv deploy|rollback|status|history``, and the run that picks one.

Each adapter calls the target's own service (the code behind ``eb.*``, ``ecs.*`` and ``<env>.ssh-deploy``), never
a copy of it, and fills a :class:`~dockyard.dispatch.Result`. The audit records are read one way for every target:
each adapter names its :mod:`dockyard.core.history` stores (S3, SSM, one log per host) and :func:`read_history`
reads them.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from invoke.exceptions import Exit

from .common import Project, table

Options = Mapping[str, Any]


def _result_word(text: str) -> str:
    """One vocabulary for the records' results: ``rolled back`` -> ``rolled_back``, ``health-failed`` ->
    ``health_failed`` (staging's older ``ok`` is already ``succeeded`` in :mod:`dockyard.core.history`)."""
    word = "_".join((text or "").split())
    return {"health-failed": "health_failed", "release-command-failed": "release_command_failed"}.get(word, word)


def _lock_wait(options: Options) -> float | None:
    value = options.get("lock_wait", -1)
    return None if value is None or value < 0 else float(value)


class EbTarget:
    """Elastic Beanstalk: :class:`~dockyard.eb.service.EbService` (``eb.deploy``, ``eb.rollback``, ``eb.status``)."""

    name = "eb"

    def __init__(self, project: Project, env_name: str) -> None:
        from ..eb.service import EbService

        self.project = project
        self.service = EbService(project, env_name)

    def deploy(self, options: Options, result: Any) -> None:
        service = self.service
        release = service.release(options["version"])
        result.version, result.image = str(release.version), service.image(release)
        deployment = service.deploy(options["version"], dry_run=options["dry_run"], no_wait=options["no_wait"],
                                    timeout=float(options["timeout"]), no_rollback=options["no_rollback"],
                                    force_unlock=options["force_unlock"],
                                    skip_release_command=bool(options.get("skip_release_command")))
        result.previous = deployment.previous_label
        result.details["label"] = deployment.label
        result.result = "planned" if options["dry_run"] else _result_word(deployment.result)

    def rollback(self, options: Options, result: Any) -> None:
        from ..core.versions import label_version

        to = options["to"]
        label = self.service.rollback_label(to) if to else ""  # a release names the label it was deployed as
        if label:
            result.details["label"] = label
            result.version = str(label_version(label) or "")
        self.service.rollback(label, timeout=float(options["timeout"]), dry_run=options["dry_run"])
        result.result = "planned" if options["dry_run"] else "succeeded"

    def status(self, options: Options, result: Any) -> None:
        from ..core.versions import label_version
        from .eb import show_status

        state = show_status(self.service)
        result.version = str(label_version(state.version_label or "") or state.version_label or "")
        result.url = self.url(state)
        result.details.update(label=state.version_label, status=state.status, health=state.health,
                              health_status=state.health_status, eb_environment=state.name)
        result.result = "ok"

    def stores(self) -> list[tuple[str, Any]]:
        from ..errors import ConfigError

        if not self.service.eb.bucket:
            raise ConfigError("dockyard.eb.bucket: not set; the audit records live in that bucket")
        return [(self.service.target.name, self.service.audit())]

    def records(self, count: int) -> list[dict[str, Any]]:
        # An ECS service may share the bucket: its records are not this environment's.
        return read_history(self.stores(), self.service.env.name, count,
                            keep=lambda r: not r.target.startswith("ecs:"))

    def url(self, state: Any = None) -> str:
        if state is None:
            state = self.service.client.environment(self.service.application, self.service.target.name)
        host = state.cname or state.endpoint_url if state is not None else ""
        return f"http://{host}/" if host else ""


class EcsTarget:
    """Amazon ECS: :class:`~dockyard.ecs.service.EcsService` (``ecs.deploy``, ``ecs.rollback``, ``ecs.status``)."""

    name = "ecs"

    def __init__(self, project: Project, env_name: str) -> None:
        from ..ecs.service import EcsService

        self.project = project
        self.service = EcsService(project, env_name)

    def deploy(self, options: Options, result: Any) -> None:
        result.version, result.image = self.service.image_for(options["version"])
        self.service.deploy(options["version"], dry_run=options["dry_run"], timeout=float(options["timeout"]),
                            no_wait=options["no_wait"], no_rollback=options["no_rollback"],
                            force_unlock=options["force_unlock"],
                            skip_release_command=bool(options.get("skip_release_command")))
        result.result = "planned" if options["dry_run"] else "started" if options["no_wait"] else "succeeded"

    def rollback(self, options: Options, result: Any) -> None:
        to = options["to"]
        revision = to
        if to and not (to.isdigit() or ":" in to):
            revision = self.revision_of(to.removeprefix("v"))
        if revision:
            result.details["label"] = revision
        self.service.rollback(revision, dry_run=options["dry_run"], timeout=float(options["timeout"]))
        result.result = "planned" if options["dry_run"] else "succeeded"

    def revision_of(self, version: str) -> str:
        """The revision a release version ran as: from the audit records, else the ACTIVE revision with its image."""
        from ..clients.ecs import short_arn
        from ..errors import Refused

        for record in self.service.records():
            if record.version == version and record.succeeded and record.label:
                return record.label
        family = short_arn(self.service.state().task_definition).rsplit(":", 1)[0]
        for arn in reversed(self.service.client.active_revisions(family)):
            definition = self.service.client.task_definition(arn)
            if self.service.version_of(definition) == version:
                return definition.label
        raise Refused(f"no ACTIVE revision of {family} runs {version}: name a revision (`inv rollback --to N`, "
                      "see `inv history`)")

    def status(self, options: Options, result: Any) -> None:
        from ..clients.ecs import short_arn
        from .ecs import show_status

        state, definition = show_status(self.service)
        result.version = self.service.version_of(definition)
        result.image = definition.images().get(self.service.target.containers[0], "")
        result.details.update(task_definition=short_arn(state.task_definition), status=state.status,
                              running=state.running, desired=state.desired, pending=state.pending,
                              service=self.service.target.where)
        result.result = "ok"

    def stores(self) -> list[tuple[str, Any]]:
        return [(f"ecs:{self.service.target.where}", self.service.audit_log())]

    def records(self, count: int) -> list[dict[str, Any]]:
        where = f"ecs:{self.service.target.where}"  # the bucket or path may hold another service's records
        return read_history(self.stores(), self.service.env.name, count, keep=lambda r: r.target == where)

    def url(self, state: Any = None) -> str:
        return ""  # the service's load balancer is not part of dockyard's settings


class SshTarget:
    """Plain hosts over SSH: :class:`~dockyard.staging.service.StagingService` (``<env>.ssh-deploy`` and friends)."""

    name = "ssh"

    def __init__(self, project: Project, env_name: str) -> None:
        from ..staging.service import StagingService

        self.project = project
        self.env_name = env_name
        self.service = StagingService(project, env_name)

    def _fresh(self) -> Any:
        from ..staging.service import StagingService

        return StagingService(self.project, self.env_name)

    def deploy(self, options: Options, result: Any) -> None:
        version = self.service.resolve_version(options["version"])
        result.version, result.image = version, self.service.target.image(version)
        self.service.deploy(options["version"], dry_run=options["dry_run"], lock_wait=_lock_wait(options),
                            limit=int(options["limit"]), force_unlock=options["force_unlock"],
                            skip_release_command=bool(options.get("skip_release_command")))
        result.result = "planned" if options["dry_run"] else "succeeded"

    def rollback(self, options: Options, result: Any) -> None:
        if options["to"]:
            result.version, result.image = options["to"], self.service.target.image(options["to"])
        self.service.deploy(options["to"], dry_run=options["dry_run"], lock_wait=_lock_wait(options),
                            limit=int(options["limit"]), rollback=True, force_unlock=options["force_unlock"])
        result.result = "planned" if options["dry_run"] else "succeeded"

    def status(self, options: Options, result: Any) -> None:
        self.service.status()
        reader = self._fresh()
        try:
            hosts = [{"host": s.name, "live": s.state().live or None} for s in reader.sessions(check=False)]
        finally:
            reader.close()
        result.details["hosts"] = hosts
        result.version = hosts[0]["live"] or "" if hosts else ""
        result.image = self.service.target.image(result.version) if result.version else ""
        result.url = self.url()
        result.result = "ok"

    def records(self, count: int) -> list[dict[str, Any]]:
        from ..core.history import HostAuditLog

        reader = self._fresh()
        try:
            stores = [(s.name, HostAuditLog(s.host, s.layout.audit_log)) for s in reader.sessions(check=False)]
            return read_history(stores, self.env_name, count)
        finally:
            reader.close()

    def url(self, state: Any = None) -> str:
        first = self.service.target.hosts[0]
        return f"http://{first.address.host}:{first.proxy_port}/"


ADAPTERS = {"eb": EbTarget, "ecs": EcsTarget, "ssh": SshTarget}


def read_history(stores: Iterable[tuple[str, Any]], environment: str, count: int,
                 keep: Callable[[Any], bool] = lambda record: True) -> list[dict[str, Any]]:
    """The newest ``count`` records of ``environment`` over ``stores`` (``(where, AuditStore)`` pairs), newest first.

    ``keep`` drops records of another service sharing a store; each record is shown with its store's ``where`` (the
    EB environment, ``ecs:<cluster>/<service>``, the SSH host's name), as before the stores were shared.
    """
    found = [_history_entry(record, where) for where, store in stores
             for record in store.records(environment, limit=max(count, 1) * 2) if keep(record)]
    found.sort(key=lambda r: _when(r["when"]), reverse=True)
    return found[:count]


def _history_entry(record: Any, where: str) -> dict[str, Any]:
    """A :class:`~dockyard.core.history.AuditRecord` in the shape ``inv history --json`` prints for every target."""
    return {"when": record.finished or record.started, "action": record.action, "version": record.version,
            "label": record.label, "previous": record.previous_label, "result": _result_word(record.result),
            "who": record.who, "detail": record.detail, "where": where or record.target}


def _when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _fill_from_history(adapter: Any, result: Any, since: datetime) -> None:
    """What only the audit record of this run says (the version a rollback chose, the previous one)."""
    for record in adapter.records(5):
        if record["action"] == result.verb and _when(record["when"]) >= since and \
                (not result.version or record["version"] == result.version):
            result.version = result.version or record["version"]
            result.previous = result.previous or record["previous"]
            if record["label"]:
                result.details.setdefault("label", record["label"])
            return


def show_history(project: Project, records: list[dict[str, Any]]) -> None:
    if not records:
        project.say("no audit records yet")
        return
    rows = [("WHEN", "ACTION", "VERSION", "PREVIOUS", "RESULT", "WHO", "WHERE")]
    rows += [(r["when"], r["action"], r["version"] or "-", r["previous"] or "-", r["result"] or "-", r["who"] or "-",
              r["where"] or "-") for r in records]
    project.say(table(rows))


def run_verb(c: Any, verb: str, *, env: str, as_json: bool, options: Options, given: Options) -> None:
    """Pick the environment and its adapter, refuse what it cannot honour, run ``verb``; report as asked.

    ``given`` holds the options the user set (checked against the target); the error edge is here, not in
    :func:`~dockyard.tasks.common.edge`, because ``--json`` prints its object on failure too.
    """
    from dataclasses import asdict

    from ..dispatch import (
        Result,
        append_github_output,
        default_environment,
        machine_output,
        refuse_unsupported,
        require_target,
    )
    from ..errors import DockyardError
    from ..plan import recording_timings

    result = Result(verb=verb, dry_run=bool(options.get("dry_run")))
    failure: Exit | None = None
    project: Project | None = None
    github_output = os.environ.get("GITHUB_OUTPUT", "") if verb == "deploy" else ""
    with machine_output(as_json) as emit:
        with recording_timings() as timings:
            try:
                project = Project(c)
                settings = project.settings
                name = env or default_environment({n: e.target for n, e in settings.environments.items()},
                                                  settings.release_env, verb)
                environment = settings.environment(name)
                result.environment, result.target = name, environment.target
                require_target(name, environment.target)
                refuse_unsupported(name, environment.target, verb, given)
                adapter = ADAPTERS[environment.target](project, name)
                if verb == "history":
                    records = adapter.records(int(options["count"]))
                    result.details["records"] = records
                    result.result = "ok"
                    show_history(project, records)
                elif verb in ("deploy", "rollback"):
                    failure = run_with_events(project, adapter, verb, options, result,
                                              complete=bool(as_json or github_output))
                else:
                    failure = _run_adapter(adapter, verb, options, result)
            except DockyardError as exc:
                failure = _failed(result, exc.exit_code, exc.message)
            except KeyboardInterrupt:
                failure = _failed(result, 130, "interrupted")
            except Exception as exc:
                result.failed(1, f"{type(exc).__name__}: {exc}")
                emit(_masked(project, result.to_json()))
                raise
        result.steps = [asdict(t) for t in timings]
        if github_output:
            append_github_output(github_output, result)
        emit(_masked(project, result.to_json()))
    if failure is not None:
        raise failure


def run_target(c: Any, target: str, verb: str, env: str, options: Options) -> None:
    """A target's own ``deploy``/``rollback`` task (``ecs.deploy``, ``eb.rollback``, ``<env>.ssh-deploy`` ...): the
    same adapter, hooks and notification as ``inv deploy|rollback``, for an environment named by the task."""
    from ..dispatch import Result

    project = Project(c)
    project.settings.environment(env)  # an unknown environment is one line before anything else
    result = Result(verb=verb, environment=env, target=target, dry_run=bool(options.get("dry_run")))
    failure = run_with_events(project, ADAPTERS[target](project, env), verb, options, result)
    if failure is not None:
        raise failure


def run_with_events(project: Project, adapter: Any, verb: str, options: Options, result: Any, *,
                    complete: bool = False) -> Exit | None:
    """Run a deploy or rollback between its hooks (:mod:`dockyard.core.hooks`) and notify when it ended.

    A failing ``pre-*`` hook is this run's failure before anything was locked or changed. After the run, what
    the hooks and the webhook are told (the previous version, the URL) comes from this run's audit record.
    """
    from ..core.actor import actor
    from ..core.hooks import NAMES, DeployFacts
    from ..core.signals import Interrupted, exit_code_of
    from ..errors import DockyardError

    events = project.deploy_events(project.settings.environment(result.environment))
    facts = DeployFacts(action=verb, environment=result.environment, target=result.target, actor=actor(),
                        version=str(options.get("version") or options.get("to") or ""))
    hooks = [name for name in (f"pre-{verb}", f"post-{verb}", "on-failure") if events.present(name)]
    since = datetime.now(timezone.utc).replace(microsecond=0)
    try:
        events.check(*NAMES)
        if result.dry_run:
            if hooks:
                project.say(f"(dry run) hooks that would run around it: {', '.join(hooks)}")
            if events.webhook_url():
                project.say(f"(dry run) the end would be notified to ${project.settings.hooks.webhook_env}")
        else:
            events.before(facts)
    except DockyardError as exc:
        return _failed(result, exc.exit_code, exc.message)
    try:
        failure = _run_adapter(adapter, verb, options, result)
    except Interrupted as exc:  # SIGTERM/SIGHUP: the edge exits 143/129; the hooks and the webhook hear of it first
        result.failed(exit_code_of(exc), f"interrupted by {exc.name}")
        raise
    except Exception as exc:  # a defect: the hooks and the webhook hear of a failure, never of a success
        result.failed(1, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if not result.dry_run:
            notified = bool(hooks) or bool(events.webhook_url())
            if complete or notified:
                _complete(project, adapter, result, since)
            if notified:
                facts.version = result.version or facts.version
                facts.previous, facts.image, facts.url = result.previous, result.image, result.url
                facts.result = result.result or ("succeeded" if result.exit_code == 0 else "failed")
                facts.exit_code, facts.message = result.exit_code, result.message
                events.after(facts)
    return failure


def _failed(result: Any, code: int, message: str) -> Exit:
    result.failed(code, message)
    return Exit(f"dockyard: {message}", code=code)


def _run_adapter(adapter: Any, verb: str, options: Options, result: Any) -> Exit | None:
    from ..errors import DockyardError

    try:
        getattr(adapter, verb)(options, result)
    except DockyardError as exc:
        return _failed(result, exc.exit_code, exc.message)
    except KeyboardInterrupt:
        return _failed(result, 130, "interrupted")
    return None


#: Exit codes after which the run may have changed something and written its audit record.
RAN = (0, 3, 6, 10, 11, 12, 130)


def _complete(project: Project, adapter: Any, result: Any, since: datetime) -> None:
    """Best effort after the run: digest, URL, what this run's audit record says. Skipped when the run was
    refused before it started (settings, lock, credentials): its one error line stays the only one."""
    from ..errors import DockyardError

    if result.exit_code not in RAN:
        return
    try:
        if not result.dry_run:
            _fill_from_history(adapter, result, since)
        result.digest = result.digest or project.registry_digest(result.version)
        result.url = result.url or adapter.url()
    except (DockyardError, OSError) as exc:
        if result.exit_code == 0:
            project.warn(f"note: the result is incomplete ({getattr(exc, 'message', exc)})")


def _masked(project: Project | None, text: str) -> str:
    return project.mask(text) if project is not None else text
