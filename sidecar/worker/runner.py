"""One pipeline's worker: a Kafka consumer-group member feeding the inference service and a bulk sink.

    Kafka ──poll──▶ batch ──decode──▶ enricher ────infer──▶ bulk sink ──▶ per-item outcomes
      ▲                │ poison             (InferenceService)      │ 2xx ─────────┐
      │                ▼                                             │ 429/5xx: retry│
      │           dead letter ◀──── permanent errors / retries spent ┘              ▼
      └──── commit the contiguous finished prefix per partition ◀──── ack (indexed or dead-lettered)

The poll loop never blocks on work: each batch runs as its own task, so inference of one batch
overlaps the bulk request of the previous one. In-flight messages are bounded; past the bound, or
while the engine or the inference service pushes back, partitions are paused (the loop keeps
polling so the consumer stays in its group). Writes of one document id stay in consumption order
(`KeyedOrder`). A message is acknowledged only once its document was acknowledged by the engine or
its dead letter was written; commits then advance over the contiguous acknowledged prefix only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sidecar.deadletter import DeadLetter, DeadLetterWriter, open_dead_letters
from sidecar.enrichment import Enricher
from sidecar.errors import DocumentError, RetriableInferenceError
from sidecar.inference.catalog import EndpointCatalog
from sidecar.inference.types import InferenceServiceProtocol, TaskType
from sidecar.observability import metrics
from sidecar.pipelines.date_math import resolve_index
from sidecar.pipelines.schema import OnMalformed, Operation, PipelineConfig, TargetType, Tolerance
from sidecar.retry import Backoff, retry_async
from sidecar.settings import Settings, load_settings
from sidecar.sinks import BulkItem, BulkSink, create_sink
from sidecar.sinks.base import RequestFailure, offset_version
from sidecar.sinks.setup import index_settings, pipeline_mappings, setup_pipeline, template_name
from sidecar.sinks.target import TargetWriter
from sidecar.sources.kafka import KafkaSource, Message
from sidecar.worker.decode import Envelope, decode, poison
from sidecar.worker.offsets import PartitionOffsets
from sidecar.worker.ordering import KeyedOrder
from sidecar.worker.partitions import Partitions

log = logging.getLogger(__name__)
# Waits on an engine that does not answer at all while the pipeline sets itself up.
ENGINE_AT_START = Backoff(0.5, 10.0)


class PipelineStartError(Exception):
    """The pipeline cannot start (unknown endpoint, mapping conflict...): a configuration problem."""


class ToleranceExceeded(Exception):
    """A record was not tolerated (`errors.tolerance: none`, `errors.on_malformed: fail`): the pipeline
    stops with that record's offset uncommitted, as a Kafka Connect task fails."""

    def __init__(self, pipeline: str, letter: DeadLetter, count: int) -> None:
        super().__init__(
            f"pipeline [{pipeline}] stops: tolerance exceeded at {letter.topic}-{letter.partition} offset "
            f"{letter.offset} ({letter.error_type}: {letter.reason[:500]})"
            + (f" and {count - 1} more records of the batch" if count > 1 else "")
            + "; the offset is not committed"
        )


@dataclass
class _Batch:
    messages: list[Message]
    trackers: list[PartitionOffsets]  # the tracker each message was registered with
    envelopes: list[Envelope]
    letters: list[DeadLetter]
    keys: list[str]
    done: asyncio.Future[None]
    waits: list[asyncio.Future[None]]
    started: float = field(default_factory=time.perf_counter)


def _merge(
    base: dict[str, Any], update: dict[str, Any], replace: set[str], prefix: str = ""
) -> dict[str, Any]:
    """Partial documents of one id, merged as the engine merges them (objects recursively, the
    `replace` paths whole: see `MERGE_REPLACING`)."""
    out = dict(base)
    for key, value in update.items():
        path = prefix + key
        if path not in replace and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, replace, path + ".")
        else:
            out[key] = value
    return out


