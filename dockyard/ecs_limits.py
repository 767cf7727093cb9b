"""ECS's documented limits and rules on converted container definitions (EC2 launch type, bridge network mode).

:func:`enforce` returns the definitions ECS registers and runs, plus a :class:`ChangeOfMeaning` for every value it
had to move into range; what cannot be made valid without guessing is refused with one line. Sources: the
``ContainerDefinition``, ``HealthCheck``, ``ContainerDependency`` and ``LogConfiguration`` pages of the ECS API
reference.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Iterable

from .compose_model import ChangeOfMeaning, UnsupportedComposeKey

CONTAINER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
#: (minimum, maximum, Docker's default) in seconds/count; ECS refuses values outside.
HEALTH_RANGES = {"interval": (5, 300, 30), "timeout": (2, 60, 5), "retries": (1, 10, 3), "startPeriod": (0, 300, 0)}
LOG_DRIVERS = frozenset({"awslogs", "fluentd", "gelf", "json-file", "journald", "logentries", "splunk", "syslog",
                         "awsfirelens"})
#: Host ports the ECS agent and Docker hold on every container instance.
RESERVED_PORTS = frozenset({22, 2375, 2376, 51678, 51679, 51680})
MIN_MEMORY = 6  # MiB: Docker 20.10 refuses less
ULIMIT_NAMES = frozenset({"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                          "rss", "rtprio", "rttime", "sigpending", "stack"})
#: ECS's dependsOn conditions that wait for a container to exit: ECS refuses them on an essential container.
EXIT_CONDITIONS = ("SUCCESS", "COMPLETE")


def enforce(containers: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[ChangeOfMeaning]]:
    """Valid copies of ``containers`` and what was changed; refuses (UnsupportedComposeKey) what has no valid form."""
    out = [copy.deepcopy(c) for c in containers]
    changes: list[ChangeOfMeaning] = []
    _names(out, changes)
    by_name = {c["name"]: c for c in out}
    for container in out:
        _health(container, changes)
        _memory(container, changes)
        _logging(container, changes)
        _ports(container)
        _ulimits(container)
    _dependencies(out, by_name, changes)
    if out and not any(c.get("essential", True) for c in out):
        raise UnsupportedComposeKey(out[0]["name"], "depends_on", "leaves no essential container (every service is "
                                    "a job others wait for); ECS needs one long-running service")
    return out, changes


def _names(containers: list[dict[str, Any]], changes: list[ChangeOfMeaning]) -> None:
    renamed: dict[str, str] = {}
    taken = {c["name"] for c in containers}
    for container in containers:
        name = container["name"]
        if CONTAINER_NAME.match(name):
            continue
        new = re.sub(r"[^A-Za-z0-9_-]", "-", name)[:255] or "container"
        if new in taken:
            raise UnsupportedComposeKey(name, "services", f"is not a valid ECS container name (letters, digits, '-' "
                                        f"and '_') and {new!r} is taken; rename the service")
        renamed[name] = new
        taken.add(new)
        changes.append(ChangeOfMeaning(name, "name", f"renamed to {new!r}: ECS container names allow only letters, "
                                       "digits, '-' and '_' (links and dependsOn follow)"))
    if not renamed:
        return
    for container in containers:
        container["name"] = renamed.get(container["name"], container["name"])
        if "links" in container:
            container["links"] = [_rename_link(link, renamed) for link in container["links"]]
        for dep in container.get("dependsOn") or []:
            dep["containerName"] = renamed.get(dep["containerName"], dep["containerName"])
        for source in container.get("volumesFrom") or []:
            source["sourceContainer"] = renamed.get(source["sourceContainer"], source["sourceContainer"])


def _rename_link(link: str, renamed: dict[str, str]) -> str:
    target, _, alias = link.partition(":")
    if target not in renamed:
        return link
    return f"{renamed[target]}:{alias}" if alias and CONTAINER_NAME.match(alias) else renamed[target]


def _health(container: dict[str, Any], changes: list[ChangeOfMeaning]) -> None:
    check = container.get("healthCheck")
    if not check:
        return
    for key, (low, high, _default) in HEALTH_RANGES.items():
        if key not in check:
            continue
        value = check[key]
        fixed = min(max(value, low), high)
        if fixed != value:
            unit = "" if key == "retries" else " s"
            check[key] = fixed
            changes.append(ChangeOfMeaning(container["name"], f"healthcheck.{_compose_health_key(key)}",
                                           f"{value}{unit} set to {fixed}{unit} (ECS allows {low}-{high}{unit})"))


def _compose_health_key(key: str) -> str:
    return {"startPeriod": "start_period"}.get(key, key)


def _memory(container: dict[str, Any], changes: list[ChangeOfMeaning]) -> None:
    name = container["name"]
    for key, compose_key in (("memory", "mem_limit"), ("memoryReservation", "mem_reservation")):
        if key in container and container[key] < MIN_MEMORY:
            changes.append(ChangeOfMeaning(name, compose_key, f"{container[key]} MiB raised to {MIN_MEMORY} MiB "
                                           "(the least Docker 20.10 accepts)"))
            container[key] = MIN_MEMORY
    if "memory" not in container and "memoryReservation" not in container:
        raise UnsupportedComposeKey(name, "mem_limit", "is missing: ECS on EC2 needs memory per container; set "
                                    "mem_limit (or the default memory setting)")
    if "memory" in container and "memoryReservation" in container and \
            container["memoryReservation"] >= container["memory"]:
        raise UnsupportedComposeKey(name, "mem_reservation", f"({container['memoryReservation']} MiB) must be less "
                                    f"than mem_limit ({container['memory']} MiB) for ECS; lower it or drop one")


def _logging(container: dict[str, Any], changes: list[ChangeOfMeaning]) -> None:
    config = container.get("logConfiguration")
    if not config:
        return
    driver = config.get("logDriver")
    if driver == "local":
        config["logDriver"] = "json-file"  # the same files and options (max-size, max-file, compress)
        changes.append(ChangeOfMeaning(container["name"], "logging.driver", "local is not an ECS log driver; "
                                       "json-file is used (same options, logs stay on the instance)"))
    elif driver not in LOG_DRIVERS:
        raise UnsupportedComposeKey(container["name"], "logging.driver", f"{driver!r} is not an ECS log driver; use "
                                    f"one of {', '.join(sorted(LOG_DRIVERS))}")


def _ports(container: dict[str, Any]) -> None:
    for mapping in container.get("portMappings") or []:
        host = mapping.get("hostPort")
        if host in RESERVED_PORTS:
            raise UnsupportedComposeKey(container["name"], "ports", f"publishes host port {host}, which ECS reserves "
                                        "on every container instance (22, 2375, 2376, 51678-51680); publish another")
        for key in ("containerPort", "hostPort"):
            if key in mapping and not 0 <= mapping[key] <= 65535:
                raise UnsupportedComposeKey(container["name"], "ports", f"port {mapping[key]} is out of range "
                                            "(0-65535)")


def _ulimits(container: dict[str, Any]) -> None:
    for limit in container.get("ulimits") or []:
        if limit["name"] not in ULIMIT_NAMES:
            raise UnsupportedComposeKey(container["name"], f"ulimits.{limit['name']}", "is not a ulimit ECS knows; "
                                        f"use one of {', '.join(sorted(ULIMIT_NAMES))}")
        if limit["softLimit"] > limit["hardLimit"]:
            raise UnsupportedComposeKey(container["name"], f"ulimits.{limit['name']}", "has a soft limit above the "
                                        "hard limit; lower it")


def _dependencies(containers: list[dict[str, Any]], by_name: dict[str, dict[str, Any]],
                  changes: list[ChangeOfMeaning]) -> None:
    for container in containers:
        for dep in container.get("dependsOn") or []:
            target = by_name.get(dep["containerName"])
            if target is None:
                raise UnsupportedComposeKey(container["name"], f"depends_on.{dep['containerName']}",
                                            "names a service that is not converted; add it or remove the dependency")
            if dep["condition"] == "HEALTHY" and not target.get("healthCheck"):
                raise UnsupportedComposeKey(container["name"], f"depends_on.{dep['containerName']}",
                                            f"waits for {target['name']} to be healthy, which has no healthcheck in "
                                            "the compose file (ECS knows only the task definition's); declare one")
            if dep["condition"] in EXIT_CONDITIONS and target.get("essential", True):
                target["essential"] = False
                changes.append(ChangeOfMeaning(target["name"], "essential", f"false: {container['name']} waits for it "
                                               "to exit, and ECS refuses that on an essential container (the task "
                                               "keeps running when it stops)"))
