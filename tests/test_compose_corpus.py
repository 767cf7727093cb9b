"""39 real compose files (tests/data/compose, SOURCES.md) through the conversion: each converts to a task
definition botocore's ParamValidator and ECS's documented rules accept (tests/ecs_rules.py), or is refused in one
line that says what to do, and doing it converts. None crashes. The figures are printed (pytest -s) and pinned, so a
change in coverage shows up here; benchmarks/compose_conversion.py prints the same figures."""
from __future__ import annotations

import json

import compose_corpus
import pytest
from compose_corpus import convert_following_advice, corpus_files, figures, run
from conftest import unavailable
from ecs_rules import violations

from dockyard.clients.compose import compose_resolver
from dockyard.runner import Runner


@pytest.fixture(scope="module")
def compose_v2() -> None:
    if compose_resolver(Runner()) is None:
        unavailable("needs Docker Compose v2")

#: What Compose's own model gives on the corpus (refused: the key named by the refusal; adjusted: see
#: compose_corpus.prepare).
EXPECTED = {
    "files": 39,
    "converted": 14,
    "refused": {"container_name": 9, "networks": 4, "runtime": 2, "secrets": 7, "stop_signal": 3},
    "adjusted files": 30,
    "adjustments": {"created": 24, "pinned": 36, "variables": 1},
}
#: Keys a refusal may name on this corpus: none of them has an ECS meaning.
NO_ECS_MEANING = {"container_name", "networks", "network_mode", "runtime", "secrets", "stop_signal"}


def test_the_corpus_is_at_least_30_files_with_their_sources():
    files = corpus_files()
    sources = (compose_corpus.CORPUS / "SOURCES.md").read_text()
    assert len(files) >= 30
    for path in files:
        assert path.relative_to(compose_corpus.CORPUS).as_posix().split("/", 1)[1] in sources, path


@pytest.mark.usefixtures("compose_v2")
def test_every_file_converts_to_a_valid_task_definition_or_is_refused_in_one_line(tmp_path):
    outcomes = run(tmp_path)
    print(json.dumps(figures(outcomes), indent=2))
    for outcome in outcomes:
        if outcome.converted:
            assert violations(outcome.payload) == [], outcome.file
        else:
            assert "\n" not in outcome.message and outcome.message.startswith("compose service '"), outcome
            assert outcome.refused_key in NO_ECS_MEANING, outcome
    assert {k: v for k, v in figures(outcomes).items() if k in EXPECTED} == EXPECTED


@pytest.mark.usefixtures("compose_v2")
@pytest.mark.parametrize("source", corpus_files(), ids=lambda p: p.parent.name)
def test_doing_what_each_refusal_says_converts_the_file(tmp_path, source):
    outcome, removed = convert_following_advice(source, tmp_path)
    assert outcome.converted, outcome.message
    assert violations(outcome.payload) == []
    assert {key.split(".", 1)[1] for key in removed} <= NO_ECS_MEANING


@pytest.mark.usefixtures("compose_v2")
@pytest.mark.parametrize("source", corpus_files(), ids=lambda p: p.parent.name)
def test_the_fallback_without_docker_gives_the_same_result(tmp_path, source):
    by_compose = convert_following_advice(source, tmp_path / "compose")
    by_fallback = convert_following_advice(source, tmp_path / "fallback", use_compose=False)
    assert by_fallback[1] == by_compose[1]  # refused for the same keys, in the same order
    assert by_fallback[0].payload == by_compose[0].payload
    assert by_fallback[0].changes == by_compose[0].changes


def test_the_fallback_alone_converts_the_corpus(tmp_path):
    """The path a CI step without Docker takes: no Compose is run at all."""
    outcomes = run(tmp_path, use_compose=False)
    assert sum(o.converted for o in outcomes) == EXPECTED["converted"]
    for outcome in outcomes:
        assert violations(outcome.payload) == [] if outcome.converted else "\n" not in outcome.message
