"""Dead letters: messages the worker cannot index go to a Kafka topic and/or an index, never lost.

A topic record keeps the original key, value and headers and adds `sidecar.error.type`,
`sidecar.error.reason`, `sidecar.error.stage`, `sidecar.pipeline` and the source coordinates
`sidecar.source.topic` / `.partition` / `.offset`. A record larger than the topic accepts is cut to
fit and says so: `sidecar.payload.truncated=true` and `sidecar.payload.original.bytes` (the whole
message stays readable in the source topic at the offset given). An index record has the same facts
as fields and the id `{topic}+{partition}+{offset}`, so a redelivered poison message is stored once.

A message counts as handled (its offset may be committed) only once every configured dead-letter
destination has accepted it. Until then the write is retried with backoff, however long it takes
(a refusing index, a broker down), and `on_retry` tells the worker to pause consumption meanwhile.
Topic sends are serialized and the producer is replaced after any failed send: an idempotent
producer whose batch failed can otherwise refuse every later batch (`OutOfOrderSequenceNumber`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka.errors import MessageSizeTooLargeError

from sidecar.observability import metrics
from sidecar.pipelines.schema import BackoffConfig, Operation, PipelineConfig
from sidecar.retry import TryAgain, retry_async
from sidecar.sinks.base import BulkItem, BulkSink
from sidecar.sources.kafka import make_producer, producer_max_request_size, topic_max_message_bytes

log = logging.getLogger(__name__)

HEADER_PREFIX = "sidecar."
# Record batch header (61 bytes) and record framing (varints, attributes), with room to spare.
RECORD_OVERHEAD = 256
MIN_RECORD_LIMIT = 4096
DEFAULT_TOPIC_MAX_MESSAGE_BYTES = 1024 * 1024 + 12  # the broker's default, when the topic's is unknown


def _text(value: str) -> str:
    """Text any engine request or Kafka header can carry (lone surrogates escaped)."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error_type: str
    reason: str
    stage: str  # decode | inference | index
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)
    timestamp_ms: int | None = None

    @property
    def coordinates(self) -> str:
        return f"{self.topic}+{self.partition}+{self.offset}"

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", _text(self.reason))

    def kafka_headers(self, pipeline: str, reason_chars: int = 10_000) -> list[tuple[str, bytes]]:
        ours = {
            "error.type": self.error_type,
            "error.reason": self.reason[:reason_chars],
            "error.stage": self.stage,
            "pipeline": pipeline,
            "source.topic": self.topic,
            "source.partition": str(self.partition),
            "source.offset": str(self.offset),
        }
        kept = [(k, v) for k, v in self.headers if not k.startswith(HEADER_PREFIX)]
        return kept + [(HEADER_PREFIX + k, v.encode("utf-8")) for k, v in ours.items()]

    def document(self, pipeline: str) -> dict[str, Any]:
        message: dict[str, Any] = {}
        for name, raw in (("key", self.key), ("value", self.value)):
            if raw is None:
                continue
            try:
                message[name] = raw.decode("utf-8")
            except UnicodeDecodeError:
                message[f"{name}_base64"] = base64.b64encode(raw).decode("ascii")
        return {
            "@timestamp": datetime.now(UTC).isoformat(),
            "pipeline": pipeline,
            "error": {"type": self.error_type, "reason": self.reason, "stage": self.stage},
            "source": {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                **({"key": message["key"]} if "key" in message else {}),
            },
            "message": message,
        }


