"""Compose -> ECS conversion on the corpus of real compose files (tests/data/compose, SOURCES.md).

Prints how many files convert as they are, how many are refused and by which key, what the test harness adjusted
(pinned images for `build:` services, bind-mounted files it created, variables), how many conversions carry a change
of meaning and by key, and how many convert after doing what each refusal says. Every converted result is checked
against botocore's RegisterTaskDefinition shape and ECS's documented rules (tests/ecs_rules.py).

    python benchmarks/compose_conversion.py [--fallback]   # --fallback: without running Docker Compose
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from compose_corpus import convert_following_advice, corpus_files, figures, run  # noqa: E402
from ecs_rules import violations  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fallback", action="store_true", help="read the files without Docker Compose")
    args = parser.parse_args()
    use_compose = not args.fallback
    with tempfile.TemporaryDirectory(prefix="compose-bench-") as tmp:
        started = time.monotonic()
        outcomes = run(Path(tmp) / "as-is", use_compose=use_compose)
        elapsed = time.monotonic() - started
        result = figures(outcomes)
        result["invalid for ECS"] = sum(bool(violations(o.payload)) for o in outcomes if o.converted)
        followed = [convert_following_advice(source, Path(tmp) / "advice" / str(n), use_compose=use_compose)
                    for n, source in enumerate(corpus_files())]
        result["converted after following the refusals"] = sum(o.converted for o, _ in followed)
        result["keys removed following the refusals"] = dict(sorted(Counter(
            key.split(".", 1)[1] for _, removed in followed for key in removed).items()))
        result["invalid for ECS after following"] = sum(bool(violations(o.payload)) for o, _ in followed
                                                        if o.converted)
        result["reader"] = "fallback" if args.fallback else "docker compose config"
        result["seconds per file"] = round(elapsed / max(1, len(outcomes)), 3)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
