"""What ECS accepts, checked independently of dockyard's own conversion (dockyard/ecs_limits.py).

:func:`violations` runs botocore's own ``ParamValidator`` against the ``RegisterTaskDefinition`` input shape, then
the documented rules the shape does not carry (ECS API reference: ContainerDefinition, HealthCheck,
ContainerDependency, LogConfiguration, Volume; EC2 launch type, bridge network mode). An empty list means ECS
registers the payload and can place it.
"""
from __future__ import annotations

import re
from typing import Any

NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
HEALTH = {"interval": (5, 300), "timeout": (2, 60), "retries": (1, 10), "startPeriod": (0, 300)}
DRIVERS = {"awslogs", "fluentd", "gelf", "json-file", "journald", "logentries", "splunk", "syslog", "awsfirelens"}
RESERVED = {22, 2375, 2376, 51678, 51679, 51680}
ULIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio",
           "rttime", "sigpending", "stack"}

_shape = None


def _input_shape() -> Any:
    global _shape
    if _shape is None:
        import botocore.session

        model = botocore.session.get_session().get_service_model("ecs")
        _shape = model.operation_model("RegisterTaskDefinition").input_shape
    return _shape


def violations(payload: dict[str, Any]) -> list[str]:
    """Everything ECS would refuse in a RegisterTaskDefinition ``payload`` (EC2, bridge)."""
    from botocore.validate import ParamValidator

    found: list[str] = []
    report = ParamValidator().validate(payload, _input_shape())
    if report.has_errors():
        found.append(f"botocore: {report.generate_report()}")
    containers = payload.get("containerDefinitions") or []
    names = [c.get("name", "") for c in containers]
    by_name = {c.get("name"): c for c in containers}
    volumes = {v.get("name") for v in payload.get("volumes") or []}
    if len(set(names)) != len(names):
        found.append(f"duplicate container names: {names}")
    if not any(c.get("essential", True) for c in containers):
        found.append("no essential container")
    for volume in payload.get("volumes") or []:
        if not NAME.match(volume.get("name", "")):
            found.append(f"volume name {volume.get('name')!r}")
        docker = volume.get("dockerVolumeConfiguration")
        if docker and docker.get("autoprovision") and docker.get("scope") != "shared":
            found.append(f"volume {volume['name']}: autoprovision needs scope shared")
        efs = volume.get("efsVolumeConfiguration")
        if efs and efs.get("authorizationConfig") and efs.get("transitEncryption") != "ENABLED":
            found.append(f"volume {volume['name']}: an EFS access point needs transit encryption")
    host_ports: dict[tuple[int, str], str] = {}
    for c in containers:
        name = c.get("name", "")
        where = f"container {name!r}"
        if not NAME.match(name):
            found.append(f"{where}: invalid name")
        memory, reservation = c.get("memory"), c.get("memoryReservation")
        if memory is None and reservation is None and not payload.get("memory"):
            found.append(f"{where}: no memory (EC2 needs memory or memoryReservation)")
        for value, label in ((memory, "memory"), (reservation, "memoryReservation")):
            if value is not None and value < 6:
                found.append(f"{where}: {label} {value} MiB < 6")
        if memory is not None and reservation is not None and reservation >= memory:
            found.append(f"{where}: memoryReservation {reservation} >= memory {memory}")
        check = c.get("healthCheck")
        if check is not None:
            if not check.get("command") or check["command"][0] not in ("CMD", "CMD-SHELL"):
                found.append(f"{where}: health check command {check.get('command')}")
            for key, (low, high) in HEALTH.items():
                if key in check and not low <= check[key] <= high:
                    found.append(f"{where}: healthCheck.{key} {check[key]} outside {low}-{high}")
        for dep in c.get("dependsOn") or []:
            target = by_name.get(dep.get("containerName"))
            if target is None:
                found.append(f"{where}: dependsOn unknown container {dep.get('containerName')!r}")
                continue
            if dep.get("condition") in ("SUCCESS", "COMPLETE") and target.get("essential", True):
                found.append(f"{where}: dependsOn {dep['condition']} on essential container {target['name']!r}")
            if dep.get("condition") == "HEALTHY" and not target.get("healthCheck"):
                found.append(f"{where}: dependsOn HEALTHY on {target['name']!r}, which has no health check")
        for link in c.get("links") or []:
            target, _, alias = link.partition(":")
            if target not in by_name or (alias and not NAME.match(alias)):
                found.append(f"{where}: link {link!r}")
        for source in c.get("volumesFrom") or []:
            if source.get("sourceContainer") not in by_name:
                found.append(f"{where}: volumesFrom unknown container {source.get('sourceContainer')!r}")
        for mount in c.get("mountPoints") or []:
            if mount.get("sourceVolume") not in volumes:
                found.append(f"{where}: mount of unknown volume {mount.get('sourceVolume')!r}")
        log = c.get("logConfiguration")
        if log and log.get("logDriver") not in DRIVERS:
            found.append(f"{where}: log driver {log.get('logDriver')!r}")
        for mapping in c.get("portMappings") or []:
            host = mapping.get("hostPort")
            if host in RESERVED:
                found.append(f"{where}: reserved host port {host}")
            if host:
                key = (host, mapping.get("protocol", "tcp"))
                if key in host_ports:
                    found.append(f"{where}: host port {host} also published by {host_ports[key]!r}")
                host_ports[key] = name
        for limit in c.get("ulimits") or []:
            if limit.get("name") not in ULIMITS or limit.get("softLimit", 0) > limit.get("hardLimit", 0):
                found.append(f"{where}: ulimit {limit}")
        for tmpfs in (c.get("linuxParameters") or {}).get("tmpfs") or []:
            if not tmpfs.get("size") or tmpfs["size"] <= 0:
                found.append(f"{where}: tmpfs {tmpfs.get('containerPath')} without a size")
        if c.get("restartPolicy"):
            period = c["restartPolicy"].get("restartAttemptPeriod")
            if period is not None and not 60 <= period <= 1800:
                found.append(f"{where}: restartAttemptPeriod {period}")
            if len(c["restartPolicy"].get("ignoredExitCodes") or []) > 50:
                found.append(f"{where}: more than 50 ignoredExitCodes")
        names_env = [e.get("name") for e in c.get("environment") or []]
        if len(set(names_env)) != len(names_env):
            found.append(f"{where}: duplicate environment names")
    return found
