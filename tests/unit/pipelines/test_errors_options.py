"""`errors`: tolerance, the default dead-letter index, `on_null` and the rules between them."""

from __future__ import annotations

import pytest

from sidecar.pipelines.checks import cross_check
from tests.unit.worker.fakes import pipeline


def test_a_pipeline_without_destination_dead_letters_to_a_default_index() -> None:
    config = pipeline()
    assert config.dead_letter_index == "unit-dead-letter"
    assert config.dead_letter_summary == "dead letters go to index [unit-dead-letter] (the default)"


def test_configured_destinations_replace_the_default() -> None:
    topic_only = pipeline(errors={"dead_letter_topic": "dlq"})
    assert topic_only.dead_letter_index is None
    assert topic_only.dead_letter_summary == "dead letters go to topic [dlq]"
    both = pipeline(errors={"dead_letter_topic": "dlq", "dead_letter_index": "dlq-i"})
    assert both.dead_letter_summary == "dead letters go to topic [dlq] and index [dlq-i]"


def test_tolerance_none_has_no_dead_letter_and_says_it_stops() -> None:
    config = pipeline(errors={"tolerance": "none"})
    assert config.dead_letter_index is None and "stops at the first record" in config.dead_letter_summary
    assert cross_check(config) == []


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        (
            {"errors": {"tolerance": "none", "dead_letter_index": "d"}},
            ("errors", "tolerance"),
            "[tolerance] [all]",
        ),
        (
            {"errors": {"on_null": "delete"}, "source__kafka__document_id": {"from": "field", "field": "id"}},
            ("errors", "on_null"),
            "[from: key]",
        ),
        (
            {"errors": {"on_null": "delete"}, "sink__routing": "tenant"},
            ("errors", "on_null"),
            "[sink.routing]",
        ),
    ],
)
def test_contradictory_error_options_are_reported(
    overrides: dict[str, object], key: tuple[str, str], words: str
) -> None:
    problems = cross_check(pipeline(**overrides))
    assert [loc for loc, _ in problems] == [key] and words in problems[0][1]
