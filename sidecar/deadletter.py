"""Dead letters: messages the worker cannot index go to a Kafka topic and/or an index, never lost.

A topic record keeps the original key, value and headers and adds `sidecar.error.type`,
`sidecar.error.reason`, `sidecar.error.stage`, `sidecar.pipeline` and the source coordinates
`sidecar.source.topic` / `.partition` / `.offset`. An index record has the same facts as fields and
the id `{topic}+{partition}+{offset}`, so a redelivered poison message is stored once.
A message counts as handled (its offset may be committed) only once every configured dead-letter
destination has accepted it; until then writes are retried with backoff.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka.errors import MessageSizeTooLargeError

from sidecar.observability import metrics
from sidecar.pipelines.schema import BackoffConfig, Operation
from sidecar.sinks.base import BulkItem, BulkSink, backoff_delay

log = logging.getLogger(__name__)

HEADER_PREFIX = "sidecar."


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

    def kafka_headers(self, pipeline: str) -> list[tuple[str, bytes]]:
        ours = {
            "error.type": self.error_type,
            "error.reason": self.reason[:10_000],
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


class Producer(Protocol):
    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]: ...


class DeadLetterWriter:
    def __init__(
        self,
        pipeline: str,
        *,
        topic: str | None,
        index: str | None,
        producer: Producer | None,
        sink: BulkSink | None,
        backoff: BackoffConfig,
    ) -> None:
        if topic is not None and producer is None:
            raise ValueError("a dead-letter topic needs a producer")
        if index is not None and sink is None:
            raise ValueError("a dead-letter index needs a sink")
        self.pipeline = pipeline
        self.topic = topic
        self.index = index
        self.producer = producer
        self.sink = sink
        self.backoff = backoff

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        """Return once every destination accepted every letter (retrying transient failures)."""
        if not letters:
            return
        if self.topic is None and self.index is None:
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

    async def _to_topic(self, letters: Sequence[DeadLetter]) -> None:
        if self.topic is None or self.producer is None:
            return
        pending = list(letters)
        attempt = 0
        while pending:
            results = await asyncio.gather(
                *(self._deliver(letter) for letter in pending), return_exceptions=True
            )
            failed = [
                (letter, r) for letter, r in zip(pending, results, strict=True) if isinstance(r, Exception)
            ]
            pending = [letter for letter, _ in failed]
            if pending:  # the broker is unreachable or busy: retry, the offsets wait meanwhile
                attempt += 1
                metrics.WORKER_RETRIED.labels(self.pipeline, "dead_letter").inc(len(pending))
                log.warning(
                    "dead-letter topic [%s]: %d records not accepted (%s); retry %d",
                    self.topic,
                    len(pending),
                    failed[0][1],
                    attempt,
                )
                await asyncio.sleep(
                    backoff_delay(attempt, self.backoff.initial_ms / 1000, self.backoff.max_ms / 1000)
                )

    async def _deliver(self, letter: DeadLetter) -> None:
        assert self.topic is not None and self.producer is not None  # noqa: S101 - checked by _to_topic
        headers = letter.kafka_headers(self.pipeline)
        try:
            await (await self.producer.send(self.topic, letter.value, letter.key, headers=headers))
        except MessageSizeTooLargeError:
            # Retrying cannot help: keep the record (error, coordinates) without the value, which
            # stays readable in the source topic at the offset given in the headers.
            headers.append((HEADER_PREFIX + "value.dropped", b"too large for the dead-letter topic"))
            await (await self.producer.send(self.topic, None, letter.key, headers=headers))

    async def _to_index(self, letters: Sequence[DeadLetter]) -> None:
        if self.index is None or self.sink is None:
            return
        items = [
            BulkItem(letter.coordinates, self.index, letter.document(self.pipeline), Operation.INDEX)
            for letter in letters
        ]
        result = await self.sink.write(items)
        for letter, outcome in zip(letters, result.outcomes, strict=True):
            if outcome is not None:
                log.error(
                    "dead-letter index [%s] refused %s: %s: %s",
                    self.index,
                    letter.coordinates,
                    outcome.error_type,
                    outcome.reason,
                )
