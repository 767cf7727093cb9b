"""``eb.secret_keys`` as Elastic Beanstalk environment secrets: where each value is stored, what changes, and the
performer that stores them.

EB platforms released since 2025-03-26 fetch environment secrets on the instances: each option of the namespace
``aws:elasticbeanstalk:application:environmentsecrets`` names a variable, and its value is the ARN of an SSM
parameter (SecureString included, decrypted with the instance profile's permissions) or of a Secrets Manager secret
(EB developer guide, "Fetching secrets and parameters to Elastic Beanstalk environment variables"). The
``{{resolve:ssm:NAME}}`` form dockyard used before resolves String parameters only, never a SecureString.

EB reads the latest value behind each ARN when it deploys (or restarts) the application: the option holds no
version. So every deploy record says which version held each value (the SSM parameter version, the Secrets
Manager ``VersionId``), and a rollback makes the recorded value the latest again before it redeploys (see
:meth:`dockyard.eb.service.EbService.restored_secrets`, and ``secrets_to_restore`` for the automatic rollback).

Values are never shown: the plan steps carry them as secret arguments, the diff lines name ARNs only.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clients.eb import ENV_NAMESPACE, SECRETS_NAMESPACE
from ..core.secret_versions import NEW_SECRET, secret_versions
from ..plan import ApiCall, Step

#: the audit record's ``extra`` key holding the secrets a deploy left (JSON: key -> {name, arn, version})
AUDIT_KEY = "secrets"


@dataclass(frozen=True)
class SecretWriteStep:
    """One value to store: a new SSM parameter version, or a Secrets Manager version whose id is chosen already."""

    key: str
    name: str
    arn: str  # the SSM parameter's ARN; for Secrets Manager the secret's ARN, or NEW_SECRET+name when it is new
    value: str = field(repr=False)
    version_id: str = ""  # Secrets Manager only
    exists: bool = True


@dataclass(frozen=True)
class SecretsChange:
    """What a deploy (or setenv, or rollback) does to the secret keys: the values it stores, the environment
    secrets options it sets and removes, and the versions the secrets will be at (``version`` "" for an SSM value
    this change writes: its version is known once written)."""

    backend: str
    writes: tuple[SecretWriteStep, ...] = ()
    option_settings: tuple[dict[str, str], ...] = ()
    options_to_remove: tuple[dict[str, str], ...] = ()
    diff: tuple[str, ...] = ()
    #: key -> (name, arn, version) as the secrets will be once the writes are done
    refs: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    #: the plain values set (a key moved out of secret_keys), so the update step masks its options
    plain: bool = False

    @property
    def changes_environment(self) -> bool:
        return bool(self.option_settings or self.options_to_remove)

    @property
    def noop(self) -> bool:
        return not self.writes and not self.changes_environment


def owned(arn: str, prefix: str) -> bool:
    """Whether ``arn`` is one of dockyard's secrets under ``prefix`` (either backend)."""
    return f":parameter/{prefix.strip('/')}/" in arn or f":secret:{prefix.strip('/')}/" in arn


def plan_secrets(*, backend: str, keys: tuple[str, ...], values: Mapping[str, str], names: Mapping[str, str],
                 prefix: str, current_secrets: Mapping[str, str], current_plain: Mapping[str, str],
                 ssm_stored: Callable[[str], tuple[str, int] | None] | None = None,
                 ssm_arn: Callable[[str], str] | None = None, sm_current: Callable[[str], Any] | None = None,
                 move_to_plain: bool = True) -> SecretsChange:
    """Decide from the state read: the values in ``values`` of ``keys`` are stored (only when they differ from the
    stored current ones), each key becomes an environment secret option naming its ARN; an option of ours (an ARN
    under ``prefix``) whose key is no longer a secret key is removed, and with ``move_to_plain`` the key's ``.env``
    value becomes a plain property; a plain property of a secret key (the old ``{{resolve:ssm:}}`` one) goes."""
    writes: list[SecretWriteStep] = []
    refs: dict[str, tuple[str, str, str]] = {}
    wanted = {key: (names[key], values[key]) for key in keys}
    if not wanted:
        pass  # no secret keys (left): only our options still on the environment go
    elif backend == "secretsmanager":
        assert sm_current is not None
        chosen, sm_writes = secret_versions(sm_current, wanted)
        by_name = {w.name: w for w in sm_writes}
        for key, (arn, version) in chosen.items():
            refs[key] = (names[key], arn, version)
            write = by_name.get(names[key])
            if write is not None:
                writes.append(SecretWriteStep(key, write.name, arn, write.value, write.version_id, write.exists))
    else:
        assert ssm_stored is not None and ssm_arn is not None
        for key, (name, value) in wanted.items():
            arn = ssm_arn(name)
            stored = ssm_stored(name)
            if stored is not None and stored[0] == value:
                refs[key] = (name, arn, str(stored[1]))
                continue
            writes.append(SecretWriteStep(key, name, arn, value, exists=stored is not None))
            refs[key] = (name, arn, "")
    settings: list[dict[str, str]] = []
    remove: list[dict[str, str]] = []
    lines: list[str] = []
    written = {w.key for w in writes}
    plain = False
    for key in sorted(set(refs) | set(current_secrets)):
        if key in refs:
            arn = refs[key][1]
            if current_secrets.get(key) != arn:
                settings.append({"Namespace": SECRETS_NAMESPACE, "OptionName": key, "Value": arn})
                was = f" (was {current_secrets[key]})" if key in current_secrets else ""
                lines.append(f"{'~' if key in current_secrets else '+'} {key} (secret) -> {arn}{was}")
            elif key in written:
                lines.append(f"~ {key} (secret) -> {arn}: new value")
            if key in current_plain:
                remove.append({"Namespace": ENV_NAMESPACE, "OptionName": key})
                lines.append(f"- {key} (plain property; now a secret)")
        elif owned(current_secrets[key], prefix):
            remove.append({"Namespace": SECRETS_NAMESPACE, "OptionName": key})
            lines.append(f"- {key} (secret {current_secrets[key]})")
            if move_to_plain and key in values and current_plain.get(key) != values[key]:
                settings.append({"Namespace": ENV_NAMESPACE, "OptionName": key, "Value": values[key]})
                lines.append(f"+ {key}=******** (plain property; no longer a secret key)")
                plain = True
    return SecretsChange(backend, tuple(writes), tuple(settings), tuple(remove), tuple(lines), refs, plain)