def fitted(
    letter: DeadLetter, pipeline: str, limit: int
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """The topic record of `letter` in at most `limit` bytes: the value is cut first, then the
    original headers are dropped, then the key is cut; headers say what was cut."""
    headers = letter.kafka_headers(pipeline, reason_chars=min(10_000, limit // 8))
    key, value = letter.key, letter.value

    def over() -> int:
        framing = sum(len(k.encode("utf-8")) + len(v) + 10 for k, v in headers)
        return RECORD_OVERHEAD + len(key or b"") + len(value or b"") + framing - limit

    if over() <= 0:
        return key, value, headers
    headers.append((HEADER_PREFIX + "payload.truncated", b"true"))
    headers.append((HEADER_PREFIX + "payload.original.bytes", str(len(value or b"")).encode()))
    if key is not None:
        headers.append((HEADER_PREFIX + "key.original.bytes", str(len(key)).encode()))
    if value:
        value = value[: max(0, len(value) - over())]
    if over() > 0:
        headers = [(k, v) for k, v in headers if k.startswith(HEADER_PREFIX)]
        headers.append((HEADER_PREFIX + "headers.dropped", b"true"))
    if over() > 0 and key:
        key = key[: max(0, len(key) - over())]
    return key, value, headers


class Producer(Protocol):
    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]: ...

    async def stop(self) -> None: ...


Failures = list[tuple[DeadLetter, str]]


class DeadLetterWriter:
    def __init__(
        self,
        pipeline: str,
        *,
        topic: str | None,
        index: str | None,
        sink: BulkSink | None,
        backoff: BackoffConfig,
        open_producer: Callable[[], Awaitable[Producer]] | None = None,
        record_limit: int = 1024 * 1024,
        on_retry: Callable[[bool], None] | None = None,
    ) -> None:
        if topic is not None and open_producer is None:
            raise ValueError("a dead-letter topic needs a producer")
        if index is not None and sink is None:
            raise ValueError("a dead-letter index needs a sink")
        self.pipeline = pipeline
        self.topic = topic
        self.index = index
        self.sink = sink
        self.backoff = backoff
        self.record_limit = max(MIN_RECORD_LIMIT, record_limit)
        self.on_retry = on_retry or (lambda _active: None)
        self.failing: str | None = None  # why writes are being retried now (health)
        self._open_producer = open_producer
        self._producer: Producer | None = None
        self._topic_lock = asyncio.Lock()
        self._retrying = 0

    async def close(self) -> None:
        await self._drop_producer()

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        """Return once every destination accepted every letter, retrying for as long as it takes."""
        if not letters:
            return
        if self.topic is None and self.index is None:  # only `errors.tolerance: none` leaves none
            for letter in letters:
                log.error(
                    "no dead-letter destination for %s: %s: %s",
                    letter.coordinates,
                    letter.error_type,
                    letter.reason,
                )
        await asyncio.gather(self._to_topic(letters), self._to_index(letters))
        for letter in letters:
            metrics.WORKER_DEAD_LETTERED.labels(self.pipeline, letter.error_type).inc()

    async def _until_accepted(
        self,
        where: str,
        attempt: Callable[[list[DeadLetter]], Awaitable[Failures]],
        letters: Sequence[DeadLetter],
    ) -> None:
        pending = list(letters)

        async def deliver() -> None:
            nonlocal pending
            try:
                failed = await attempt(pending)
            except Exception as exc:  # whatever it is, the letters are not stored: try again
                failed = [(letter, f"{type(exc).__name__}: {exc}") for letter in pending]
            if failed:
                pending = [letter for letter, _ in failed]
                raise TryAgain(failed[0][1])

        def on_retry(tries: int, exc: BaseException) -> None:
            self.failing = f"{where}: {exc}"[:1000]
            metrics.WORKER_RETRIED.labels(self.pipeline, "dead_letter").inc(len(pending))
            log.warning(
                "%s did not accept %d dead letters (%s); retry %d, their offsets wait",
                where,
                len(pending),
                exc,
                tries,
            )

        def waiting(active: bool) -> None:
            self._retrying += 1 if active else -1
            if not active and not self._retrying:
                self.failing = None
            self.on_retry(active)

        await retry_async(
            deliver, self.backoff.policy(), retry_on=TryAgain, on_retry=on_retry, waiting=waiting
        )

    # --- topic -------------------------------------------------------------------------------------
    async def _to_topic(self, letters: Sequence[DeadLetter]) -> None:
        if self.topic is None:
            return
        async with self._topic_lock:  # one batch of sends at a time: a failure then concerns only it
            await self._until_accepted(f"dead-letter topic [{self.topic}]", self._send_all, letters)

    async def _send_all(self, letters: list[DeadLetter]) -> Failures:
        assert self.topic is not None and self._open_producer is not None  # noqa: S101 - see __init__
        if self._producer is None:
            self._producer = await self._open_producer()
        producer, topic = self._producer, self.topic

        async def send(letter: DeadLetter) -> None:
            key, value, headers = fitted(letter, self.pipeline, self.record_limit)
            await (await producer.send(topic, value, key, headers=headers))

        results = await asyncio.gather(*(send(letter) for letter in letters), return_exceptions=True)
        failed = [(letter, r) for letter, r in zip(letters, results, strict=True) if isinstance(r, Exception)]
        if failed:
            if any(isinstance(r, MessageSizeTooLargeError) for _, r in failed):  # the topic's limit shrank
                self.record_limit = max(MIN_RECORD_LIMIT, self.record_limit // 2)
            await self._drop_producer()  # a fresh producer id: no sequence left over from the failure
        return [(letter, f"{type(r).__name__}: {r}") for letter, r in failed]

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    # --- index -------------------------------------------------------------------------------------
    async def _to_index(self, letters: Sequence[DeadLetter]) -> None:
        if self.index is None:
            return
        await self._until_accepted(f"dead-letter index [{self.index}]", self._index_all, letters)

    async def _index_all(self, letters: list[DeadLetter]) -> Failures:
        assert self.index is not None and self.sink is not None  # noqa: S101 - see __init__
        items = [
            BulkItem(letter.coordinates, self.index, letter.document(self.pipeline), Operation.INDEX)
            for letter in letters
        ]
        result = await self.sink.write(items)
        return [
            (letter, f"{outcome.error_type}: {outcome.reason}")
            for letter, outcome in zip(letters, result.outcomes, strict=True)
            if outcome is not None
        ]


async def open_dead_letters(
    config: PipelineConfig, sink: BulkSink, *, on_retry: Callable[[bool], None] | None = None
) -> DeadLetterWriter:
    """The dead-letter writer of `config`: its index (the default one included) and/or its topic on
    the source cluster, with records sized to the topic's `max.message.bytes`."""
    topic, kafka = config.errors.dead_letter_topic, config.source.kafka
    if topic is not None and kafka is None:
        log.warning(
            "dead-letter topic [%s] needs [source.kafka] for its brokers; using the index only", topic
        )
        topic = None
    open_producer: Callable[[], Awaitable[Producer]] | None = None
    limit = DEFAULT_TOPIC_MAX_MESSAGE_BYTES
    if topic is not None and kafka is not None:
        cluster = kafka
        limit = min(
            await topic_max_message_bytes(cluster, topic) or DEFAULT_TOPIC_MAX_MESSAGE_BYTES,
            producer_max_request_size(cluster),
        )

        async def open_producer() -> Producer:
            producer = make_producer(cluster, limit)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()  # a failed start keeps its connections otherwise
                raise
            return producer

        log.info(
            "pipeline [%s]: dead letters to topic [%s] (records up to %d bytes)", config.name, topic, limit
        )
    return DeadLetterWriter(
        config.name,
        topic=topic,
        index=config.dead_letter_index,
        sink=sink,
        backoff=config.errors.backoff,
        open_producer=open_producer,
        record_limit=limit,
        on_retry=on_retry,
    )
