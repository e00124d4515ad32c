"""One batch through `PipelineRunner` (decode, enrich, bulk, dead letters, acknowledgement), with the
fake inference service and a recording sink; Kafka itself is exercised by the integration tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka import TopicPartition

from sidecar.sources.kafka import Message
from sidecar.worker import runner as runner_module
from sidecar.worker.runner import PipelineRunner, ToleranceExceeded
from tests.unit.worker.fakes import FakeService, RecordingSink, pipeline, sparse_of


def message(offset: int, key: str, value: object | bytes) -> Message:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Message("docs", 0, offset, key.encode(), raw)


async def run_batch(runner: PipelineRunner, messages: list[Message]) -> None:
    runner._start_batch(messages)
    await asyncio.gather(*runner._tasks)


async def run_stopping_batch(runner: PipelineRunner, messages: list[Message]) -> None:
    """A batch whose failure stops the pipeline (kept in `runner.fatal`)."""
    runner._start_batch(messages)
    await asyncio.wait(set(runner._tasks))


async def test_batch_indexes_dead_letters_and_acknowledges_everything(service: FakeService) -> None:
    sink = RecordingSink(answers={"k3": 400})
    config = pipeline(errors={"dead_letter_index": "dlq"}, sink__operation="update")
    runner = PipelineRunner(config, service, service, sink=sink)
    await run_batch(
        runner,
        [
            message(0, "k1", {"title": "first version", "a": {"x": 1}}),
            message(1, "k2", {"title": "other"}),
            message(2, "k1", {"title": "second version", "a": {"y": 2}}),
            message(3, "k4", b"{not json"),
            message(4, "k3", {"title": "mapping conflict"}),
        ],
    )
    indexed = {a["_id"]: a for a in sink.actions if a["_index"] == "docs"}
    assert sorted(indexed) == ["k1", "k2", "k3"]  # one item per id
    # Partial updates of one id are merged in consumption order, as the engine would merge them,
    # except the sparse vector, which is replaced whole (no stale tokens of the first version).
    update = indexed["k1"]["script"]["params"]
    assert update["doc"]["a"] == {"x": 1, "y": 2}
    assert update["doc"]["ml"]["tokens"] == sparse_of("second version")
    assert update["replace"] == ["ml.tokens"]
    assert indexed["k1"]["upsert"] == update["doc"]
    letters = {a["_id"]: a["_source"] for a in sink.actions if a["_index"] == "dlq"}
    assert letters["docs+0+3"]["error"]["type"] == "invalid_json"
    assert letters["docs+0+4"]["error"] == {
        "type": "mapper_parsing_exception",
        "reason": "refused k3",
        "stage": "index",
    }
    assert runner.partitions.trackers[TopicPartition("docs", 0)].committable() == 5
    assert runner._in_flight == 0 and len(runner._order) == 0


async def test_retriable_inference_failures_pause_then_succeed(service: FakeService) -> None:
    service.overloaded_calls = 2
    config = pipeline(errors={"backoff": {"initial_ms": 1, "max_ms": 2}})
    sink = RecordingSink()
    runner = PipelineRunner(config, service, service, sink=sink)
    await run_batch(runner, [message(0, "k1", {"title": "t"})])
    assert [a["_id"] for a in sink.actions] == ["k1"]
    assert runner.partitions.trackers[TopicPartition("docs", 0)].committable() == 1
    assert not runner.partitions.paused


async def test_later_batches_wait_for_earlier_writes_of_the_same_id(service: FakeService) -> None:
    order: list[str] = []

    class SlowFirst(RecordingSink):
        async def write(self, items):  # type: ignore[no-untyped-def]
            if items[0].source["title"] == "old":
                await asyncio.sleep(0.05)
            order.append(items[0].source["title"])
            return await super().write(items)

    runner = PipelineRunner(pipeline(), service, service, sink=SlowFirst())
    runner._start_batch([message(0, "same", {"title": "old"})])
    runner._start_batch([message(1, "same", {"title": "new"})])
    await asyncio.gather(*runner._tasks)
    assert order == ["old", "new"]


async def test_without_a_destination_dead_letters_go_to_the_default_index(service: FakeService) -> None:
    sink = RecordingSink()
    runner = PipelineRunner(pipeline(), service, service, sink=sink)
    await run_batch(runner, [message(0, "k1", {"title": "ok"}), message(1, "k2", b"{not json")])
    letters = {a["_id"]: a["_source"] for a in sink.actions if a["_index"] == "unit-dead-letter"}
    assert letters["docs+0+1"]["error"]["type"] == "invalid_json"
    assert runner.partitions.trackers[TopicPartition("docs", 0)].committable() == 2


async def test_tolerance_none_stops_at_the_first_poison_without_committing(service: FakeService) -> None:
    sink = RecordingSink()
    runner = PipelineRunner(pipeline(errors={"tolerance": "none"}), service, service, sink=sink)
    assert runner.config.dead_letter_index is None
    await run_stopping_batch(runner, [message(0, "k1", {"title": "ok"}), message(1, "k2", b"[1]")])
    assert isinstance(runner.fatal, ToleranceExceeded) and runner.stopping
    assert "docs-0 offset 1 (not_an_object" in str(runner.fatal)
    assert runner.partitions.trackers[TopicPartition("docs", 0)].committable() is None
    assert all(a["_index"] == "docs" for a in sink.actions)  # nothing dead-lettered


async def test_on_malformed_fail_stops_at_a_refused_document(service: FakeService) -> None:
    sink = RecordingSink(answers={"k2": 400})
    runner = PipelineRunner(pipeline(errors={"on_malformed": "fail"}), service, service, sink=sink)
    await run_stopping_batch(
        runner, [message(0, "k1", {"title": "ok"}), message(1, "k2", {"title": "refused"})]
    )
    assert isinstance(runner.fatal, ToleranceExceeded) and "mapper_parsing_exception" in str(runner.fatal)
    assert runner.partitions.trackers[TopicPartition("docs", 0)].committable() is None


async def test_an_unforeseen_failure_of_one_record_dead_letters_only_that_record(
    service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = RecordingSink()
    runner = PipelineRunner(pipeline(errors={"dead_letter_index": "dlq"}), service, service, sink=sink)
    real_decode, real_write = runner_module.decode, sink.write

    def decode(message: Message, config: Any) -> Any:
        if message.key == b"k2":
            raise RecursionError("decoder bug")
        return real_decode(message, config)

    async def write(items: Any) -> Any:
        if any(item.doc_id == "k3" for item in items):
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
        return await real_write(items)

    monkeypatch.setattr(runner_module, "decode", decode)
    monkeypatch.setattr(sink, "write", write)
    messages = [message(n, f"k{n}", {"title": f"doc {n}"}) for n in range(1, 5)]
    await run_batch(runner, messages)
    assert runner.fatal is None
    letters = {a["_id"]: a["_source"]["error"] for a in sink.actions if a["_index"] == "dlq"}
    assert letters["docs+0+2"]["type"] == "decode_failed" and "decoder bug" in letters["docs+0+2"]["reason"]
    assert letters["docs+0+3"]["type"] == "index_failed" and letters["docs+0+3"]["stage"] == "index"
    assert sorted(a["_id"] for a in sink.actions if a["_index"] == "docs") == ["k1", "k4"]
    assert runner.partitions.trackers[TopicPartition("docs", 0)].committable() == 5


async def test_tombstones_delete_or_are_ignored_as_configured(service: FakeService) -> None:
    sink = RecordingSink(answers={"gone": 404})
    runner = PipelineRunner(pipeline(errors={"on_null": "delete"}), service, service, sink=sink)
    tombstone = Message("docs", 0, 2, b"k1", None)
    await run_batch(
        runner,
        [
            message(0, "k1", {"title": "first"}),
            message(1, "k2", {"title": "kept"}),
            tombstone,  # the last word on k1 within the batch: one delete, nothing indexed for k1
            Message("docs", 0, 3, b"gone", None),  # already absent (404): acknowledged
        ],
    )
    actions = {a["_id"]: a for a in sink.actions}
    delete = actions["k1"]
    assert (delete["_op_type"], delete["_index"], delete["_id"]) == ("delete", "docs", "k1")
    assert "_source" not in delete
    assert actions["gone"]["_op_type"] == "delete" and actions["k2"]["_op_type"] == "index"
    assert not any(a["_index"] == "unit-dead-letter" for a in sink.actions)
    assert runner.partitions.trackers[TopicPartition("docs", 0)].committable() == 4

    ignoring = PipelineRunner(pipeline(errors={"on_null": "ignore"}), service, service, sink=RecordingSink())
    await run_batch(ignoring, [tombstone])
    assert ignoring.sink.actions == []  # type: ignore[attr-defined]
    assert ignoring.partitions.trackers[TopicPartition("docs", 0)].committable() == 3