def write_steps(change: SecretsChange) -> list[Step]:
    """One step per value stored (the value masked)."""
    steps = []
    for w in change.writes:
        if change.backend == "secretsmanager":
            title = (f"store {w.name} in Secrets Manager as version {w.version_id} "
                     f"({'a new version' if w.exists else 'a new secret'})")
            call = ApiCall.of("secrets", "put", output=f"secret:{w.key}", secret=("value",), key=w.key, name=w.name,
                              value=w.value, version_id=w.version_id, exists=w.exists)
        else:
            title = f"store {w.name} (SecureString)"
            call = ApiCall.of("secrets", "put", output=f"secret:{w.key}", secret=("value",), key=w.key, name=w.name,
                              value=w.value, arn=w.arn)
        steps.append(Step(title, instruction=call))
    return steps


def recorded(record_extra: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The secrets an audit record says its deploy left: key -> {name, arn, version} ({} when none)."""
    text = record_extra.get(AUDIT_KEY, "")
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(k): {str(a): str(b) for a, b in v.items()} for k, v in data.items() if isinstance(v, dict)}


class EbSecretStore:
    """The performer of the secret steps: stores values (SSM SecureString or Secrets Manager), remembers the
    versions written, and updates the environment with the ARNs of the secrets created by this run put in."""

    def __init__(self, backend: str, *, eb: Any, ssm: Any = None, secrets_manager: Any = None) -> None:
        self.backend = backend
        self.eb = eb
        self.ssm = ssm
        self.secrets_manager = secrets_manager
        self.written: dict[str, tuple[str, str]] = {}  # key -> (arn, version)
        self.arns: dict[str, str] = {}  # secret name -> ARN

    def put(self, key: str, name: str, value: str, *, arn: str = "", version_id: str = "",
            exists: bool = True) -> str:
        if self.backend == "secretsmanager":
            arn = self.secrets_manager.write(name=name, value=value, version_id=version_id, exists=exists,
                                             description="written by dockyard (eb.secret_keys)")
            version = version_id
        else:
            version = str(self.ssm.put_secure(name, value))
        self.written[key] = (arn, version)
        self.arns[name] = arn
        return arn

    def update_environment(self, application: str, name: str, *, label: str = "",
                           option_settings: tuple[dict[str, str], ...] = (),
                           options_to_remove: tuple[dict[str, str], ...] = ()) -> str:
        settings = []
        for option in option_settings:
            value = option.get("Value", "")
            if value.startswith(NEW_SECRET):
                option = {**option, "Value": self.arns[value[len(NEW_SECRET):]]}
            settings.append(option)
        return self.eb.update_environment(application, name, label=label, option_settings=settings,
                                          options_to_remove=options_to_remove)

    def record(self, change: SecretsChange | None) -> dict[str, str]:
        """The audit record's ``extra`` for the secrets ``change`` left (the versions this run wrote put in); {}
        when there are no secret keys."""
        if change is None or not change.refs:
            return {}
        out = {}
        for key, (name, arn, version) in sorted(change.refs.items()):
            written = self.written.get(key)
            if written is not None:
                arn, version = written
            out[key] = {"name": name, "arn": arn, "version": version}
        return {AUDIT_KEY: json.dumps(out, sort_keys=True)}
