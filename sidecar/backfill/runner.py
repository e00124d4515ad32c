"""One backfill run over one slice: scan, select, enrich, write, dead-letter, checkpoint, repeat.

Documents go to inference in parts of `PART_DOCS` of similar input length (a part is about two
model batches), at most `PARTS_IN_FLIGHT` at once, and each part is
written as soon as it is enriched while the next ones are inferred: the engine's work overlaps the
model's instead of adding to it. Pages are read ahead and their parts queued across page
boundaries, so a page's last write and its checkpoint do not idle the model either. A crash costs
at most the parts in flight (`PARTS_IN_FLIGHT` + the one being written); a stop request finishes
the pages already started. On resume, a new point in time is opened after a
refresh: documents finished before the crash no longer match (`missing`) or are skipped by their
hash (`changed`); with `--force` the cursor continues, in a new point in time where the sort allows
it (OpenSearch) or in the saved one while it lives (Elasticsearch), else the scan starts over.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sidecar.backfill.checkpoint import CheckpointStore
from sidecar.backfill.deadletters import BackfillDeadLetter
from sidecar.backfill.pacing import CountingService, Throttle
from sidecar.backfill.progress import LogProgress, ProgressReporter, Stats
from sidecar.backfill.reindex import swap_alias
from sidecar.backfill.scan import Page, PitExpired, PitScanner, scanner_for
from sidecar.backfill.selection import Mode, build_query, fields_to_do, source_paths
from sidecar.deadletter import DeadLetter, DeadLetterWriter
from sidecar.enrichment import Enricher, EnrichResult, EnrichTask, apply_additions, get_path, nested
from sidecar.errors import RetriableInferenceError
from sidecar.hook.scripts import replacement_script
from sidecar.inference.types import InferenceServiceProtocol
from sidecar.observability import metrics
from sidecar.pipelines.date_math import is_date_math, static_prefix
from sidecar.pipelines.schema import Operation, PipelineConfig
from sidecar.retry import retry_async
from sidecar.sinks.base import BulkItem, BulkSink

log = logging.getLogger("sidecar.backfill")

# A part: two model batches of short texts on CPU (64 texts each). With two parts in flight the
# model's queue holds 256 texts, as a request of a page would, so its batches are cut from as wide a
# choice of lengths (on OpenVINO, texts of one length share a request) and each bulk request, with
# its translog sync, carries 128 updates: on SciFact titles 91% of inference alone's docs/s against
# 78-86% with parts of 64, and the engine's CPU per document halved.
PART_DOCS = 128
PARTS_IN_FLIGHT = 2  # the next part waits in the model's queue while one runs: no idle model between parts


@dataclass(frozen=True)
class _Part:
    hits: list[dict[str, Any]]
    enriching: asyncio.Task[tuple[list[EnrichResult], int]]


@dataclass(frozen=True)
class _PageEnd:
    cursor: list[Any] | None
    scanned: int
    skipped: int
    copies: list[dict[str, Any]]
    selected: int  # documents to enrich or copy


@dataclass(frozen=True)
class _Failed:
    error: Exception


@dataclass(frozen=True)
class BackfillOptions:
    mode: Mode = Mode.MISSING
    query: dict[str, Any] | None = None
    slices: int = 1
    slice_id: int = 0
    dry_run: bool = False
    max_docs_per_second: float | None = None
    batch_size: int = 256
    keep_alive: str = "10m"
    reindex_to: str | None = None
    alias: str | None = None

    def __post_init__(self) -> None:
        if self.slices < 1 or not 0 <= self.slice_id < self.slices:
            raise ValueError(f"--slice must be in [0, {self.slices - 1}]")
        if self.batch_size < 1:
            raise ValueError("--batch-size must be positive")
        if self.alias is not None and self.reindex_to is None:
            raise ValueError("--alias needs --reindex-to")


@dataclass
class BackfillResult:
    total: Stats  # every run of this slice, resumed ones included
    run: Stats  # this process only
    seconds: float
    finished: bool
    resumed: bool
    alias_moved: bool = False
    notes: list[str] = field(default_factory=list)


def source_index(config: PipelineConfig) -> str:
    """What to scan: the sink's index, or every index its date math can produce."""
    index = config.sink.index
    return f"{static_prefix(index)}*" if is_date_math(index) else index


def run_key(config: PipelineConfig, options: BackfillOptions) -> str:
    mode = Mode.ALL if options.reindex_to else options.mode
    facts = [source_index(config), mode.value, options.query, options.reindex_to]
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return f"{config.name}.{mode.value}.{digest}"


