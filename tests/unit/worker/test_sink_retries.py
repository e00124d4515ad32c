"""The shared bulk logic (`sidecar.sinks.base`): outcomes, item retries, request retries, budgets.

The engine answers are scripted through `BulkSink._stream` (our own extension point); the real
engines are exercised by the integration tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from sidecar.pipelines.checks import cross_check
from sidecar.pipelines.schema import BackoffConfig, Operation
from sidecar.sinks.base import BulkItem, BulkResult, BulkSink, offset_version
from sidecar.sinks.setup import field_types, template_body
from sidecar.sinks.target import TargetWriter
from tests.unit.worker.fakes import Plan, ScriptedSink, Unreachable, pipeline


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


# --- external versioning -----------------------------------------------------------------------------


def test_versioned_items_carry_an_external_version_growing_with_the_offset() -> None:
    action = BulkItem("a", "i", {"f": 1}, version=offset_version(41)).action()
    assert action["version_type"] == "external" and action["version"] == offset_version(41)
    # Room for internal updates (backfill, hook) between two messages of one key, and above the
    # version 1 of a document created without versioning.
    assert offset_version(0) > 1 and offset_version(42) - offset_version(41) > 1000


async def test_version_conflicts_of_versioned_items_mean_a_newer_version_is_stored() -> None:
    conflict = {
        "status": 409,
        "error": {"type": "version_conflict_engine_exception", "reason": "current version [9] is higher"},
    }
    versioned = [BulkItem("a", "i", {}, version=offset_version(3)), BulkItem("b", "i", {})]
    sink = ScriptedSink([[conflict, conflict]])
    result = await sink.write(versioned)
    assert result.outcomes[0] is None  # acknowledged: nothing was overwritten, nothing to dead-letter
    assert (
        result.outcomes[1] is not None
        and result.outcomes[1].error_type == "version_conflict_engine_exception"
    )
    assert len(sink.sent) == 1


def test_external_versioning_applies_where_offsets_order_one_document() -> None:
    assert pipeline().external_versioning  # ids from the key, `index`, one topic: the default applies
    assert not pipeline(sink__versioning="none").external_versioning
    assert not pipeline(sink__operation="update").external_versioning
    assert not pipeline(sink__operation="create").external_versioning
    assert not pipeline(source__kafka__document_id={"from": "coordinates"}).external_versioning
    assert not pipeline(source__kafka__topics=["a", "b"]).external_versioning  # unrelated offsets
    assert pipeline(source__kafka__topics=["a", "b"], sink__versioning="external").external_versioning


def test_explicit_external_versioning_where_it_cannot_apply_is_a_configuration_error() -> None:
    problems = cross_check(pipeline(sink__versioning="external", sink__operation="update"))
    assert [loc for loc, _ in problems] == [("sink", "versioning")]
    assert cross_check(pipeline(sink__versioning="external")) == []


# --- the target index --------------------------------------------------------------------------------

RANK = {"ml.tokens": "rank_features", "ml.tokens_hash": "keyword"}


def field_answer(index: str, types: dict[str, str]) -> dict[str, Any]:
    """The engines' get-field-mapping answer: one entry per mapped field, keyed by its full path."""
    return {
        index: {
            "mappings": {
                path: {"full_name": path, "mapping": {path.rsplit(".", 1)[-1]: {"type": kind}}}
                for path, kind in types.items()
            }
        }
    }


class MappedSink(ScriptedSink):
    """A scripted sink whose engine reports `answers` (one per check) and records setup calls."""

    def __init__(self, plans: list[Plan], answers: list[dict[str, Any] | None]) -> None:
        super().__init__(plans)
        self.answers = answers
        self.setup: list[str] = []

    async def _field_mapping(self, index: str, paths: list[str]) -> dict[str, Any] | None:
        return self.answers.pop(0)

    async def index_exists(self, index: str) -> bool:
        return False

    async def create_index(self, index: str, body: dict[str, Any]) -> None:
        self.setup.append(f"create {index}")

    async def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self.setup.append(f"template {name} {body['index_patterns']}")