class PipelineRunner:
    def __init__(
        self,
        config: PipelineConfig,
        service: InferenceServiceProtocol,
        catalog: EndpointCatalog,
        settings: Settings | None = None,
        *,
        sink: BulkSink | None = None,
    ) -> None:
        settings = settings or load_settings()
        self.config = config
        self.name = config.name
        self.catalog = catalog
        self.sink = sink or create_sink(config.sink, config.errors, pipeline=self.name)
        self.sink.on_pushback = self._engine_pushback
        self.source = KafkaSource(config.kafka, on_revoked=self._on_revoked, on_assigned=self._on_assigned)
        revoke_timeout = min(config.worker.shutdown_timeout_s, config.kafka.max_poll_interval_ms / 2000)
        self.partitions = Partitions(self.name, self.source, revoke_timeout)
        self.enricher = Enricher(
            config.fields,
            service,
            max_inputs_per_request=min(256, settings.max_inputs_per_request),
            max_input_chars=settings.max_input_chars,
            pipeline=self.name,
        )
        self.dead_letters = DeadLetterWriter(
            self.name,
            topic=None,
            index=config.dead_letter_index,
            sink=self.sink,
            backoff=config.errors.backoff,
            on_retry=lambda active: self.partitions.add_reason("dead_letter", 1 if active else -1),
        )
        self._order = KeyedOrder()
        # `update` replaces sparse vectors whole (a merge would keep stale tokens); dense ones are lists.
        sparse_targets = tuple(f.target for f in config.fields if f.type.sparse)
        self._replace = sparse_targets if config.sink.operation is Operation.UPDATE else ()
        self._versioned = config.external_versioning  # a late writer cannot overwrite a newer version
        self.target = TargetWriter(
            self.sink,
            pipeline=self.name,
            configured_index=config.sink.index,
            template=template_name(config),
            backoff=config.errors.backoff,
            pause=lambda delta: self.partitions.add_reason("target", delta),
        )
        self._tasks: set[asyncio.Task[None]] = set()
        # One batch's texts in inference at a time: the engine batches all queued texts by length, so
        # batches inferred together finish together and none of their bulk writes would overlap
        # inference; one at a time, a batch is written while the next one is inferred.
        self._inferring = asyncio.Semaphore(1)
        self._in_flight = 0
        self._stopping = asyncio.Event()
        self.started = False
        self.fatal: BaseException | None = None
        self.last_loop = time.monotonic()

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        dims = await self._check_endpoints()
        await self._with_engine_retry(lambda: setup_pipeline(self.config, self.sink, dims))
        self.target.prepare(pipeline_mappings(self.config, dims), index_settings(self.config))
        self.catalog.set_pipeline_usage(self.name, self.config.endpoint_ids)
        self.dead_letters = await open_dead_letters(
            self.config, self.sink, on_retry=self.dead_letters.on_retry
        )
        await self.source.start()
        self.started = True
        log.info("pipeline [%s] started", self.name)

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Poll until `stop()`, then drain, commit and leave the group."""
        next_commit = next_lag = time.monotonic()
        try:
            while not self._stopping.is_set():
                self.last_loop = time.monotonic()
                messages = await self._poll()
                if messages:
                    self._start_batch(messages)
                now = time.monotonic()
                if now >= next_commit:
                    await self.partitions.commit()
                    next_commit = now + self.config.worker.commit_interval_ms / 1000
                if now >= next_lag:
                    self.partitions.update_lag()
                    next_lag = now + 5
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        if self._tasks:
            log.info("pipeline [%s] finishing %d in-flight batches", self.name, len(self._tasks))
            _, late = await asyncio.wait(set(self._tasks), timeout=self.config.worker.shutdown_timeout_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        try:
            await self.partitions.commit()
        finally:
            await self.close()
            log.info("pipeline [%s] stopped", self.name)

    async def close(self) -> None:
        """Leave the group and close the clients (also for a pipeline that never ran)."""
        await self.source.stop()
        await self.dead_letters.close()
        await self.sink.close()

    async def _check_endpoints(self) -> dict[str, int]:
        dims: dict[str, int] = {}
        for spec in self.config.fields:
            task_type = await self.catalog.task_type(spec.endpoint)
            if task_type is None:
                raise PipelineStartError(
                    f"pipeline [{self.name}]: Inference endpoint not found [{spec.endpoint}]"
                )
            wanted = TaskType.SPARSE_EMBEDDING if spec.type.sparse else TaskType.TEXT_EMBEDDING
            if task_type is not wanted:
                raise PipelineStartError(
                    f"pipeline [{self.name}]: endpoint [{spec.endpoint}] is [{task_type}], "
                    f"[{spec.type}] needs [{wanted}]"
                )
            if spec.type is TargetType.DENSE_VECTOR:
                dims[spec.endpoint] = await self.catalog.dimensions(spec.endpoint)
        return dims

    async def _with_engine_retry(self, call: Any) -> Any:
        def failure_of(exc: BaseException) -> RequestFailure | None:
            return self.sink.request_failure(exc) if isinstance(exc, Exception) else None

        def unreachable(exc: BaseException) -> bool:
            failure = failure_of(exc)
            return failure is not None and failure.status is None and not self._stopping.is_set()

        def on_retry(_attempt: int, exc: BaseException) -> None:
            failure = failure_of(exc)
            reason = failure.reason if failure is not None else exc
            log.warning("pipeline [%s]: engine unreachable at start (%s); retrying", self.name, reason)

        return await retry_async(call, ENGINE_AT_START, retry_on=unreachable, on_retry=on_retry)

    # --- polling -----------------------------------------------------------------------------------
    async def _poll(self) -> list[Message]:
        kafka = self.config.kafka
        capacity = self.config.worker.max_in_flight_docs - self._in_flight
        self.partitions.set_reason("in_flight", capacity <= 0)
        want = max(1, min(kafka.max_poll_records, capacity))
        messages = await self.source.poll(want, timeout_ms=200)
        deadline = time.monotonic() + kafka.linger_ms / 1000
        while messages and len(messages) < want and not self.partitions.paused:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            more = await self.source.poll(want - len(messages), timeout_ms=max(1, int(remaining * 1000)))
            if not more:
                break
            messages += more
        owned = self.source.assignment()
        kept = [m for m in messages if m.tp in owned]  # records of partitions revoked meanwhile
        return kept

    def _start_batch(self, messages: list[Message]) -> None:
        metrics.WORKER_CONSUMED.labels(self.name).inc(len(messages))
        metrics.WORKER_BATCH_DOCS.labels(self.name).observe(len(messages))
        envelopes: list[Envelope] = []
        letters: list[DeadLetter] = []
        trackers: list[PartitionOffsets] = []
        for message in messages:
            trackers.append(self.partitions.register(message.tp, message.offset))
            decoded = self._decode(message)
            if message.value is None:
                metrics.WORKER_TOMBSTONES.labels(self.name, self.config.errors.on_null.value).inc()
            if isinstance(decoded, DeadLetter):
                letters.append(decoded)
            elif decoded is not None:  # None: a tombstone to ignore, acknowledged with the batch
                envelopes.append(decoded)
        keys = sorted({e.doc_id for e in envelopes})
        done, waits = self._order.register(keys)
        batch = _Batch(messages, trackers, envelopes, letters, keys, done, waits)
        self._in_flight += len(messages)
        metrics.WORKER_IN_FLIGHT.labels(self.name).set(self._in_flight)
        task = asyncio.create_task(self._process(batch), name=f"batch-{self.name}")
        self._tasks.add(task)
        task.add_done_callback(self._batch_finished)

    def _decode(self, message: Message) -> Envelope | DeadLetter | None:
        try:
            return decode(message, self.config)
        except Exception as exc:  # a record the decoder did not foresee is still only that record's fault
            letter = poison(message, "decode_failed", f"{type(exc).__name__}: {exc}")
            log.warning("pipeline [%s]: %s not decoded", self.name, letter.coordinates, exc_info=True)
            return letter

    def _batch_finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.fatal = task.exception()
            if isinstance(self.fatal, ToleranceExceeded):
                log.error("%s", self.fatal)
            else:
                log.error("pipeline [%s] stops: a batch failed unexpectedly", self.name, exc_info=self.fatal)
            self.stop()

    # --- one batch ---------------------------------------------------------------------------------
    async def _process(self, batch: _Batch) -> None:
        try:
            letters = list(batch.letters)
            index = resolve_index(self.config.sink.index)
            enriched = iter(await self._enrich_each([e for e in batch.envelopes if not e.delete], index))
            docs = [{} if e.delete else next(enriched) for e in batch.envelopes]
            items: list[BulkItem] = []
            owners: list[list[Envelope]] = []
            slot: dict[str, int] = {}
            operation = self.config.sink.operation
            for envelope, doc in zip(batch.envelopes, docs, strict=True):
                if isinstance(doc, DocumentError):
                    letters.append(poison(envelope.message, doc.error_type, doc.reason, "enrich"))
                    continue
                pos = slot.get(envelope.doc_id)
                if pos is None:  # one bulk item per id: the last message wins (merged for partial updates)
                    slot[envelope.doc_id] = len(items)
                    items.append(
                        BulkItem(
                            envelope.doc_id,
                            index,
                            doc,
                            operation,
                            envelope.routing,
                            replace=self._replace,
                            version=self._version(envelope),
                            delete=envelope.delete,
                        )
                    )
                    owners.append([envelope])
                    continue
                item = items[pos]
                if operation is Operation.UPDATE and not (item.delete or envelope.delete):
                    item.source = _merge(item.source, doc, set(self._replace))
                else:  # a whole document, a delete, or a partial one upserted after a delete
                    item.source = doc
                item.delete = envelope.delete
                item.routing = envelope.routing
                item.version = self._version(envelope)
                owners[pos].append(envelope)
            for earlier in batch.waits:
                await earlier
            outcomes = await self._write_each(items)
            indexed = 0
            for envs, outcome in zip(owners, outcomes, strict=True):
                if outcome is None:
                    indexed += len(envs)
                else:
                    letters += [poison(e.message, outcome.error_type, outcome.reason, "index") for e in envs]
            metrics.WORKER_INDEXED.labels(self.name).inc(indexed)
            self._check_tolerance(letters)
            await self.dead_letters.write(letters)
            for message, tracker in zip(batch.messages, batch.trackers, strict=True):
                tracker.finish(message.offset)  # ignored when the partition was revoked meanwhile
            metrics.WORKER_BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - batch.started)
        finally:
            self._order.release(batch.done, batch.keys)
            self._in_flight -= len(batch.messages)
            metrics.WORKER_IN_FLIGHT.labels(self.name).set(self._in_flight)

    def _check_tolerance(self, letters: list[DeadLetter]) -> None:
        """Raise (the pipeline stops, the batch's offsets stay uncommitted) where a letter is not tolerated."""
        errors = self.config.errors
        if errors.tolerance is Tolerance.NONE:
            stops = letters
        elif errors.on_malformed is OnMalformed.FAIL:
            stops = [letter for letter in letters if letter.stage == "index"]
        else:
            return
        if stops:
            first = min(stops, key=lambda letter: (letter.topic, letter.partition, letter.offset))
            raise ToleranceExceeded(self.name, first, len(stops))

    async def _enrich_each(
        self, envelopes: list[Envelope], index: str
    ) -> list[dict[str, Any] | DocumentError]:
        """`_enrich`, and where it fails unexpectedly, one envelope at a time: only the records that fail
        alone are dead-lettered."""
        try:
            return await self._enrich(envelopes, index)
        except Exception as exc:
            if len(envelopes) == 1:
                log.warning("pipeline [%s]: enrichment failed", self.name, exc_info=True)
                return [DocumentError("enrich_failed", f"{type(exc).__name__}: {exc}")]
        return [doc for envelope in envelopes for doc in await self._enrich_each([envelope], index)]

    async def _write_each(self, items: list[BulkItem]) -> list[DocumentError | None]:
        """`sink.write`, and where it fails unexpectedly (not an engine answer), one item at a time."""
        try:
            return (await self.target.write(items)).outcomes
        except Exception as exc:
            if len(items) == 1:
                log.warning("pipeline [%s]: bulk write failed", self.name, exc_info=True)
                return [DocumentError("index_failed", f"{type(exc).__name__}: {exc}")]
        return [outcome for item in items for outcome in await self._write_each([item])]

    def _version(self, envelope: Envelope) -> int | None:
        return offset_version(envelope.message.offset) if self._versioned else None

    async def _enrich(self, envelopes: list[Envelope], index: str) -> list[dict[str, Any] | DocumentError]:
        if not envelopes:
            return []
        stored: dict[str, dict[str, Any]] = {}
        paths = self.enricher.lookup_paths
        if paths:
            stored = await self.sink.fetch_stored(
                index, [e.doc_id for e in envelopes], paths, [e.routing for e in envelopes]
            )

        async def attempt() -> list[dict[str, Any] | DocumentError]:
            async with self._inferring:
                return await self.enricher.write(
                    [e.source for e in envelopes], [stored.get(e.doc_id) for e in envelopes]
                )

        def on_retry(attempt: int, exc: BaseException) -> None:
            metrics.WORKER_RETRIED.labels(self.name, "inference").inc()
            log.warning("pipeline [%s]: inference unavailable (%s); retry %d", self.name, exc, attempt)

        # Consumption pauses (reason `inference`) until the batch is enriched.
        return await retry_async(
            attempt,
            self.config.errors.backoff.policy(),
            retry_on=RetriableInferenceError,
            on_retry=on_retry,
            waiting=lambda active: self.partitions.add_reason("inference", 1 if active else -1),
        )

    # --- callbacks ---------------------------------------------------------------------------------
    def _engine_pushback(self, active: bool) -> None:
        self.partitions.set_reason("engine", active)

    async def _on_revoked(self, revoked: set[Any]) -> None:
        await self.partitions.on_revoked(revoked)

    async def _on_assigned(self, assigned: set[Any]) -> None:
        await self.partitions.on_assigned(assigned)

    # --- health ------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {
            "pipeline": self.name,
            "started": self.started,
            "engine_reachable": self.sink.healthy,
            "paused": self.partitions.paused,
            "pause_reasons": self.partitions.active_reasons(),
            "in_flight": self._in_flight,
            "partitions": len(self.source.assignment()),
            "dead_letter_failing": self.dead_letters.failing,
            "target_problem": self.target.problem,
            "fatal": None if self.fatal is None else repr(self.fatal),
        }
