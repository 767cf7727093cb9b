"""An Elastic Beanstalk stand-in: the EB Query API over HTTP, backed by the local Docker engine.

It is written from the Elastic Beanstalk documentation, not from dockyard: it parses Dockerrun.aws.json v1/v2/v3
and docker-compose.yml bundles itself, follows ``Authentication`` by fetching the dockercfg from S3 (moto) and
pulling with it from the real registry, runs the containers on loopback ports, checks health over HTTP, and emits
events and moves Status/Health the way EB does. Test-only introspection lives under ``GET /_standin/``.
"""
from __future__ import annotations

import base64
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

NS = "http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/"
MUTATING = {"CreateApplication", "CreateEnvironment", "CreateApplicationVersion", "UpdateEnvironment",
            "SwapEnvironmentCNAMEs"}
APP_NS = "aws:elasticbeanstalk:application"
ENV_NS = "aws:elasticbeanstalk:application:environment"
SECRETS_NS = "aws:elasticbeanstalk:application:environmentsecrets"
LABEL = "dockyard-standin"
INSTANCE_ID = "i-0standin0leader"  # the stand-in's one instance, so the leader of every deployment


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- query-string decoding ------------------------------------------------------------------------------------------


def decode_params(form: dict[str, str]) -> dict[str, Any]:
    """``A.member.1.B=x`` -> {"A": [{"B": "x"}]}; ``S.S3Bucket=x`` -> {"S": {"S3Bucket": "x"}}."""
    root: dict[str, Any] = {}
    for key, value in form.items():
        parts = key.split(".")
        node: Any = root
        i = 0
        while i < len(parts):
            part = parts[i]
            last = i == len(parts) - 1
            if part == "member" and i + 1 < len(parts):
                index = int(parts[i + 1]) - 1
                i += 1
                last = i == len(parts) - 1
                while len(node) <= index:
                    node.append({})
                if last:
                    node[index] = value
                else:
                    if not isinstance(node[index], dict):
                        node[index] = {}
                    node = node[index]
                i += 1
                continue
            next_is_member = i + 1 < len(parts) and parts[i + 1] == "member"
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if next_is_member else {})
            i += 1
    return root


def xml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{xml_value(v)}</{k}>" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return "".join(f"<member>{xml_value(v)}</member>" for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    return escape(str(value))


# --- state ---------------------------------------------------------------------------------------------------------


@dataclass
class Version:
    application: str
    label: str
    bucket: str
    key: str
    description: str
    created: datetime = field(default_factory=utcnow)

    def describe(self) -> dict[str, Any]:
        return {"ApplicationName": self.application, "VersionLabel": self.label, "Description": self.description,
                "SourceBundle": {"S3Bucket": self.bucket, "S3Key": self.key}, "DateCreated": self.created,
                "DateUpdated": self.created, "Status": "UNPROCESSED",
                "ApplicationVersionArn": f"arn:aws:elasticbeanstalk:us-east-1:123456789012:applicationversion/"
                                         f"{self.application}/{self.label}"}


@dataclass
class Environment:
    application: str
    name: str
    id: str
    cname: str
    port: int  # loopback port standing for the environment's load balancer
    options: dict[tuple[str, str], str] = field(default_factory=dict)
    status: str = "Ready"
    health: str = "Grey"
    health_status: str = "NoData"
    version_label: str = ""
    created: datetime = field(default_factory=utcnow)
    updated: datetime = field(default_factory=utcnow)
    bundle_options: dict[tuple[str, str], str] = field(default_factory=dict)
    failures: int = 0
    green_at: float = 0.0  # monotonic time health last turned Green
    ready_at: float = 0.0
    deployed_dir: Path | None = None

    @property
    def prefix(self) -> str:
        return f"ebsi-{self.id}"

    def health_url(self) -> str:
        path = self.bundle_options.get((APP_NS, "Application Healthcheck URL")) or \
            self.options.get((APP_NS, "Application Healthcheck URL")) or "/"
        return f"http://127.0.0.1:{self.port}{path if path.startswith('/') else '/' + path}"

    def describe(self) -> dict[str, Any]:
        return {"EnvironmentName": self.name, "EnvironmentId": self.id, "ApplicationName": self.application,
                "VersionLabel": self.version_label or None,
                "SolutionStackName": "64bit Amazon Linux 2023 v4.3.0 running Docker",
                "Status": self.status, "Health": self.health, "HealthStatus": self.health_status,
                "CNAME": self.cname, "EndpointURL": f"127.0.0.1:{self.port}", "DateCreated": self.created,
                "DateUpdated": self.updated, "AbortableOperationInProgress": self.status == "Updating",
                "Tier": {"Name": "WebServer", "Type": "Standard", "Version": "1.0"},
                "EnvironmentArn": f"arn:aws:elasticbeanstalk:us-east-1:123456789012:environment/{self.application}/"
                                  f"{self.name}"}


@dataclass
class Event:
    date: datetime
    application: str
    environment: str
    severity: str
    message: str
    request_id: str = ""
    version_label: str = ""

    def describe(self) -> dict[str, Any]:
        return {"EventDate": self.date, "Message": self.message, "ApplicationName": self.application,
                "EnvironmentName": self.environment, "Severity": self.severity,
                "RequestId": self.request_id or None, "VersionLabel": self.version_label or None}