async def test_target_problems_name_the_missing_index_or_the_wrong_field() -> None:
    sink = MappedSink(
        [],
        [
            field_answer("docs", RANK),
            None,
            field_answer("docs", {"ml.tokens_hash": "keyword"}),  # ml.tokens became an object of floats
            field_answer("docs", {**RANK, "ml.tokens": "float"}),
            {**field_answer("docs-1", RANK), **field_answer("docs-2", {})},  # an alias over two indices
        ],
    )
    assert await sink.target_problem("docs", RANK) is None
    assert await sink.target_problem("docs", RANK) == "index [docs] does not exist"
    assert await sink.target_problem("docs", RANK) == (
        "field [ml.tokens] of index [docs] is not mapped as a field, expected [rank_features]"
    )
    assert await sink.target_problem("docs", RANK) == (
        "field [ml.tokens] of index [docs] is mapped as [float], expected [rank_features]"
    )
    assert "of index [docs-2] is not mapped" in str(await sink.target_problem("docs", RANK))


def target_writer(sink: BulkSink, index: str = "<docs-{now/d}>") -> tuple[TargetWriter, list[int]]:
    pauses: list[int] = []
    writer = TargetWriter(
        sink,
        pipeline="p",
        configured_index=index,
        template="sidecar-p",
        backoff=BackoffConfig(initial_ms=1, max_ms=2),
        pause=pauses.append,
    )
    writer.prepare({"properties": {"ml": {"properties": {"tokens": {"type": "rank_features"}}}}}, {})
    return writer, pauses


async def test_a_wrongly_mapped_target_pauses_repairs_and_writes_the_batch_again() -> None:
    missing = {"status": 404, "error": {"type": "index_not_found_exception", "reason": "no such index [d]"}}
    wrong = field_answer("d", {"ml.tokens": "float"})
    right = field_answer("d", {"ml.tokens": "rank_features"})
    # 1: the index is gone (not dead-lettered); 2: a bulk recreated it by dynamic mapping, the
    # documents were "indexed" but must not be acknowledged; 3: the target is right again.
    sink = MappedSink([[missing, missing], [201, 201], [201, 200]], [wrong, right])
    writer, pauses = target_writer(sink)
    result = await writer.write(items(2))
    assert result.outcomes == [None, None]
    assert len(sink.sent) == 3 and pauses == [1, -1]  # paused once, until the batch is written
    assert writer.problem is None
    assert sink.setup[0] == "template sidecar-p ['docs-*']" and sink.setup[1] == "create i"


async def test_the_problem_is_reported_until_the_target_is_right() -> None:
    seen: list[str | None] = []

    class Watched(MappedSink):
        async def write(self, batch: Sequence[BulkItem]) -> BulkResult:
            seen.append(writer.problem)
            return await super().write(batch)

    wrong = field_answer("i", {"ml.tokens": "float"})
    sink = Watched([[201]] * 3, [wrong, wrong, field_answer("i", {"ml.tokens": "rank_features"})])
    writer, _ = target_writer(sink, "i")
    await writer.write(items(1))
    problem = "field [ml.tokens] of index [i] is mapped as [float], expected [rank_features]"
    assert seen == [None, problem, problem] and writer.problem is None
    assert "template sidecar-p ['i']" in sink.setup  # a plain index gets a template of its own name


async def test_documents_refused_by_a_right_target_are_still_dead_lettered() -> None:
    refused = {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad [year]"}}
    sink = MappedSink([[refused]], [field_answer("i", {"ml.tokens": "rank_features"})])
    writer, pauses = target_writer(sink, "i")
    result = await writer.write(items(1))
    assert result.outcomes[0] is not None and result.outcomes[0].error_type == "mapper_parsing_exception"
    assert pauses == []


def test_template_patterns_and_field_types() -> None:
    mappings = {
        "properties": {"ml": {"properties": {"tokens": {"type": "rank_features"}}}, "h": {"type": "keyword"}}
    }
    assert field_types(mappings) == {"ml.tokens": "rank_features", "h": "keyword"}
    exact = template_body("docs", mappings, {})
    assert exact["index_patterns"] == ["docs"]
    dated = template_body("<docs-{now/d}>", mappings, {"index": {"knn": True}})
    assert dated["index_patterns"] == ["docs-*"] and dated["template"]["settings"] == {"index": {"knn": True}}
    assert exact["priority"] > dated["priority"]  # `docs-dlq` may sit inside `docs-*`: the exact name wins
