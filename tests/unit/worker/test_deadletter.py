from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError

from sidecar.deadletter import DeadLetter, DeadLetterWriter, fitted, open_dead_letters
from sidecar.errors import DocumentError
from sidecar.pipelines.schema import BackoffConfig
from sidecar.sinks.base import BulkItem, BulkResult
from tests.unit.worker.fakes import pipeline

LETTER = DeadLetter(
    "docs",
    3,
    99,
    b"key-1",
    b"\xff not utf-8",
    "invalid_encoding",
    "value is not UTF-8",
    "decode",
    (("trace", b"t1"), ("sidecar.error.type", b"stale")),
)


def test_kafka_headers_carry_error_and_source_coordinates() -> None:
    headers = dict(LETTER.kafka_headers("p1"))
    assert headers["trace"] == b"t1"
    assert headers["sidecar.error.type"] == b"invalid_encoding"  # the stale header is replaced
    assert headers["sidecar.error.reason"] == b"value is not UTF-8"
    assert headers["sidecar.error.stage"] == b"decode"
    assert headers["sidecar.pipeline"] == b"p1"
    assert (
        headers["sidecar.source.topic"],
        headers["sidecar.source.partition"],
        headers["sidecar.source.offset"],
    ) == (b"docs", b"3", b"99")
    assert [k for k, _ in LETTER.kafka_headers("p1")].count("sidecar.error.type") == 1


def test_index_document_keeps_undecodable_values_as_base64() -> None:
    doc = LETTER.document("p1")
    assert LETTER.coordinates == "docs+3+99"
    assert doc["error"] == {"type": "invalid_encoding", "reason": "value is not UTF-8", "stage": "decode"}
    assert doc["source"] == {"topic": "docs", "partition": 3, "offset": 99, "key": "key-1"}
    assert doc["message"] == {"key": "key-1", "value_base64": "/yBub3QgdXRmLTg="}


class FlakyProducer:
    """Fails its first `failures` sends; counts how often it was replaced (stopped)."""

    def __init__(self, failures: int, sent: list[Any]) -> None:
        self.failures = failures
        self.sent = sent
        self.stopped = False

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker gone")
        self.sent.append((topic, value, key, headers or []))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def stop(self) -> None:
        self.stopped = True


class Producers:
    """A producer factory: the first producer fails `failures` sends, the later ones none."""

    def __init__(self, failures: int = 0, cls: type[FlakyProducer] = FlakyProducer) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        self.opened: list[FlakyProducer] = []
        self.failures = failures
        self.cls = cls

    async def __call__(self) -> FlakyProducer:
        producer = self.cls(self.failures if not self.opened else 0, self.sent)
        self.opened.append(producer)
        return producer


def topic_writer(producers: Producers, **kwargs: Any) -> DeadLetterWriter:
    return DeadLetterWriter(
        "p1",
        topic="dlq",
        index=None,
        sink=None,
        backoff=BackoffConfig(initial_ms=1, max_ms=2),
        open_producer=producers,
        **kwargs,
    )


async def test_topic_writes_are_retried_on_a_fresh_producer_and_pause_meanwhile() -> None:
    producers = Producers(failures=2)
    pauses: list[bool] = []
    writer = topic_writer(producers, on_retry=pauses.append)
    await writer.write([LETTER])
    assert [(t, v, k) for t, v, k, _ in producers.sent] == [("dlq", LETTER.value, LETTER.key)]
    # the failed producer was stopped and replaced: its idempotence sequence cannot wedge later sends
    assert len(producers.opened) == 2 and producers.opened[0].stopped
    assert pauses == [True, False] and writer.failing is None


class SizeLimitedProducer(FlakyProducer):
    """Refuses records over 4,096 bytes, as a broker refuses records over the topic's limit."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        size = len(value or b"") + len(key or b"") + sum(len(k) + len(v) for k, v in headers or [])
        if size > 4096:
            raise MessageSizeTooLargeError("over max.message.bytes")
        return await super().send(topic, value, key, headers=headers)


def test_records_over_the_limit_are_truncated_and_say_so() -> None:
    original = b"v" * 100_000
    big = replace(LETTER, value=original, key=b"k" * 50)
    key, value, headers = fitted(big, "p1", 8192)
    fields = dict(headers)
    assert key == big.key and value is not None and 0 < len(value) < 8192 and original.startswith(value)
    assert fields["sidecar.payload.truncated"] == b"true"
    assert fields["sidecar.payload.original.bytes"] == b"100000"
    assert fields["sidecar.source.offset"] == b"99" and fields["trace"] == b"t1"
    assert len(big.key or b"") + len(value) + sum(len(k) + len(v) for k, v in headers) <= 8192
    assert fitted(LETTER, "p1", 8192) == (LETTER.key, LETTER.value, LETTER.kafka_headers("p1", 1024))


def test_a_huge_key_and_headers_are_cut_too() -> None:
    big = replace(LETTER, key=b"k" * 20_000, headers=(("h", b"x" * 20_000),))
    key, value, headers = fitted(big, "p1", 4096)
    fields = dict(headers)
    assert value == b"" and key is not None and len(key) < 4096
    assert fields["sidecar.headers.dropped"] == b"true" and "h" not in fields
    assert fields["sidecar.key.original.bytes"] == b"20000"
    assert len(key) + sum(len(k) + len(v) for k, v in headers) <= 4096


async def test_a_limit_lower_than_thought_shrinks_until_records_fit() -> None:
    producers = Producers(cls=SizeLimitedProducer)
    writer = topic_writer(producers, record_limit=1024 * 1024)
    await writer.write([replace(LETTER, value=b"v" * 50_000, offset=n) for n in range(3)])
    assert len(producers.sent) == 3 and writer.record_limit <= 4096
    for _, value, _, headers in producers.sent:
        assert dict(headers)["sidecar.payload.truncated"] == b"true" and value is not None


class RefusingSink:
    """A dead-letter index that refuses the first `refusals` writes item by item."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.stored: list[BulkItem] = []

    async def write(self, items: list[BulkItem]) -> BulkResult:
        if self.refusals:
            self.refusals -= 1
            return BulkResult([DocumentError("cluster_block_exception", "index read-only") for _ in items])
        self.stored += items
        return BulkResult([None] * len(items))


async def test_an_index_that_refuses_dead_letters_is_retried_paused_never_skipped() -> None:
    sink = RefusingSink(refusals=3)
    pauses: list[bool] = []
    failing: list[str | None] = []

    def on_retry(active: bool) -> None:
        pauses.append(active)
        failing.append(writer.failing)

    writer = DeadLetterWriter(
        "p1",
        topic=None,
        index="dlq",
        sink=sink,  # type: ignore[arg-type]
        backoff=BackoffConfig(initial_ms=1, max_ms=2),
        on_retry=on_retry,
    )
    await writer.write([LETTER])
    assert [item.doc_id for item in sink.stored] == [LETTER.coordinates]
    assert pauses == [True, False]
    assert failing[0] is not None and "cluster_block_exception" in failing[0] and writer.failing is None


def test_lone_surrogates_in_reasons_are_escaped() -> None:
    letter = replace(LETTER, reason="id [x" + chr(0xDC00) + "]")
    assert letter.reason == "id [x\\udc00]"
    assert dict(letter.kafka_headers("p1"))["sidecar.error.reason"] == b"id [x\\udc00]"


async def test_a_pipeline_without_destination_writes_to_its_default_index() -> None:
    writer = await open_dead_letters(pipeline(), RefusingSink(refusals=0))  # type: ignore[arg-type]
    assert (writer.topic, writer.index) == (None, "unit-dead-letter")
