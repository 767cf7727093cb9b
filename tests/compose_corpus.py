"""The corpus of real compose files (tests/data/compose, see SOURCES.md) run through the conversion.

Each file is copied into a throwaway project and given what it needs to run anywhere, and each of those
adjustments is recorded: a pinned image for services that build theirs (a deploy runs released images), the files
and directories it bind-mounts (only the compose files were copied), the variables its own ``.env`` would set, a
decision for each named volume (``shared``). Used by tests/test_compose_corpus.py and
benchmarks/compose_conversion.py.
"""
from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "data" / "compose"
#: What the projects' own .env files (not copied) set and the file cannot do without.
VARIABLES = {"awesome-compose/plex/compose.yaml": {"PLEX_MEDIA_PATH": "/srv/media"}}


@dataclass
class Outcome:
    file: str  # path under tests/data/compose
    converted: bool
    refused_key: str = ""
    message: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    changes: tuple[str, ...] = ()
    adjustments: tuple[str, ...] = ()


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def prepare(source: Path, workdir: Path, name: str) -> tuple[Path, Path, dict[str, str], dict[str, str],
                                                             dict[str, str], list[str]]:
    """Copy ``source`` into a project under ``workdir`` as ``name`` (its path in the corpus): (project root, compose
    file, images, variables, volume decisions, adjustments)."""
    from dockyard.compose_model import read_raw, take_env_files

    relative = Path(name)
    root = workdir / "project"
    compose = root / relative
    compose.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, compose)
    adjustments: list[str] = []
    variables = dict(VARIABLES.get(relative.as_posix(), {}))
    if variables:
        adjustments.append(f"variables {', '.join(sorted(variables))}")
    try:
        raw, _ = take_env_files(read_raw(compose))
    except Exception:  # noqa: BLE001 - the conversion itself reports an unreadable file
        return root, compose, {}, variables, {}, adjustments
    images: dict[str, str] = {}
    for service_name, service in (raw.get("services") or {}).items():
        service = service or {}
        if "build" in service:
            images[str(service_name)] = f"corpus/{service_name}:1.0.0"
            adjustments.append(f"{service_name}: pinned image")
        for volume in service.get("volumes") or []:
            bind = volume.get("source") if isinstance(volume, dict) and volume.get("type") == "bind" else \
                str(volume).split(":")[0] if isinstance(volume, str) and ":" in volume else ""
            if not bind or not bind.startswith("."):
                continue
            path = (compose.parent / bind).resolve()
            if path.exists() or root.resolve() not in path.parents:
                continue
            if "." in path.name.lstrip("."):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("")
            else:
                path.mkdir(parents=True)
                (path / "placeholder").write_text("")
            adjustments.append(f"{service_name}: created {bind}")
    decisions = {str(v): "shared" for v in (raw.get("volumes") or {})}
    return root, compose, images, variables, decisions, adjustments


def convert(source: Path, workdir: Path, *, use_compose: bool = True, name: str = "") -> Outcome:
    """Convert one corpus file (``name``: its path in the corpus, default ``source``'s); a refusal (DockyardError)
    is an outcome, anything else propagates."""
    from dockyard.containers import UnsupportedComposeKey, container_definitions, read_compose_file
    from dockyard.ecs.planner import render_task_definition
    from dockyard.errors import DockyardError

    name = name or source.relative_to(CORPUS).as_posix()
    root, compose, images, variables, decisions, adjustments = prepare(source, workdir, name)
    try:
        model = read_compose_file(compose, variables, use_compose=use_compose)
        definitions = container_definitions(model, images=images, project_root=root, compose_dir=compose.parent,
                                            named_volumes=decisions, volumes_setting="dockyard.ecs.volumes")
    except UnsupportedComposeKey as exc:
        return Outcome(name, False, exc.key.split(".")[0], exc.message, adjustments=tuple(adjustments))
    except DockyardError as exc:
        return Outcome(name, False, "(file)", exc.message, adjustments=tuple(adjustments))
    payload = render_task_definition("corpus", definitions)
    return Outcome(name, True, payload=payload, changes=tuple(str(c) for c in definitions.changes),
                   adjustments=tuple(adjustments))


def run(workdir: Path, *, use_compose: bool = True) -> list[Outcome]:
    outcomes = []
    for n, source in enumerate(corpus_files()):
        outcomes.append(convert(source, workdir / str(n), use_compose=use_compose))
    return outcomes


def figures(outcomes: list[Outcome]) -> dict[str, Any]:
    changes = Counter(c.split(": ")[1] for o in outcomes for c in o.changes)
    return {
        "files": len(outcomes),
        "converted": sum(o.converted for o in outcomes),
        "refused": dict(sorted(Counter(o.refused_key for o in outcomes if not o.converted).items())),
        "adjusted files": sum(bool(o.adjustments) for o in outcomes),
        "adjustments": dict(sorted(Counter(a.split(": ")[-1].split(" ")[0] for o in outcomes
                                           for a in o.adjustments).items())),
        "converted with changes of meaning": sum(bool(o.changes) for o in outcomes if o.converted),
        "changes of meaning by key": dict(sorted(changes.items())),
    }


def convert_following_advice(source: Path, workdir: Path, *, use_compose: bool = True,
                             rounds: int = 10) -> tuple[Outcome, list[str]]:
    """Convert, and on each refusal do what it says (remove the key from the service) and convert again, as a user
    would: (final outcome, the keys removed as "service.key")."""
    import json

    from dockyard.compose_model import read_raw

    outcome = convert(source, workdir / "0", use_compose=use_compose)
    removed: list[str] = []
    raw = read_raw(source)
    for n in range(1, rounds):
        if outcome.converted or outcome.refused_key == "(file)":
            break
        service = outcome.message.split("'")[1]
        raw["services"][service].pop(outcome.refused_key, None)
        removed.append(f"{service}.{outcome.refused_key}")
        edited = workdir / f"edited-{n}.json"
        edited.write_text(json.dumps(raw))  # JSON is YAML; Compose reads it as the same file
        outcome = convert(edited, workdir / str(n), use_compose=use_compose, name=outcome.file)
    return outcome, removed
