"""What a generated CI pipeline runs, as data: its jobs, their set-up steps, their ``inv`` lines and secrets.

:func:`build_pipeline` reads the settings and the project's Invoke collection once; the provider templates
(``templates/ci/*.yml.j2``) only lay the result out. Every shell step here is written for bash on the provider's
stock image (GitHub's ``ubuntu-22.04``, CircleCI's ``ubuntu-2204`` machine) and never prints a secret: secrets
reach files through ``printf`` (a shell builtin, so no value is on a command line) under ``umask 077``.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .invocations import Invocation, Placeholder, bind, check_task_names

VERSION_VARIABLE = "DOCKYARD_VERSION"
SSH_DIR = "$HOME/.ssh"
KEY_FILE = "$HOME/.ssh/dockyard_deploy_key"
KNOWN_HOSTS = "$HOME/.ssh/dockyard_known_hosts"
TOKEN_FILE = "$HOME/.dockyard-oidc-token"
AWS_TARGETS = ("eb", "ecs")
PROVIDER_VARIABLES = {
    # what the pipeline exports to later steps, and where the pushed ref's name is
    "github": {"export": "$GITHUB_ENV", "tag": "GITHUB_REF_NAME"},
    "circleci": {"export": "$BASH_ENV", "tag": "CIRCLE_TAG"},
}


@dataclass(frozen=True)
class RunStep:
    name: str
    command: str  # a bash script
    secrets: tuple[str, ...] = ()  # secrets only this step reads (GitHub: step env)


@dataclass(frozen=True)
class Job:
    name: str  # staging | deploy
    setup: tuple[RunStep, ...]  # after checkout, Python and the install
    invocations: tuple[Invocation, ...]
    secrets: tuple[str, ...]  # secrets every step of the job reads (the registry password...)
    aws: bool  # needs AWS credentials (OIDC role, or static keys)
    environments: tuple[str, ...]

    def steps(self) -> tuple[RunStep, ...]:
        return self.setup + tuple(RunStep(i.shell(), i.shell()) for i in self.invocations)


@dataclass(frozen=True)
class Pipeline:
    provider: str
    install_command: str
    install_file: str  # what the pip cache is keyed on
    staging: Job | None
    release: Job | None
    aws_auth: str
    aws_role_arn: str  # "" = the AWS_ROLE_ARN variable
    aws_region: str


def install_command(settings: Any, ci: Any) -> tuple[str, str]:
    """The command CI installs dockyard with, and the file its pip cache is keyed on."""
    root = settings.root
    for name in ("requirements.txt", "pyproject.toml", "setup.py"):
        if (root / name).is_file():
            found = name
            break
    else:
        found = ""
    if ci.install_command:
        return ci.install_command, found
    if found == "requirements.txt":
        return "python3 -m pip install -r requirements.txt", found
    if found:
        return "python3 -m pip install .", found
    raise ConfigError("dockyard.ci.install_command: the project has no requirements.txt, pyproject.toml or "
                      "setup.py to install dockyard from; add one, or set the command CI installs dockyard with")


def secret_for_env(ci: Any, env_name: str) -> str:
    return ci.env_secret_prefix + re.sub(r"[^A-Za-z0-9]", "_", env_name).upper()


def build_pipeline(settings: Any, ci: Any, collection: Any, provider: str) -> Pipeline:
    """Bind every configured task to the collection (refusing what ``inv`` would refuse) and lay out the jobs."""
    command, install_file = install_command(settings, ci)
    from ..dispatch import default_environment

    environments = list(settings.environments)
    targets = {name: env.target for name, env in settings.environments.items()}

    def run_time_env(verb: str) -> str:
        return default_environment(targets, settings.release_env, verb)

    prefix = settings.release.tag_prefix
    version = Placeholder("version", VERSION_VARIABLE, "0.0.0")
    check_task_names({"staging_tasks": ci.staging_tasks, "release_tasks": ci.release_tasks}, collection)
    staging = [bind(e, "staging_tasks", collection, {}, environments, run_time_env) for e in ci.staging_tasks]
    release = [bind(e, "release_tasks", collection, {"version": version}, environments, run_time_env)
               for e in ci.release_tasks]
    variables = PROVIDER_VARIABLES[provider]
    staging_job = _job("staging", staging, settings, ci, provider) if staging else None
    release_job = None
    if release:
        tag_version = RunStep("Version from the tag", f'echo "{_export(provider, VERSION_VARIABLE)}'
                                                      f'${{{variables["tag"]}#{prefix}}}" >> "{variables["export"]}"')
        release_job = _job("deploy", release, settings, ci, provider, first=(tag_version,))
    return Pipeline(provider, command, install_file, staging_job, release_job, ci.aws_auth, ci.aws_role_arn,
                    settings.aws_region)


def _export(provider: str, name: str) -> str:
    return f"{name}=" if provider == "github" else f"export {name}="


def _job(name: str, invocations: list[Invocation], settings: Any, ci: Any, provider: str,
         first: tuple[RunStep, ...] = ()) -> Job:
    envs = tuple(dict.fromkeys(e for i in invocations for e in i.env_values))
    targets = {e: settings.environments[e].target for e in envs}
    secrets: list[str] = []
    registry = settings.registry
    if registry.kind != "ecr" and registry.username and registry.password_env:
        secrets.append(registry.password_env)
    aws = ci.aws_auth != "none" and (registry.kind == "ecr" or any(t in AWS_TARGETS for t in targets.values()))
    if aws and ci.aws_auth == "keys":
        secrets += ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    secrets += [s for s in ci.secrets if s not in secrets]
    webhook = settings.hooks.webhook_env
    if envs and webhook and webhook not in secrets:  # a deploy job notifies when the store holds a webhook URL
        secrets.append(webhook)
    setup = list(first)
    if aws and ci.aws_auth == "oidc" and provider == "circleci":
        setup.append(_circleci_oidc_step(ci))
    ssh_envs = [e for e, t in targets.items() if t == "ssh"]
    if ssh_envs:
        _check_ssh_settings(settings, ssh_envs)
        setup.append(_ssh_step(ci, provider, PROVIDER_VARIABLES[provider]["export"]))
    for env_name in envs:
        env = settings.environments[env_name]
        if env.env_example.is_file() or env.env_file.is_file():
            setup.append(_env_file_step(settings, ci, env_name, required=targets[env_name] == "ssh"))
    return Job(name, tuple(setup), tuple(invocations), tuple(secrets), aws, envs)


def _check_ssh_settings(settings: Any, env_names: list[str]) -> None:
    """CI sets ``dockyard.ssh.key_file`` / ``known_hosts`` (Invoke's environment variables); an environment's own
    value would win over them and point at a file CI never wrote."""
    for name in env_names:
        overrides = settings.environments[name].section.section("ssh").data
        for key in ("key_file", "known_hosts"):
            if overrides.get(key):
                raise ConfigError(f"dockyard.environments.{name}.ssh.{key} is set: CI writes the deploy key and "
                                  f"known_hosts from secrets through dockyard.ssh.{key}; move it to dockyard.ssh")


def _circleci_oidc_step(ci: Any) -> RunStep:
    """The job's OIDC token as a web identity token file: boto3 exchanges it with AssumeRoleWithWebIdentity."""
    lines = [
        "umask 077",
        ('test -n "$CIRCLE_OIDC_TOKEN_V2" || { echo "no CIRCLE_OIDC_TOKEN_V2: run this job with a context" >&2; '
         "exit 1; }"),
        f'printf \'%s\' "$CIRCLE_OIDC_TOKEN_V2" > "{TOKEN_FILE}"',
        f"echo 'export AWS_WEB_IDENTITY_TOKEN_FILE=\"{TOKEN_FILE}\"' >> \"$BASH_ENV\"",
        "echo 'export AWS_ROLE_SESSION_NAME=\"circleci-${CIRCLE_BUILD_NUM}\"' >> \"$BASH_ENV\"",
    ]
    if ci.aws_role_arn:
        lines.append(f"echo 'export AWS_ROLE_ARN={ci.aws_role_arn}' >> \"$BASH_ENV\"")
    else:
        lines.insert(1, 'test -n "$AWS_ROLE_ARN" || { echo "set AWS_ROLE_ARN in the context (or '
                        'dockyard.ci.aws_role_arn)" >&2; exit 1; }')
    return RunStep("AWS credentials from the job's OIDC token (AssumeRoleWithWebIdentity)", "\n".join(lines) + "\n")


def _ssh_step(ci: Any, provider: str, export_file: str) -> RunStep:
    key, known = ci.ssh_key_secret, ci.ssh_known_hosts_secret
    lines = [
        "umask 077",
        f'test -n "${key}" || {{ echo "the secret {key} is empty: store the deploy key there" >&2; exit 1; }}',
        (f'test -n "${known}" || {{ echo "the secret {known} is empty: store the hosts\' known_hosts lines there '
         f'(ssh-keyscan -p PORT HOST)" >&2; exit 1; }}'),
        f'mkdir -p "{SSH_DIR}"',
        f'printf \'%s\\n\' "${key}" > "{KEY_FILE}"',
        f'printf \'%s\\n\' "${known}" > "{KNOWN_HOSTS}"',
        f'chmod 600 "{KEY_FILE}" "{KNOWN_HOSTS}"',
        # dockyard.ssh.* from the environment (Invoke reads INVOKE_DOCKYARD_SSH_KEY_FILE...) for the later steps
        f'echo "{_export(provider, "INVOKE_DOCKYARD_SSH_KEY_FILE")}{KEY_FILE}" >> "{export_file}"',
        f'echo "{_export(provider, "INVOKE_DOCKYARD_SSH_KNOWN_HOSTS")}{KNOWN_HOSTS}" >> "{export_file}"',
    ]
    return RunStep("Write the SSH deploy key and known_hosts", "\n".join(lines) + "\n", (key, known))


def _env_file_step(settings: Any, ci: Any, env_name: str, *, required: bool) -> RunStep:
    env = settings.environments[env_name]
    secret = secret_for_env(ci, env_name)
    path = _shown(env.env_file, settings.root)
    quoted = shlex.quote(path)
    write = [f"mkdir -p {shlex.quote(_shown(env.env_file.parent, settings.root))}",
             f'printf \'%s\\n\' "${secret}" > {quoted}']
    if required:
        lines = ["umask 077",
                 f'test -n "${secret}" || {{ echo "the secret {secret} is empty: store {path} there" >&2; exit 1; }}',
                 *write]
    else:  # optional: this environment's tasks run without it
        lines = ["umask 077", f'if [ -n "${secret}" ]; then', *(f"  {w}" for w in write), "fi"]
    return RunStep(f"Write {path} from the secret {secret}", "\n".join(lines) + "\n", (secret,))


def _shown(path: Any, root: Any) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