class Backfill:
    def __init__(
        self,
        config: PipelineConfig,
        service: InferenceServiceProtocol,
        sink: BulkSink,
        store: CheckpointStore,
        options: BackfillOptions,
        *,
        dead_letters: DeadLetterWriter | None = None,
        progress: ProgressReporter | None = None,
        stop: asyncio.Event | None = None,
        max_inputs_per_request: int = 256,
        max_input_chars: int = 100_000,
    ) -> None:
        self.config = config
        self.options = options
        self.mode = Mode.ALL if options.reindex_to else options.mode
        self.sink = sink
        self.client: Any = getattr(sink, "client")  # noqa: B009 - both engine sinks expose their client
        self.scanner: PitScanner = scanner_for(config.sink.engine, self.client)
        self.store = store
        self.counter = CountingService(service)
        self.enricher = Enricher(
            config.fields,
            self.counter,
            pipeline=config.name,
            max_inputs_per_request=max_inputs_per_request,
            max_input_chars=max_input_chars,
            always_hash=True,
        )
        self.dead_letters = dead_letters or DeadLetterWriter(
            config.name, topic=None, index=config.dead_letter_index, sink=sink, backoff=config.errors.backoff
        )
        self.index = source_index(config)
        self.run_id = run_key(config, options)
        self.key = f"{self.run_id}.slice-{options.slice_id}-of-{options.slices}"
        self.label = f"backfill [{config.name}] slice {options.slice_id + 1}/{options.slices}"
        self.progress = progress or LogProgress(self.label)
        self.stop = stop or asyncio.Event()
        self.throttle = Throttle(options.max_docs_per_second)
        self.query = build_query(self.mode, config.fields, options.query)
        self.source = source_paths(self.mode, config.fields, full=options.reindex_to is not None)
        self.slice = (options.slice_id, options.slices)
        self.pit = ""
        self.total = Stats()
        self.this_run = Stats()

    # --- the loop ------------------------------------------------------------------------------------
    async def run(self) -> BackfillResult:
        started = time.monotonic()
        state = None if self.options.dry_run else await self.store.load(self.key)
        resumed = state is not None and not state.get("done")
        self.total = Stats.from_dict(state.get("stats")) if resumed and state else Stats()
        after = await self._open(state if resumed else None)
        try:
            total_docs = await self.scanner.count(self.pit, self.options.keep_alive, self.query, self.slice)
        except PitExpired:
            total_docs = None
        self.progress.start(total_docs, self.total)
        finished = False
        try:
            finished = await self._scan(after)
        finally:
            self.progress.close()
        result = BackfillResult(self.total, self.this_run, time.monotonic() - started, finished, resumed)
        if finished:
            await self._close_pit()
            if not self.options.dry_run:
                await self._save(None, done=True)
                result.alias_moved = await self._maybe_swap_alias(result)
        return result

    async def _scan(self, after: list[Any] | None) -> bool:
        """Pages until the end (True) or a stop request (False).

        A planner reads pages ahead and queues their parts for inference (at most `PARTS_IN_FLIGHT`
        at once, across page boundaries); this loop writes the parts in order and, after a page's
        last part, its dead letters and checkpoint. The model never waits for a page's last write
        or checkpoint: the next page's first parts are already queued behind it. A stop request
        takes effect at the next page the planner would start: pages already started are finished
        and checkpointed, so no inference is thrown away."""
        queue: asyncio.Queue[_Part | _PageEnd | _Failed | bool] = asyncio.Queue(PARTS_IN_FLIGHT + 2)
        slots = asyncio.Semaphore(PARTS_IN_FLIGHT)
        planner = asyncio.create_task(self._plan(after, queue, slots))
        letters: list[DeadLetter] = []
        try:
            while True:
                item = await queue.get()
                if isinstance(item, bool):  # the end of the scan (True) or a stop request (False)
                    if not item:
                        log.info("%s: stopping; the checkpoint holds the position", self.label)
                    return item
                if isinstance(item, _Failed):
                    raise item.error
                if isinstance(item, _Part):
                    try:
                        results, inferred = await item.enriching
                    finally:
                        slots.release()
                    self._count(inferred=inferred)
                    await self._write([(hit, r) for hit, r in zip(item.hits, results, strict=True)], letters)
                    continue
                await self._finish_page(item, letters)
                letters = []
                self.progress.update(self.total)
        finally:
            planner.cancel()
            queued: list[asyncio.Task[Any]] = [planner]
            while not queue.empty():
                left = queue.get_nowait()
                if isinstance(left, _Part):
                    left.enriching.cancel()  # after a failure or a stop, nothing of theirs is written
                    queued.append(left.enriching)
            await asyncio.gather(*queued, return_exceptions=True)

    async def _plan(
        self,
        after: list[Any] | None,
        queue: asyncio.Queue[_Part | _PageEnd | _Failed | bool],
        slots: asyncio.Semaphore,
    ) -> None:
        """Read pages (one ahead), select what to do, queue parts for inference and page ends."""
        pending = asyncio.create_task(self._page(after))
        try:
            while True:
                page = await pending
                if not page.hits or self.stop.is_set():
                    await queue.put(not page.hits)
                    return
                pending = asyncio.create_task(self._page(page.cursor))  # read ahead while enriching
                todo, end = self._select(page)
                if not self.options.dry_run:
                    await self.throttle.wait(end.selected)
                    todo.sort(key=lambda item: self._input_chars(item[0]))
                    for i in range(0, len(todo), PART_DOCS):
                        part = todo[i : i + PART_DOCS]
                        await slots.acquire()
                        enriching = asyncio.create_task(self._enrich_part(part))
                        try:
                            await queue.put(_Part([hit for hit, _ in part], enriching))
                        except BaseException:
                            enriching.cancel()
                            raise
                await queue.put(end)
        except Exception as exc:  # the loop above raises it, in order, after what came before
            await queue.put(_Failed(exc))
        finally:
            if not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    async def _page(self, after: list[Any] | None) -> Page:
        try:
            page = await self.scanner.page(
                self.pit, self.options.keep_alive, self.query, self.options.batch_size,
                after=after, slice_=self.slice, source=self.source,
            )  # fmt: skip
        except PitExpired:
            if not self.scanner.stable_sort:
                log.warning("%s: the point in time expired; scanning again from the start", self.label)
                after = None
            self.pit = await self._new_pit()
            return await self._page(after)
        self.pit = page.pit_id
        return page

    # --- one page ------------------------------------------------------------------------------------
    def _select(self, page: Page) -> tuple[list[tuple[dict[str, Any], list[int]]], _PageEnd]:
        todo: list[tuple[dict[str, Any], list[int]]] = []
        copies: list[dict[str, Any]] = []  # reindex: unchanged documents still get copied
        skipped = 0
        for hit in page.hits:
            fields = fields_to_do(self.mode, self.enricher, hit.get("_source") or {})
            if fields:
                todo.append((hit, fields))
            elif self.options.reindex_to:
                copies.append(hit)
            else:
                skipped += 1
        return todo, _PageEnd(page.cursor, len(page.hits), skipped, copies, len(todo) + len(copies))

    async def _enrich_part(
        self, part: list[tuple[dict[str, Any], list[int]]]
    ) -> tuple[list[EnrichResult], int]:
        """The part's results and how many texts it sent to inference."""
        tally = self.counter.tally()  # this task's own count, whatever else is inferring meanwhile
        results = await self._enrich([EnrichTask(h.get("_source") or {}, f) for h, f in part])
        return results, tally.texts

    async def _finish_page(self, end: _PageEnd, letters: list[DeadLetter]) -> None:
        name = self.config.name
        self._count(scanned=end.scanned, skipped=end.skipped)
        metrics.BACKFILL_SCANNED.labels(name).inc(end.scanned)
        if self.options.dry_run:
            self._count(enriched=end.selected)
            return
        await self._write([(hit, EnrichResult()) for hit in end.copies], letters)
        await self.dead_letters.write(letters)
        failed = len({(letter.topic, letter.key) for letter in letters})  # one per document
        self._count(failed=failed)
        metrics.BACKFILL_FAILED.labels(name).inc(failed)
        await self._save(end.cursor, done=False)

    def _input_chars(self, hit: dict[str, Any]) -> int:
        source = hit.get("_source") or {}
        values = (get_path(source, path) for path in self.enricher.input_paths)
        return sum(len(value) for value in values if isinstance(value, str))

    async def _write(
        self, enriched: list[tuple[dict[str, Any], EnrichResult]], letters: list[DeadLetter]
    ) -> None:
        """Write the documents of one part, adding the failed ones to `letters`."""
        items: list[BulkItem] = []
        owners: list[dict[str, Any]] = []
        for hit, result in enriched:
            if result.error is not None:
                letters.append(self._letter(hit, result.error.error_type, result.error.reason, "enrich"))
            if result.additions or self.options.reindex_to:
                items.append(self._item(hit, result))
                owners.append(hit)
            elif result.error is None:
                self._count(skipped=1)  # optional inputs absent: nothing to write
        if not items:
            return
        written = await self.sink.write(items)
        for hit, outcome in zip(owners, written.outcomes, strict=True):
            if outcome is None:
                self._count(enriched=1)
            elif outcome.error_type == "document_missing_exception":
                self._count(skipped=1)  # deleted since it was read
            else:
                letters.append(self._letter(hit, outcome.error_type, outcome.reason, "index"))

    async def _enrich(self, tasks: list[EnrichTask]) -> list[EnrichResult]:
        if not tasks:
            return []

        def on_retry(attempt: int, exc: BaseException) -> None:
            log.warning("%s: inference unavailable (%s); retry %d", self.label, exc, attempt)

        return await retry_async(
            lambda: self.enricher.enrich(tasks),
            self.config.errors.backoff.policy(),
            retry_on=RetriableInferenceError,
            on_retry=on_retry,
        )

    def _item(self, hit: dict[str, Any], result: EnrichResult) -> BulkItem:
        routing = hit.get("_routing")
        if self.options.reindex_to:
            source = copy.deepcopy(hit.get("_source") or {})
            apply_additions(source, result.additions)
            return BulkItem(hit["_id"], self.options.reindex_to, source, Operation.INDEX, routing)
        # A target may already hold a vector (changed / all): replace it rather than merge into it.
        script = None if self.mode is Mode.MISSING else replacement_script(result.additions)
        return BulkItem(
            hit["_id"], hit["_index"], nested(result.additions), Operation.UPDATE, routing,
            upsert=False, script=script,
        )  # fmt: skip

    def _letter(self, hit: dict[str, Any], error_type: str, reason: str, stage: str) -> DeadLetter:
        source = hit.get("_source") or {}
        return BackfillDeadLetter.of(hit["_index"], hit["_id"], source, error_type, reason, stage)

    def _count(self, **deltas: int) -> None:
        for name, delta in deltas.items():
            for stats in (self.total, self.this_run):
                setattr(stats, name, getattr(stats, name) + delta)
        if deltas.get("enriched") and not self.options.dry_run:
            metrics.BACKFILL_DOCS.labels(self.config.name).inc(deltas["enriched"])
        if deltas.get("skipped"):
            metrics.BACKFILL_SKIPPED.labels(self.config.name).inc(deltas["skipped"])

    # --- point in time and checkpoints ---------------------------------------------------------------
    async def _new_pit(self) -> str:
        await self.scanner.refresh(self.index)  # acknowledged writes become visible to the new one
        return await self.scanner.open(self.index, self.options.keep_alive)

    async def _open(self, state: dict[str, Any] | None) -> list[Any] | None:
        cursor = list(state["cursor"]) if state and state.get("cursor") else None
        if (
            cursor
            and self.mode is Mode.ALL
            and not self.scanner.stable_sort
            and state
            and state.get("pit_id")
        ):
            self.pit = str(state["pit_id"])  # the only place this cursor means something
            log.info("%s: resuming in the saved point in time", self.label)
            return cursor
        self.pit = await self._new_pit()
        if cursor and self.scanner.stable_sort:
            log.info("%s: resuming after the saved cursor", self.label)
            return cursor
        if state:
            log.info("%s: resuming; finished documents are no longer selected", self.label)
        return None

    async def _close_pit(self) -> None:
        try:
            await self.scanner.close(self.pit)
        except Exception as exc:  # it expires by itself anyway
            log.debug("closing the point in time failed: %s", exc)

    async def _save(self, cursor: list[Any] | None, *, done: bool) -> None:
        state = {
            "run": self.run_id,
            "pipeline": self.config.name,
            "index": self.index,
            "mode": self.mode.value,
            "query": self.options.query,
            "reindex_to": self.options.reindex_to,
            "slice": self.options.slice_id,
            "slices": self.options.slices,
            "pit_id": self.pit,
            "cursor": cursor,
            "stats": self.total.as_dict(),
            "done": done,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        await self.store.save(self.key, state)

    async def _maybe_swap_alias(self, result: BackfillResult) -> bool:
        alias, target = self.options.alias, self.options.reindex_to
        if alias is None or target is None:
            return False
        states = await self.store.load_run(self.run_id)
        done = {s.get("slice") for s in states if s.get("done") and s.get("slices") == self.options.slices}
        if len(done) < self.options.slices:
            result.notes.append(f"alias [{alias}] waits for {self.options.slices - len(done)} more slice(s)")
            return False
        await swap_alias(self.config.sink.engine, self.client, alias, target)
        result.notes.append(f"alias [{alias}] now points at [{target}]")
        return True
