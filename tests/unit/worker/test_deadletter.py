from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError

from sidecar.deadletter import DeadLetter, DeadLetterWriter
from sidecar.pipelines.schema import BackoffConfig

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
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

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


async def test_topic_writes_are_retried_until_accepted() -> None:
    producer = FlakyProducer(failures=2)
    writer = DeadLetterWriter(
        "p1",
        topic="dlq",
        index=None,
        producer=producer,
        sink=None,
        backoff=BackoffConfig(initial_ms=1, max_ms=2),
    )
    await writer.write([LETTER])
    assert [(t, v, k) for t, v, k, _ in producer.sent] == [("dlq", LETTER.value, LETTER.key)]


class SizeLimitedProducer(FlakyProducer):
    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        if value is not None and len(value) > 4:
            raise MessageSizeTooLargeError("over max_request_size")
        return await super().send(topic, value, key, headers=headers)


async def test_records_too_large_for_the_topic_keep_their_headers_without_the_value() -> None:
    producer = SizeLimitedProducer(failures=0)
    writer = DeadLetterWriter(
        "p1",
        topic="dlq",
        index=None,
        producer=producer,
        sink=None,
        backoff=BackoffConfig(initial_ms=1, max_ms=2),
    )
    await writer.write([LETTER])
    [(topic, value, key, headers)] = producer.sent
    assert (topic, value, key) == ("dlq", None, LETTER.key)
    fields = dict(headers)
    assert fields["sidecar.source.offset"] == b"99" and b"too large" in fields["sidecar.value.dropped"]