class StandIn:
    """The service: API handlers, the deploy worker and the health monitor."""

    def __init__(self, s3_endpoint: str, *, health_interval: float = 0.5, start_grace: float = 60.0,
                 workdir: Path | None = None) -> None:
        self.s3_endpoint = s3_endpoint
        self.health_interval = health_interval
        self.start_grace = start_grace
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="eb-standin-"))
        self.lock = threading.RLock()
        self.applications: dict[str, datetime] = {}
        self.versions: dict[tuple[str, str], Version] = {}
        self.environments: dict[str, Environment] = {}
        self.events: list[Event] = []
        self.calls: list[tuple[float, str, dict]] = []
        self.workers: list[threading.Thread] = []
        self.pulled: set[str] = set()
        self.hook_runs: list[dict[str, Any]] = []
        self.container_command_runs: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self.monitor = threading.Thread(target=self._monitor, daemon=True)
        self.monitor.start()

    # --- plumbing ----------------------------------------------------------------------------------------------
    def s3(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.s3_endpoint, region_name="us-east-1",
                            aws_access_key_id="AKIATESTDOCKYARD0000", aws_secret_access_key="test-secret-key-dockyard")

    def event(self, env: Environment, severity: str, message: str, request_id: str = "", label: str = "") -> None:
        with self.lock:
            self.events.append(Event(utcnow(), env.application, env.name, severity, message, request_id,
                                     label or env.version_label))

    def handle(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append((time.monotonic(), action, params))
        method = getattr(self, f"api_{action}", None)
        if method is None:
            raise ApiError("InvalidAction", f"The action {action} is not valid for this web service.")
        return method(params)

    def _app(self, name: str) -> str:
        if name not in self.applications:
            raise ApiError("InvalidParameterValue", f"No Application named '{name}' found.")
        return name

    def _env(self, name: str, application: str = "") -> Environment:
        env = self.environments.get(name)
        if env is None or (application and env.application != application):
            raise ApiError("InvalidParameterValue", f"No Environment found for EnvironmentName = '{name}'.")
        return env

    # --- API -------------------------------------------------------------------------------------------------------
    def api_CreateApplication(self, p: dict) -> dict:
        name = p["ApplicationName"]
        with self.lock:
            if name in self.applications:
                raise ApiError("InvalidParameterValue", f"Application {name} already exists.")
            self.applications[name] = utcnow()
        return {"Application": self._describe_app(name)}

    def _describe_app(self, name: str) -> dict:
        return {"ApplicationName": name, "DateCreated": self.applications[name], "DateUpdated": self.applications[name],
                "Versions": [v.label for v in self.versions.values() if v.application == name],
                "ConfigurationTemplates": []}

    def api_DescribeApplications(self, p: dict) -> dict:
        names = p.get("ApplicationNames") or list(self.applications)
        return {"Applications": [self._describe_app(n) for n in names if n in self.applications]}

    def api_CreateEnvironment(self, p: dict) -> dict:
        app = self._app(p["ApplicationName"])
        name = p["EnvironmentName"]
        with self.lock:
            if name in self.environments:
                raise ApiError("InvalidParameterValue", f"Environment {name} already exists.")
            env = Environment(app, name, "e-" + uuid.uuid4().hex[:10],
                              f"{p.get('CNAMEPrefix') or name}.us-east-1.elasticbeanstalk.com", free_port())
            for option in p.get("OptionSettings") or []:
                env.options[(option["Namespace"], option["OptionName"])] = option.get("Value", "")
            self.environments[name] = env
        self.event(env, "INFO", "createEnvironment is starting.")
        label = p.get("VersionLabel")
        if label:
            self._version(app, label)
            self._start_update(env, label, "create-" + uuid.uuid4().hex[:8])
        else:
            self.event(env, "INFO", "Successfully launched environment: " + name)
        return env.describe()

    def api_DescribeEnvironments(self, p: dict) -> dict:
        names = p.get("EnvironmentNames")
        app = p.get("ApplicationName")
        with self.lock:
            found = [e.describe() for e in self.environments.values()
                     if (not names or e.name in names) and (not app or e.application == app)]
        return {"Environments": found}

    def _version(self, app: str, label: str) -> Version:
        version = self.versions.get((app, label))
        if version is None:
            raise ApiError("InvalidParameterValue", f"No Application Version named '{label}' found.")
        return version

    def api_CreateApplicationVersion(self, p: dict) -> dict:
        app = p["ApplicationName"]
        if app not in self.applications:
            if p.get("AutoCreateApplication") == "true":
                self.applications[app] = utcnow()
            else:
                raise ApiError("InvalidParameterValue", f"No Application named '{app}' found.")
        label = p["VersionLabel"]
        bundle = p.get("SourceBundle") or {}
        with self.lock:
            if (app, label) in self.versions:
                raise ApiError("InvalidParameterValue", f"Application Version {label} already exists.")
        try:
            self.s3().head_object(Bucket=bundle.get("S3Bucket", ""), Key=bundle.get("S3Key", ""))
        except Exception:
            raise ApiError("InvalidParameterCombination", "Unable to download from S3 location (Bucket: "
                           f"{bundle.get('S3Bucket')}  Key: {bundle.get('S3Key')}). Reason: Not Found") from None
        version = Version(app, label, bundle["S3Bucket"], bundle["S3Key"], p.get("Description", ""))
        with self.lock:
            self.versions[(app, label)] = version
        return {"ApplicationVersion": version.describe()}

    def api_DescribeApplicationVersions(self, p: dict) -> dict:
        app = p.get("ApplicationName")
        labels = p.get("VersionLabels")
        found = [v for v in self.versions.values() if (not app or v.application == app)
                 and (not labels or v.label in labels)]
        return {"ApplicationVersions": [v.describe() for v in sorted(found, key=lambda v: v.created, reverse=True)]}

    def api_UpdateEnvironment(self, p: dict, request_id: str = "") -> dict:
        env = self._env(p["EnvironmentName"], p.get("ApplicationName", ""))
        label = p.get("VersionLabel")
        if label:
            self._version(env.application, label)
        with self.lock:
            if env.status != "Ready":
                raise ApiError("InvalidParameterValue", f"Environment named {env.name} is in an invalid state for "
                               "this operation. Must be Ready.")
            for option in p.get("OptionSettings") or []:
                env.options[(option["Namespace"], option["OptionName"])] = option.get("Value", "")
            for option in p.get("OptionsToRemove") or []:
                env.options.pop((option["Namespace"], option["OptionName"]), None)
            env.status = "Updating"
            env.health, env.health_status = "Grey", "Info"
            env.updated = utcnow()
        self._start_update(env, label or env.version_label, p["_RequestId"], redeploy=bool(label))
        return env.describe()

    def api_DescribeEvents(self, p: dict) -> dict:
        start = p.get("StartTime")
        start_dt = datetime.strptime(start[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc) if start else None
        with self.lock:
            found = [e for e in self.events
                     if (not p.get("ApplicationName") or e.application == p["ApplicationName"])
                     and (not p.get("EnvironmentName") or e.environment == p["EnvironmentName"])
                     and (not p.get("RequestId") or e.request_id == p["RequestId"])
                     and (start_dt is None or e.date >= start_dt)]
        found = sorted(found, key=lambda e: e.date, reverse=True)[: int(p.get("MaxRecords") or 1000)]
        return {"Events": [e.describe() for e in found]}

    def api_SwapEnvironmentCNAMEs(self, p: dict) -> dict:
        source = self._env(p["SourceEnvironmentName"])
        destination = self._env(p["DestinationEnvironmentName"])
        with self.lock:
            for env in (source, destination):
                if env.status != "Ready":
                    raise ApiError("InvalidParameterValue", f"Environment named {env.name} is in an invalid state "
                                   "for this operation. Must be Ready.")
            source.cname, destination.cname = destination.cname, source.cname
        self.event(source, "INFO", f"Completed swapping CNAMEs for environments '{source.name}' and "
                   f"'{destination.name}'.", p["_RequestId"])
        return {}

    def api_DescribeConfigurationSettings(self, p: dict) -> dict:
        env = self._env(p["EnvironmentName"], p.get("ApplicationName", ""))
        options = [{"Namespace": ns, "OptionName": name, "Value": value}
                   for (ns, name), value in sorted({**env.bundle_options, **env.options}.items())]
        return {"ConfigurationSettings": [{"ApplicationName": env.application, "EnvironmentName": env.name,
                                           "DeploymentStatus": "deployed", "OptionSettings": options}]}

    def api_DescribeEnvironmentHealth(self, p: dict) -> dict:
        env = self._env(p["EnvironmentName"])
        return {"EnvironmentName": env.name, "HealthStatus": env.health_status, "Status": env.status,
                "Color": env.health, "Causes": self._causes(env)}

    def _causes(self, env: Environment) -> list[str]:
        """What enhanced health reporting says about a colour other than Green (nothing while Grey: no data)."""
        with self.lock:
            if env.health in ("Green", "Grey"):
                return []
            if env.failures >= 99:
                return ["Application deployment failed on all instances."]
            return [f"Health checks of {env.health_url()} are failing ({env.failures} in a row)."]

    # --- the platform -------------------------------------------------------------------------------------------------
    def _start_update(self, env: Environment, label: str, request_id: str, redeploy: bool = True) -> None:
        with self.lock:
            env.status = "Updating"
            env.health, env.health_status = "Grey", "Info"
        worker = threading.Thread(target=self._update, args=(env, label, request_id, redeploy), daemon=True)
        self.workers.append(worker)
        worker.start()

    def _update(self, env: Environment, label: str, request_id: str, redeploy: bool) -> None:
        say = lambda severity, message: self.event(env, severity, message, request_id, label)  # noqa: E731
        say("INFO", "Environment update is starting.")
        directory = env.deployed_dir
        try:
            if redeploy:
                version = self._version(env.application, label)
                directory = self._fetch(version, env)
                say("INFO", "Deploying new version to instance(s).")
                self._deploy(env, directory, say)
            elif directory is not None:
                # a configuration change: restart the containers with the new environment properties; the
                # platform runs .platform/confighooks instead of .platform/hooks then
                self._deploy(env, directory, say, hooks="confighooks")
        except DeployError as exc:
            say("ERROR", str(exc))
            say("ERROR", "Failed to deploy application.")
            with self.lock:
                env.status = "Ready"
                env.health, env.health_status = "Red", "Severe"
                env.failures = 99
                env.updated = utcnow()
            return
        except Exception as exc:  # noqa: BLE001 - the stand-in reports, never dies
            say("ERROR", f"Internal error in the stand-in: {exc!r}")
            with self.lock:
                env.status = "Ready"
            return
        with self.lock:
            if label:
                env.version_label = label
            env.deployed_dir = directory
            env.status = "Ready"
            env.health, env.health_status = "Grey", "Pending"
            env.failures = 0
            env.updated = utcnow()
            env.ready_at = time.monotonic()
        say("INFO", "New application version was deployed to running EC2 instances.")
        say("INFO", "Environment update completed successfully.")

    def _fetch(self, version: Version, env: Environment) -> Path:
        try:
            body = self.s3().get_object(Bucket=version.bucket, Key=version.key)["Body"].read()
        except Exception as exc:  # noqa: BLE001
            raise DeployError(f"Unable to download the application version {version.label} from "
                              f"s3://{version.bucket}/{version.key}: {exc}") from None
        target = self.workdir / env.id / f"{version.label}-{uuid.uuid4().hex[:6]}"
        target.mkdir(parents=True)
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            for info in archive.infolist():
                archive.extract(info, target)
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    os.chmod(target / info.filename, mode)
        return target

    def _deploy(self, env: Environment, directory: Path, say, hooks: str = "hooks") -> None:
        env.bundle_options = read_ebextensions(directory)
        dockerrun = directory / "Dockerrun.aws.json"
        compose = directory / "docker-compose.yml"
        document = json.loads(dockerrun.read_text()) if dockerrun.exists() else {}
        version = str(document.get("AWSEBDockerrunVersion", "")) if document else ""
        if compose.exists():
            if version not in ("", "3"):
                raise DeployError(f"Dockerrun.aws.json version {version} cannot be used with docker-compose.yml "
                                  "(only version 3 may accompany it)")
            kind = "compose"
            auth = document.get("Authentication") if document else None
            auth = {"bucket": auth.get("bucket"), "key": auth.get("key")} if auth else None
        elif version == "1":
            kind = "v1"
            auth = document.get("Authentication")
            auth = {"bucket": auth.get("Bucket"), "key": auth.get("Key")} if auth else None
        elif version == "2":
            kind = "v2"
            auth = document.get("authentication")
        else:
            raise DeployError("The source bundle has neither a Dockerrun.aws.json of version 1 or 2 nor a "
                              "docker-compose.yml.")
        config_dir = self._docker_config(env, auth)
        options = {**env.bundle_options, **env.options}
        environment = {name: self._resolve(value) for (ns, name), value in options.items() if ns == ENV_NS}
        # environment secrets (platforms since 2025-03-26): fetched on the instance from the ARN each names, at every
        # deployment and configuration update; a secret wins over a plain property of the same name
        environment.update({name: self._fetch_secret(name, value) for (ns, name), value in options.items()
                            if ns == SECRETS_NS})
        # On the ECS-based (v2) platform the ECS agent pulls, with only the Dockerrun's `authentication` dockercfg
        # (or ECR through the instance profile): a `docker login` on the instance, as a prebuild hook would do it,
        # gives the agent nothing. So there the hooks' docker CLI has a configuration of its own, as on the platform.
        cli_config = self._docker_config(env, None) if kind == "v2" else config_dir
        self._prebuild_hooks(env, directory, hooks, cli_config, environment)
        self._container_commands(env, directory, cli_config, environment, leader=hooks == "hooks")
        self._stop(env)
        if kind == "v1":
            self._run_v1(env, document, config_dir, environment, say)
        elif kind == "v2":
            self._run_v2(env, document, directory, config_dir, environment, say)
        else:
            self._run_compose(env, directory, config_dir, environment, say)
        self._await_start(env, say)

    def _prebuild_hooks(self, env: Environment, directory: Path, kind: str, config_dir: Path,
                        environment: dict[str, str]) -> None:
        """Run ``.platform/<kind>/prebuild/*`` in name order before the images are pulled, as the platform does.

        What the platform gives a hook, doubled here without touching /opt on the host: ``get-config`` (the
        platform's /opt/elasticbeanstalk/bin/get-config) is a shim on the hook's PATH that answers from this
        environment's resolved properties, and ``docker`` logs in to the same private DOCKER_CONFIG the pull uses.
        """
        folder = directory / ".platform" / kind / "prebuild"
        if not folder.is_dir():
            return
        bin_dir, hook_env, argv_log = self._platform_tools(env, config_dir, environment)
        try:
            for hook in sorted(p for p in folder.iterdir() if p.is_file()):
                name = hook.relative_to(directory).as_posix()
                if not os.access(hook, os.X_OK):
                    raise DeployError(f"Command {name} failed: permission denied (hooks must be executable).")
                result = subprocess.run([str(hook)], cwd=directory, env=hook_env, capture_output=True, text=True,
                                        timeout=300, stdin=subprocess.DEVNULL, check=False)
                commands = [json.loads(line) for line in argv_log.read_text().splitlines()] \
                    if argv_log.exists() else []
                argv_log.unlink(missing_ok=True)
                with self.lock:
                    self.hook_runs.append({"environment": env.name, "hook": name, "exit": result.returncode,
                                           "stdout": result.stdout, "stderr": result.stderr, "docker": commands})
                if result.returncode != 0:
                    tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
                    raise DeployError(f"Command {name} failed with error exit status {result.returncode}. "
                                      f"Stderr:{tail[0]}")
        finally:
            shutil.rmtree(bin_dir, ignore_errors=True)

    def _container_commands(self, env: Environment, directory: Path, config_dir: Path, environment: dict[str, str],
                            *, leader: bool) -> None:
        """``.ebextensions`` ``container_commands``, as EB runs them: after the bundle is extracted and the prebuild
        hooks ran, before the new version is deployed, in name order, in the staging directory (the bundle). This
        stand-in has one instance, so it is the leader: a ``leader_only`` command runs here, once per deployment,
        and not on a configuration update (EB: "Leader-only container commands are only executed during environment
        creation and deployments"). A non-zero exit (without ``ignoreErrors``) fails the deployment before anything
        stopped, so the old version keeps serving.
        """
        commands = read_container_commands(directory)
        if not commands:
            return
        bin_dir, tool_env, argv_log = self._platform_tools(env, config_dir, environment)
        try:
            for name, spec, source in commands:
                if spec.get("leader_only") and not leader:
                    continue
                command = spec.get("command")
                argv = ["/bin/sh", "-c", command] if isinstance(command, str) else [str(a) for a in command or []]
                started = time.time()
                result = subprocess.run(argv, cwd=spec.get("cwd") or directory, env={**tool_env, **{
                    str(k): str(v) for k, v in (spec.get("env") or {}).items()}}, capture_output=True, text=True,
                    timeout=900, stdin=subprocess.DEVNULL, check=False)
                commands_run = [json.loads(line) for line in argv_log.read_text().splitlines()] \
                    if argv_log.exists() else []
                argv_log.unlink(missing_ok=True)
                with self.lock:
                    self.container_command_runs.append({
                        "environment": env.name, "name": name, "file": source, "leader_only": bool(
                            spec.get("leader_only")), "instance": INSTANCE_ID, "exit": result.returncode,
                        "stdout": result.stdout, "stderr": result.stderr, "docker": commands_run,
                        "started": started, "finished": time.time()})
                if result.returncode != 0 and not spec.get("ignoreErrors"):
                    output = (result.stdout + result.stderr).strip().splitlines()[-5:] or ["(no output)"]
                    raise DeployError(f"[Instance: {INSTANCE_ID}] Command failed on instance. Return code: "
                                      f"{result.returncode} Output: {' | '.join(output)}. container_command {name} "
                                      f"in {source} failed. For more detail, see /var/log/eb-engine.log.")
        finally:
            shutil.rmtree(bin_dir, ignore_errors=True)

    def _platform_tools(self, env: Environment, config_dir: Path,
                        environment: dict[str, str]) -> tuple[Path, dict[str, str], Path]:
        """A PATH directory with the platform's tools as the stand-in doubles them, the environment to run with,
        and the file the docker wrapper logs its argv to."""
        bin_dir = self.workdir / env.id / f"platform-bin-{uuid.uuid4().hex[:6]}"
        bin_dir.mkdir(parents=True)
        properties = bin_dir / "environment.json"
        properties.write_text(json.dumps(environment))
        properties.chmod(0o600)
        shim = bin_dir / "get-config"
        shim.write_text(GET_CONFIG_SHIM.format(python=sys.executable, properties=str(properties)))
        shim.chmod(0o755)
        # docker itself, wrapped so the stand-in can show which command lines a hook ran (a secret must not be one)
        argv_log = bin_dir / "docker-argv.jsonl"
        wrapper = bin_dir / "docker"
        wrapper.write_text(DOCKER_WRAPPER.format(python=sys.executable, log=str(argv_log),
                                                 docker=shutil.which("docker") or "/usr/bin/docker"))
        wrapper.chmod(0o755)
        # the AWS CLI of the instance, doubled for what dockyard's scripts use (`aws s3 cp` from moto)
        aws = bin_dir / "aws"
        aws.write_text(AWS_CLI_SHIM.format(python=sys.executable, endpoint=self.s3_endpoint))
        aws.chmod(0o755)
        tool_env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "DOCKER_CONFIG": str(config_dir),
                    "HOME": str(bin_dir), "LANG": "C.UTF-8"}
        return bin_dir, tool_env, argv_log

    def _aws(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.s3_endpoint, region_name="us-east-1",
                            aws_access_key_id="AKIATESTDOCKYARD0000", aws_secret_access_key="test-secret-key-dockyard")

    def _resolve(self, value: str) -> str:
        """``{{resolve:ssm:NAME}}`` / ``{{resolve:ssm:NAME:VERSION}}`` dynamic references, from (moto) SSM.

        Strict, as AWS is: the ``ssm`` reference resolves String (and StringList) parameters only, and
        ``ssm-secure`` is not resolved in Elastic Beanstalk option settings at all; a SecureString is read through
        the ``environmentsecrets`` namespace (:meth:`_fetch_secret`) or not at all. So a reference to a
        SecureString fails the deployment here, as its value never reaches an instance on AWS.
        """
        import re

        match = re.fullmatch(r"\{\{resolve:(ssm|ssm-secure):([^:}]+)(?::(\d+))?\}\}", value)
        if not match:
            return value
        if match.group(1) == "ssm-secure":
            raise DeployError(f"Cannot resolve {value}: ssm-secure references are not supported in option settings; "
                              "use aws:elasticbeanstalk:application:environmentsecrets")
        name = match.group(2) + (f":{match.group(3)}" if match.group(3) else "")
        try:
            found = self._aws("ssm").get_parameter(Name=name)["Parameter"]
        except Exception as exc:  # noqa: BLE001
            raise DeployError(f"Cannot resolve {value}: {exc}") from None
        if found.get("Type") == "SecureString":
            raise DeployError(f"Cannot resolve {value}: parameter {match.group(2)} is a SecureString, which "
                              "{{resolve:ssm:}} does not resolve; use aws:elasticbeanstalk:application:"
                              "environmentsecrets")
        return found["Value"]

    def _fetch_secret(self, name: str, arn: str) -> str:
        """An ``environmentsecrets`` option's value: the ARN of an SSM parameter (SecureString decrypted) or of a
        Secrets Manager secret (its current version), read as the instance profile would."""
        import re

        ssm = re.fullmatch(r"arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter(/.+)", arn)
        try:
            if ssm:
                return self._aws("ssm").get_parameter(Name=ssm.group(1), WithDecryption=True)["Parameter"]["Value"]
            if re.fullmatch(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+", arn):
                return self._aws("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        except Exception as exc:  # noqa: BLE001
            raise DeployError(f"Failed to fetch the environment secret {name} from {arn}: {exc}") from None
        raise DeployError(f"Environment secret {name}: {arn!r} is not the ARN of an SSM parameter or a Secrets "
                          "Manager secret")

    def _docker_config(self, env: Environment, auth: dict | None) -> Path:
        """A private DOCKER_CONFIG: only the bundle's dockercfg, never the host's logins."""
        config_dir = self.workdir / env.id / f"docker-config-{uuid.uuid4().hex[:6]}"
        config_dir.mkdir(parents=True)
        auths: dict[str, Any] = {}
        if auth:
            try:
                text = self.s3().get_object(Bucket=auth["bucket"], Key=auth["key"])["Body"].read().decode()
                data = json.loads(text)
            except Exception as exc:  # noqa: BLE001
                raise DeployError(f"Failed to download authentication credentials {auth.get('key')} from "
                                  f"{auth.get('bucket')}: {exc}") from None
            # Only the `auths` format `docker login` writes, as the AL2/AL2023 platforms read it (EB docs: "Docker
            # configuration on Amazon Linux AMI (preceding Amazon Linux 2)"; the legacy `.dockercfg` format was the
            # retired Amazon Linux AMI's). Stricter than before, like AWS: a legacy file gives no credentials, so the
            # pull is refused by the registry, as it would be on the platform.
            auths = data.get("auths") if isinstance(data, dict) and isinstance(data.get("auths"), dict) else {}
        (config_dir / "config.json").write_text(json.dumps({"auths": auths}))
        # CLI plugins (compose) are looked up in the config directory: share the user's, never their logins.
        home = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
        if (home / "cli-plugins").is_dir():
            (config_dir / "cli-plugins").symlink_to(home / "cli-plugins")
        return config_dir

    def _pull(self, image: str, config_dir: Path, say) -> None:
        first = image.split("/", 1)[0]
        has_host = "/" in image and ("." in first or ":" in first or first == "localhost")
        local = subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0
        if not has_host and local:
            return  # Docker Hub names: the instance's image cache (no public registry here)
        if not local:
            with self.lock:
                self.pulled.add(image)  # removed when the stand-in stops
        result = subprocess.run(["docker", "--config", str(config_dir), "pull", "--quiet", image],
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DeployError(f"Failed to pull Docker image {image}: {detail[0]}. Retry the deployment.")

    def _stop(self, env: Environment) -> None:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}={env.prefix}"], capture_output=True,
                             text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        compose_ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project="
                                      f"{env.prefix}"], capture_output=True, text=True).stdout.split()
        if compose_ids:
            subprocess.run(["docker", "rm", "-f", *compose_ids], capture_output=True)

    def _run_v1(self, env: Environment, doc: dict, config_dir: Path, environment: dict, say) -> None:
        image = (doc.get("Image") or {}).get("Name")
        if not image:
            raise DeployError("Dockerrun.aws.json version 1 has no Image.Name.")
        self._pull(image, config_dir, say)
        ports = doc.get("Ports") or []
        container_port = int(ports[0]["ContainerPort"]) if ports else 80
        argv = ["docker", "run", "-d", "--name", f"{env.prefix}-app", "--label", f"{LABEL}={env.prefix}",
                "-p", f"127.0.0.1:{env.port}:{container_port}"]
        for key, value in sorted(environment.items()):
            argv += ["-e", f"{key}={value}"]
        self._docker(argv + [image], "start the application container")

    def _run_v2(self, env: Environment, doc: dict, directory: Path, config_dir: Path, environment: dict, say) -> None:
        network = f"{env.prefix}-net"
        subprocess.run(["docker", "network", "create", "--label", f"{LABEL}={env.prefix}", network],
                       capture_output=True)
        volumes: dict[str, list[str]] = {}
        for volume in doc.get("volumes") or []:
            source = (volume.get("host") or {}).get("sourcePath")
            if source:
                if not source.startswith("/var/app/current"):
                    raise DeployError(f"volume {volume['name']}: sourcePath {source} is outside the bundle "
                                      "(/var/app/current)")
                local = directory / source[len("/var/app/current"):].lstrip("/")
                if not local.exists():
                    raise DeployError(f"volume {volume['name']}: {source} is not in the source bundle")
                volumes[volume["name"]] = [str(local)]
            else:
                name = f"{env.prefix}-{volume['name']}"
                subprocess.run(["docker", "volume", "create", "--label", f"{LABEL}={env.prefix}", name],
                               capture_output=True)
                volumes[volume["name"]] = [name]
        containers = doc.get("containerDefinitions") or []
        if not containers:
            raise DeployError("Dockerrun.aws.json version 2 has no containerDefinitions.")
        for container in containers:
            self._pull(container["image"], config_dir, say)
        published = False
        for container in order_containers(containers):
            name = container["name"]
            argv = ["docker", "run", "-d", "--name", f"{env.prefix}-{name}", "--label", f"{LABEL}={env.prefix}",
                    "--network", network, "--network-alias", name]
            memory = container.get("memory") or container.get("memoryReservation")
            if not memory:
                raise DeployError(f"container {name}: memory or memoryReservation is required")
            argv += ["--memory", f"{int(container.get('memory') or 0) or int(memory) * 2}m"]
            for mapping in container.get("portMappings") or []:
                if int(mapping.get("hostPort") or 0) == 80:
                    argv += ["-p", f"127.0.0.1:{env.port}:{int(mapping['containerPort'])}"]
                    published = True
            for link in container.get("links") or []:
                target, _, alias = link.partition(":")
                if target not in {c["name"] for c in containers}:
                    raise DeployError(f"container {name}: link to unknown container {target}")
            merged = {**environment, **{e["name"]: e["value"] for e in container.get("environment") or []}}
            for key, value in sorted(merged.items()):
                argv += ["-e", f"{key}={value}"]
            for mount in container.get("mountPoints") or []:
                if mount["sourceVolume"] not in volumes:
                    raise DeployError(f"container {name}: mount point uses undefined volume {mount['sourceVolume']}")
                source = volumes[mount["sourceVolume"]][0]
                argv += ["-v", f"{source}:{mount['containerPath']}" + (":ro" if mount.get("readOnly") else "")]
            entry = container.get("entryPoint") or []
            if entry:
                argv += ["--entrypoint", entry[0]]
            if container.get("workingDirectory"):
                argv += ["--workdir", container["workingDirectory"]]
            if container.get("user"):
                argv += ["--user", container["user"]]
            argv += health_check_options(container.get("healthCheck"))
            argv.append(container["image"])
            argv += list(entry[1:]) + list(container.get("command") or [])
            for dependency in container.get("dependsOn") or []:
                self._await_dependency(env, name, dependency, say)
            self._docker(argv, f"start container {name}")
        if not published:
            say("WARN", "No container maps host port 80; the environment serves nothing.")

    def _run_compose(self, env: Environment, directory: Path, config_dir: Path, environment: dict, say) -> None:
        model = yaml.safe_load((directory / "docker-compose.yml").read_text()) or {}
        for name, service in (model.get("services") or {}).items():
            if service.get("build"):
                raise DeployError(f"service {name}: building images on the instance is not supported here")
            self._pull(service["image"], config_dir, say)
            ports = []
            for spec in service.get("ports") or []:
                text = str(spec)
                host, _, target = text.rpartition(":")
                if host.split(":")[-1] == "80":
                    ports.append(f"127.0.0.1:{env.port}:{target}")
                else:
                    ports.append(text)
            if ports:
                service["ports"] = ports
        (directory / "docker-compose.yml").write_text(yaml.safe_dump(model))
        (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in sorted(environment.items())))
        result = subprocess.run(["docker", "--config", str(config_dir), "compose", "--project-name", env.prefix,
                                 "--file", str(directory / "docker-compose.yml"), "up", "--detach", "--no-build"],
                                capture_output=True, text=True, cwd=directory, timeout=600)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
            raise DeployError(f"docker compose up failed: {tail[0]}")

    def _await_dependency(self, env: Environment, name: str, dependency: dict, say) -> None:
        """Like the ECS agent: a container starts only once its dependsOn conditions hold (HEALTHY: the
        dependency's health check passed; COMPLETE/SUCCESS: it exited, with 0 for SUCCESS; START: it started)."""
        condition = dependency.get("condition", "START")
        other = f"{env.prefix}-{dependency['containerName']}"
        deadline = time.monotonic() + self.start_grace
        while True:
            fmt = "{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}"
            state = subprocess.run(["docker", "inspect", "--format", fmt, other], check=False, capture_output=True,
                                   text=True).stdout.split()
            status, code, health = (state + ["", "", ""])[:3]
            if condition == "START" and status:
                return
            if condition == "HEALTHY" and health == "healthy":
                return
            if condition in ("COMPLETE", "SUCCESS") and status == "exited":
                if condition == "SUCCESS" and code != "0":
                    raise DeployError(f"container {name}: dependency {dependency['containerName']} exited with "
                                      f"code {code}")
                return
            if condition == "HEALTHY" and status == "exited":
                raise DeployError(f"container {name}: dependency {dependency['containerName']} exited before it "
                                  "was healthy")
            if time.monotonic() > deadline:
                raise DeployError(f"container {name}: dependency {dependency['containerName']} was not {condition} "
                                  f"within {self.start_grace:g}s")
            time.sleep(0.3)

    def _docker(self, argv: list[str], what: str) -> None:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise DeployError(f"Failed to {what}: {result.stderr.strip()[-300:]}")

    def _running(self, env: Environment) -> bool:
        ids = self._container_ids(env)
        return bool(ids)

    def _container_ids(self, env: Environment) -> list[str]:
        out = []
        for label in (f"{LABEL}={env.prefix}", f"com.docker.compose.project={env.prefix}"):
            out += subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True,
                                  text=True).stdout.split()
        return out

    def _await_start(self, env: Environment, say) -> None:
        """Containers running and the load balancer port answering HTTP (any status), like instances registering."""
        deadline = time.monotonic() + self.start_grace
        url = env.health_url()
        while True:
            for cid in self._container_ids(env):
                state = subprocess.run(["docker", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} "
                                        "{{.Name}}", cid], capture_output=True, text=True).stdout.split()
                if state and state[0] in ("exited", "dead"):
                    logs = subprocess.run(["docker", "logs", "--tail", "3", cid], capture_output=True, text=True)
                    tail = (logs.stderr or logs.stdout).strip().splitlines()[-1:] or [""]
                    raise DeployError(f"Container {state[-1].lstrip('/')} exited with code {state[1]}: {tail[0]}")
            try:
                urllib.request.urlopen(url, timeout=2)
                return
            except urllib.error.HTTPError:
                return  # it answers: health is the monitor's business
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise DeployError(f"The application did not answer on port 80 within {self.start_grace:g}s.")
            time.sleep(0.3)

    # --- health ---------------------------------------------------------------------------------------------------
    def _monitor(self) -> None:
        while not self.stopping.wait(self.health_interval):
            with self.lock:
                ready = [e for e in self.environments.values() if e.status == "Ready" and e.version_label]
            for env in ready:
                self._check(env)

    def _check(self, env: Environment) -> None:
        try:
            with urllib.request.urlopen(env.health_url(), timeout=2) as response:
                ok = 200 <= response.status < 400
        except (urllib.error.HTTPError, OSError):
            ok = False
        with self.lock:
            if env.status != "Ready":
                return
            before = env.health_status
            if ok:
                env.failures = 0
                env.health, env.health_status = "Green", "Ok"
                if before != "Ok":
                    env.green_at = time.monotonic()
            else:
                env.failures += 1
                if env.failures >= 3:
                    env.health, env.health_status = "Red", "Severe"
                else:
                    env.health, env.health_status = "Yellow", "Warning"
            after = env.health_status
        if before != after and before not in ("Pending", "Info", "NoData") or (before in ("Pending", "Info") and
                                                                              after in ("Severe",)):
            severity = "INFO" if after == "Ok" else "WARN"
            self.event(env, severity, f"Environment health has transitioned from {before} to {after}."
                       + ("" if ok else f" Health check of {env.health_url()} failed."))

    # --- test-only ------------------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"calls": [(t, a) for t, a, _ in self.calls],
                    "environments": {n: {**e.describe(), "green_at": e.green_at, "ready_at": e.ready_at,
                                         "options": {f"{k[0]}:{k[1]}": v for k, v in e.options.items()}}
                                     for n, e in self.environments.items()}}

    def reset(self) -> None:
        for env in list(self.environments.values()):
            self._stop(env)
            for kind in ("network", "volume"):
                ids = subprocess.run(["docker", kind, "ls", "-q", "--filter", f"label={LABEL}={env.prefix}"],
                                     capture_output=True, text=True).stdout.split()
                if ids:
                    subprocess.run(["docker", kind, "rm", "-f" if kind == "volume" else "", *ids] if kind == "volume"
                                   else ["docker", kind, "rm", *ids], capture_output=True)
            volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                                      f"label=com.docker.compose.project={env.prefix}"], capture_output=True,
                                     text=True).stdout.split()
            networks = subprocess.run(["docker", "network", "ls", "-q", "--filter",
                                       f"label=com.docker.compose.project={env.prefix}"], capture_output=True,
                                      text=True).stdout.split()
            if volumes:
                subprocess.run(["docker", "volume", "rm", "-f", *volumes], capture_output=True)
            if networks:
                subprocess.run(["docker", "network", "rm", *networks], capture_output=True)
        with self.lock:
            self.applications.clear()
            self.versions.clear()
            self.environments.clear()
            self.events.clear()
            self.calls.clear()
            self.hook_runs.clear()
            self.container_command_runs.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True, exist_ok=True)

    def wait_idle(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while any(w.is_alive() for w in self.workers) and time.monotonic() < deadline:
            time.sleep(0.1)


class DeployError(Exception):
    pass


# The platform's get-config, doubled: `get-config environment` prints the environment properties as JSON,
# `get-config environment -k NAME` prints one value (dynamic references already resolved, as on an instance).
GET_CONFIG_SHIM = """#!{python}
import json, sys
args = sys.argv[1:]
if not args or args[0] != "environment":
    sys.exit("get-config (stand-in): only the environment category is doubled")
with open({properties!r}) as handle:
    values = json.load(handle)
if "-k" in args:
    key = args[args.index("-k") + 1]
    if key not in values:
        sys.exit(f"get-config: no environment property {{key}}")
    sys.stdout.write(values[key])
else:
    json.dump(values, sys.stdout)
"""
AWS_CLI_SHIM = """#!{python}
import sys
import boto3
args = [a for a in sys.argv[1:] if a != "--quiet"]
if args[:2] != ["s3", "cp"] or len(args) != 4 or not args[2].startswith("s3://"):
    sys.exit("aws (stand-in): only `aws s3 cp s3://BUCKET/KEY FILE` is doubled")
bucket, _, key = args[2][5:].partition("/")
s3 = boto3.client("s3", endpoint_url={endpoint!r}, region_name="us-east-1", aws_access_key_id="AKIATESTDOCKYARD0000",
                  aws_secret_access_key="test-secret-key-dockyard")
try:
    s3.download_file(bucket, key, args[3])
except Exception as exc:
    sys.exit(f"download failed: {{exc}}")
"""
DOCKER_WRAPPER = """#!{python}
import json, os, sys
with open({log!r}, "a") as handle:
    handle.write(json.dumps(sys.argv[1:]) + "\\n")
os.execv({docker!r}, [{docker!r}, *sys.argv[1:]])
"""


def health_check_options(check: dict | None) -> list[str]:
    """``docker run`` options for a container definition's ``healthCheck`` (seconds, as ECS gives them)."""
    if not check or not check.get("command"):
        return []
    kind, *rest = check["command"]
    if kind == "NONE":
        return ["--no-healthcheck"]
    command = rest[0] if kind == "CMD-SHELL" else shlex.join(rest)
    out = ["--health-cmd", command]
    for key, flag in (("interval", "--health-interval"), ("timeout", "--health-timeout"),
                      ("startPeriod", "--health-start-period")):
        if check.get(key) is not None:
            out += [flag, f"{check[key]}s"]
    if check.get("retries") is not None:
        out += ["--health-retries", str(check["retries"])]
    return out


def order_containers(containers: list[dict]) -> list[dict]:
    """Containers a link or dependsOn names start first."""
    by_name = {c["name"]: c for c in containers}
    done: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        if name in done or name in path:
            return
        container = by_name.get(name)
        if container is None:
            return
        for link in container.get("links") or []:
            visit(link.split(":")[0], path + (name,))
        for dep in container.get("dependsOn") or []:
            visit(dep["containerName"], path + (name,))
        done.append(name)

    for container in containers:
        visit(container["name"])
    return [by_name[n] for n in done]


def read_container_commands(directory: Path) -> list[tuple[str, dict[str, Any], str]]:
    """``container_commands`` of ``.ebextensions/*.config``: (name, its keys, the file), files in name order and the
    commands of each in name order, as EB processes them."""
    found: list[tuple[str, dict[str, Any], str]] = []
    folder = directory / ".ebextensions"
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.config")):
        data = yaml.safe_load(path.read_text()) or {}  # read_ebextensions already refused invalid files
        for name, spec in sorted((data.get("container_commands") or {}).items()):
            found.append((str(name), dict(spec or {}), f".ebextensions/{path.name}"))
    return found


def read_ebextensions(directory: Path) -> dict[tuple[str, str], str]:
    """option_settings from ``.ebextensions/*.config`` (YAML or JSON), in file-name order."""
    options: dict[tuple[str, str], str] = {}
    folder = directory / ".ebextensions"
    if not folder.is_dir():
        return options
    for path in sorted(folder.glob("*.config")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise DeployError(f"The configuration file .ebextensions/{path.name} in application version is invalid "
                              f"YAML or JSON: {exc}") from None
        settings = data.get("option_settings") or {}
        if isinstance(settings, dict):
            for namespace, values in settings.items():
                for name, value in (values or {}).items():
                    options[(namespace, str(name))] = str(value)
        else:
            for item in settings:
                options[(item.get("namespace", ENV_NS), item["option_name"])] = str(item.get("value", ""))
    return options


# --- HTTP ----------------------------------------------------------------------------------------------------------


def make_handler(standin: StandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            return

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/_standin/state"):
                self._send(200, json.dumps(standin.snapshot(), default=str).encode(), "application/json")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
            action = form.pop("Action", "")
            form.pop("Version", None)
            request_id = str(uuid.uuid4())
            params = decode_params(form)
            params["_RequestId"] = request_id
            try:
                result = standin.handle(action, params)
            except ApiError as exc:
                body = (f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{exc.code}</Code>'
                        f"<Message>{escape(exc.message)}</Message></Error><RequestId>{request_id}</RequestId>"
                        "</ErrorResponse>")
                self._send(exc.status, body.encode(), "text/xml")
                return
            except KeyError as exc:
                body = (f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>MissingParameter</Code>'
                        f"<Message>The request must contain the parameter {exc.args[0]}</Message></Error>"
                        f"<RequestId>{request_id}</RequestId></ErrorResponse>")
                self._send(400, body.encode(), "text/xml")
                return
            body = (f'<{action}Response xmlns="{NS}"><{action}Result>{xml_value(result)}</{action}Result>'
                    f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>")
            self._send(200, body.encode(), "text/xml")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(body)

    return Handler


class Server:
    """The stand-in on a loopback port, served from a thread."""

    def __init__(self, s3_endpoint: str, **kwargs: Any) -> None:
        self.standin = StandIn(s3_endpoint, **kwargs)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.standin))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "Server":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.standin.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.standin.wait_idle(30)
        self.standin.reset()
        if self.standin.pulled:
            subprocess.run(["docker", "image", "rm", *sorted(self.standin.pulled)], capture_output=True)
        shutil.rmtree(self.standin.workdir, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - manual use: python tests/eb_standin/server.py S3_ENDPOINT
    import sys

    server = Server(sys.argv[1]).start()
    print(server.endpoint, flush=True)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        server.stop()
