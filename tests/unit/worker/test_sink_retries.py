"""The shared bulk logic (`sidecar.sinks.base`): outcomes, item retries, request retries, budgets.

The engine answers are scripted through `BulkSink._stream` (our own extension point); the real
engines are exercised by the integration tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sidecar.pipelines.schema import Operation
from sidecar.sinks.base import BulkItem, backoff_delay
from tests.unit.worker.fakes import Plan, ScriptedSink, Unreachable


def items(n: int, operation: Operation = Operation.INDEX) -> list[BulkItem]:
    return [BulkItem(f"d{i}", "i", {"n": i}, operation) for i in range(n)]


async def test_item_429s_are_retried_alone_and_successes_kept() -> None:
    sink = ScriptedSink([[201, 429, 201, 503], [429, 200], [201]])
    result = await sink.write(items(4))
    assert result.outcomes == [None] * 4
    assert sink.sent == [["d0", "d1", "d2", "d3"], ["d1", "d3"], ["d1"]]
    assert True in sink.pushbacks and sink.pushbacks[-1] is False


async def test_retry_budget_then_dead_letter() -> None:
    sink = ScriptedSink([[429, 201], [429], [429]], max_retries=2)
    result = await sink.write(items(2))
    assert result.outcomes[1] is None
    failure = result.outcomes[0]
    assert (
        failure is not None
        and failure.error_type == "type_429"
        and "gave up after 2 retries" in failure.reason
    )
    assert sink.sent == [["d0", "d1"], ["d0"], ["d0"]]


async def test_permanent_item_errors_go_to_the_dead_letter_at_once() -> None:
    mapping_error = {
        "status": 400,
        "error": {
            "type": "mapper_parsing_exception",
            "reason": "failed to parse field [year]",
            "caused_by": {"type": "number_format_exception", "reason": 'For input string: "x"'},
        },
    }
    sink = ScriptedSink([[201, mapping_error, 404]])
    result = await sink.write(items(3))
    assert result.outcomes[0] is None
    assert result.outcomes[1] is not None and result.outcomes[1].error_type == "mapper_parsing_exception"
    assert "number_format_exception" in result.outcomes[1].reason
    assert result.outcomes[2] is not None and result.outcomes[2].error_type == "type_404"
    assert len(sink.sent) == 1 and result.indexed == 1


async def test_conflict_on_create_means_already_indexed() -> None:
    sink = ScriptedSink([[409, 201]])
    result = await sink.write(items(2, Operation.CREATE))
    assert result.outcomes == [None, None]


async def test_conflict_on_update_is_retried() -> None:
    sink = ScriptedSink([[409], [200]])
    assert (await sink.write(items(1, Operation.UPDATE))).outcomes == [None]
    assert len(sink.sent) == 2


async def test_request_failures_retry_the_unanswered_items_without_budget() -> None:
    # First request dies after one answer; then the engine is down for longer than max_retries.
    first: Plan = ([201], Unreachable())
    down: list[Plan] = [([], Unreachable()) for _ in range(6)]
    plans: list[Plan] = [first, *down, [201, 201]]
    sink = ScriptedSink(plans, max_retries=1)
    result = await sink.write(items(3))
    assert result.outcomes == [None] * 3
    assert sink.sent[0] == ["d0", "d1", "d2"] and sink.sent[1:] == [["d1", "d2"]] * 7
    assert sink.healthy and sink.pushbacks[-1] is False


async def test_unhealthy_while_requests_fail() -> None:
    sink = ScriptedSink([([], Unreachable()), [201]])
    seen: list[bool] = []
    sink.on_pushback = lambda active: seen.append(sink.healthy)
    await sink.write(items(1))
    assert False in seen and sink.healthy


async def test_request_too_large_for_one_document_is_dead_lettered() -> None:
    sink = ScriptedSink([([], Unreachable(413))])
    result = await sink.write(items(1))
    assert result.outcomes[0] is not None and result.outcomes[0].error_type == "request_entity_too_large"


async def test_unexpected_exceptions_propagate() -> None:
    class Boom(ScriptedSink):
        async def _stream(
            self, actions: list[dict[str, Any]], max_bytes: int
        ) -> AsyncIterator[tuple[bool, dict[str, Any]]]:
            raise RuntimeError("bug")
            yield  # pragma: no cover

    with pytest.raises(RuntimeError, match="bug"):
        await Boom([]).write(items(1))


async def test_fetch_stored_tolerates_an_unreachable_engine() -> None:
    assert await ScriptedSink([]).fetch_stored("i", ["a"], ["ml.tokens"]) == {}


def test_backoff_is_jittered_exponential_and_capped() -> None:
    for attempt in range(1, 12):
        ceiling = min(10.0, 0.1 * 2 ** (attempt - 1))
        delays = {backoff_delay(attempt, 0.1, 10.0) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1


def test_bulk_actions_per_operation() -> None:
    assert BulkItem("a", "i", {"f": 1}).action() == {
        "_op_type": "index",
        "_index": "i",
        "_id": "a",
        "_source": {"f": 1},
    }
    create = BulkItem("a", "i", {"f": 1}, Operation.CREATE, routing="r").action()
    assert create == {"_op_type": "create", "_index": "i", "_id": "a", "routing": "r", "_source": {"f": 1}}
    merge = BulkItem("a", "i", {"f": 1}, Operation.UPDATE).action()
    assert merge["doc"] == {"f": 1} and merge["doc_as_upsert"] is True
    replacing = BulkItem("a", "i", {"ml": {"t": {"x": 1.0}}}, Operation.UPDATE, replace=("ml.t",)).action()
    assert replacing["script"]["params"] == {"doc": {"ml": {"t": {"x": 1.0}}}, "replace": ["ml.t"]}
    assert replacing["upsert"] == {"ml": {"t": {"x": 1.0}}} and "doc" not in replacing
