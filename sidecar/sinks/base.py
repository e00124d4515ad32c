"""What the Elasticsearch and OpenSearch bulk sinks share: outcomes, retries, backoff, dead letters.

`BulkSink.write(items)` sends documents with the engine's `async_streaming_bulk` helper and returns
one outcome per item, never raising for a document's fault:
- acknowledged items (2xx, or 409 on `create`: the document already exists, a redelivery) are done;
- a 409 on an externally versioned item means the engine holds this version or a newer one (a
  redelivery, or a writer that lost its partition arriving late): done too, and nothing overwritten;
- 429/5xx items (rejected executions, unavailable shards) are re-sent with jittered exponential
  backoff, keeping the successes of the same bulk, until `errors.max_retries`; then dead letter;
- other item errors (mapping conflicts, 400s) go straight to the dead letter;
- a failed request (connection refused, timeout, 429/5xx on the whole bulk) is retried for as long
  as it takes, with backoff capped at `errors.backoff.max_ms`: an unreachable engine is not the
  documents' fault. `on_pushback(True)` tells the worker to pause consumption meanwhile.
`update` (doc_as_upsert) items whose sparse vectors must be replaced, not merged, are sent as the
fixed `MERGE_REPLACING` painless script with the document as its parameter and as the upsert.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.errors import DocumentError
from sidecar.observability import metrics
from sidecar.pipelines.schema import ErrorsConfig, Operation, SinkConfig

log = logging.getLogger(__name__)

RETRY_ITEM_STATUSES = frozenset({429, 500, 502, 503, 504})

# A partial update merges objects recursively, so a re-encoded sparse vector would keep the stale
# tokens of the stored one. This script merges `params.doc` as the engine would, except that the
# `params.replace` paths are replaced whole. One fixed source: compiled once, cached by the engine.
MERGE_REPLACING = (
    "List todo = new ArrayList(); todo.add([ctx._source, params.doc, '']);"
    " while (!todo.isEmpty()) { List t = todo.remove(todo.size() - 1);"
    " Map dst = t[0]; Map src = t[1]; String prefix = t[2];"
    " for (def k : src.keySet()) { String path = prefix + k; def cur = dst.get(k); def val = src.get(k);"
    " if (!params.replace.contains(path) && cur instanceof Map && val instanceof Map) {"
    " todo.add([cur, val, path + '.']); } else { dst.put(k, val); } } }"
)


# External versions are spaced this far apart so internal updates of a document between two of its
# messages (a backfill or hook `update` adds 1 each) never reach the next message's version.
VERSION_STRIDE = 1024


def offset_version(offset: int) -> int:
    """The external version of the message at `offset`: increasing with it, above 1 (a document
    created without versioning starts at 1)."""
    return (offset + 1) * VERSION_STRIDE


@dataclass
class BulkItem:
    doc_id: str
    index: str
    source: dict[str, Any]
    operation: Operation = Operation.INDEX
    routing: str | None = None
    attempts: int = 0  # item-level retries used (429/5xx)
    upsert: bool = True  # `update` only: create a missing document (the backfill must not)
    script: dict[str, Any] | None = None  # `update` only: run this script instead of merging `source`
    replace: tuple[str, ...] = ()  # `update` only: paths replaced whole instead of merged (sparse vectors)
    version: int | None = None  # `index` and delete: sent with version_type=external (`offset_version`)
    delete: bool = False  # a tombstone (`errors.on_null: delete`): delete the document, `source` unused

    def action(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"_op_type": self.operation.value, "_index": self.index, "_id": self.doc_id}
        if self.routing is not None:
            meta["routing"] = self.routing
        if self.delete:
            if self.version is not None:
                meta.update(version=self.version, version_type="external")
            return {**meta, "_op_type": "delete"}
        if self.operation is Operation.UPDATE and self.script is not None:
            return {**meta, "script": self.script, "retry_on_conflict": 3}
        if self.operation is Operation.UPDATE and self.replace:
            script = {
                "lang": "painless",
                "source": MERGE_REPLACING,
                "params": {"doc": self.source, "replace": list(self.replace)},
            }
            upsert = {"upsert": self.source} if self.upsert else {}
            return {**meta, "script": script, **upsert, "retry_on_conflict": 3}
        if self.operation is Operation.UPDATE:
            return {**meta, "doc": self.source, "doc_as_upsert": self.upsert, "retry_on_conflict": 3}
        if self.version is not None:
            meta.update(version=self.version, version_type="external")
        return {**meta, "_source": self.source}


@dataclass
class BulkResult:
    """Outcome per item, in input order: None when acknowledged, else why it is dead-lettered."""

    outcomes: list[DocumentError | None] = field(default_factory=list)

    @property
    def indexed(self) -> int:
        return sum(1 for o in self.outcomes if o is None)


class RequestFailure(Exception):
    """A whole bulk request failed; `status` is None when no HTTP answer came (refused, timeout)."""

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


BULK_ANSWER_FIELDS = "errors,items.*.status,items.*.error"


def item_error(status: int, info: Mapping[str, Any]) -> DocumentError:
    error = info.get("error")
    if isinstance(error, Mapping):
        reason = str(error.get("reason", ""))
        cause = error.get("caused_by")
        if isinstance(cause, Mapping) and cause.get("reason"):
            reason = f"{reason}: {cause.get('type', '')} {cause['reason']}".strip()
        return DocumentError(str(error.get("type", f"http_{status}")), reason)
    return DocumentError(f"http_{status}", str(error) if error else f"status {status}")


class BulkSink(abc.ABC):
    engine_name = "engine"

    def __init__(
        self,
        config: SinkConfig,
        errors: ErrorsConfig,
        *,
        pipeline: str = "",
        on_pushback: Callable[[bool], None] | None = None,
    ) -> None:
        self.config = config
        self.errors = errors
        self.pipeline = pipeline
        self.on_pushback = on_pushback or (lambda _active: None)
        self._permits = asyncio.Semaphore(config.bulk.concurrency)
        self.healthy = True  # False while whole requests fail (readiness)
        self._backing_off = 0  # writes now sleeping before a retry

    # --- engine specifics --------------------------------------------------------------------------
    # Set by each engine's subclass: its client and its client library's async_streaming_bulk helper.
    client: Any
    streaming_bulk: Callable[..., AsyncIterable[tuple[bool, dict[str, Any]]]]

    def _stream(
        self, actions: list[dict[str, Any]], max_bytes: int
    ) -> AsyncIterable[tuple[bool, dict[str, Any]]]:
        """The engine's async_streaming_bulk over `actions` (no retries, raise on request errors)."""
        extra: dict[str, Any] = {} if self.config.refresh == "false" else {"refresh": self.config.refresh}
        return self.streaming_bulk(
            self.client,
            actions,
            chunk_size=self.config.bulk.max_docs,
            max_chunk_bytes=max_bytes,
            raise_on_error=False,
            raise_on_exception=True,
            max_retries=0,
            yield_ok=True,
            # Only what `_judge` reads: every item keeps its status, so answers stay in order, and
            # the answer to 500 items is 12.5 KB instead of 84 KB to encode, send and decode.
            filter_path=BULK_ANSWER_FIELDS,
            **extra,
        )

    def request_failure(self, exc: Exception) -> RequestFailure | None:
        """Public form of `_request_failure`, for callers that talk to the engine themselves."""
        return self._request_failure(exc)

    @abc.abstractmethod
    def _request_failure(self, exc: Exception) -> RequestFailure | None:
        """Map a client exception to a RequestFailure; None when it is not a transport problem."""

    @abc.abstractmethod
    async def _mget(self, index: str, docs: list[dict[str, Any]], paths: list[str]) -> list[dict[str, Any]]:
        """Raw `docs` entries of an mget answer."""

    @abc.abstractmethod
    async def _field_mapping(self, index: str, paths: list[str]) -> dict[str, Any] | None:
        """The engine's get-field-mapping answer for `paths` of `index`; None when the index is missing."""

    @abc.abstractmethod
    async def index_exists(self, index: str) -> bool: ...

    @abc.abstractmethod
    async def create_index(self, index: str, body: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    async def put_mapping(self, index: str, mappings: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    async def put_index_template(self, name: str, body: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    # --- shared logic ------------------------------------------------------------------------------
    async def write(self, items: Sequence[BulkItem]) -> BulkResult:
        result = BulkResult([None] * len(items))
        pending = list(range(len(items)))
        request_failures = 0
        max_bytes = self.config.bulk.max_bytes
        backoff = self.errors.backoff.policy()
        while pending:
            answered, failure = await self._send([items[i] for i in pending], max_bytes)
            retry: list[int] = []
            for pos, (ok, info) in zip(pending, answered, strict=False):
                verdict = self._judge(items[pos], ok, info)
                if verdict == "retry":
                    retry.append(pos)
                elif isinstance(verdict, DocumentError):
                    result.outcomes[pos] = verdict
            item_retries = len(retry)
            unsent = pending[len(answered) :]
            if failure is not None:
                if failure.status == 413 and len(unsent) == 1:
                    result.outcomes[unsent[0]] = DocumentError("request_entity_too_large", failure.reason)
                    unsent = []
                elif failure.status == 413:
                    max_bytes = max(1024, max_bytes // 2)
                elif failure.status in (400, 404):
                    for pos in unsent:
                        result.outcomes[pos] = DocumentError(f"http_{failure.status}", failure.reason)
                    unsent = []
                request_failures += 1
                retry += unsent
                if unsent:
                    self._set_healthy(False)
                    metrics.WORKER_RETRIED.labels(self.pipeline, "request").inc(len(unsent))
                    log.warning(
                        "bulk request to %s failed (%s); retrying %d documents",
                        self.engine_name,
                        failure.reason,
                        len(unsent),
                    )
            else:
                request_failures = 0
                self._set_healthy(True)
            if item_retries:
                metrics.WORKER_RETRIED.labels(self.pipeline, "item").inc(item_retries)
            if not retry:
                break
            # Item 429s also mean "slow down": consumption pauses while any write backs off.
            attempt = max([request_failures] + [items[i].attempts for i in retry])
            self._backing_off += 1
            self._update_pushback()
            try:
                await asyncio.sleep(backoff.delay(attempt))
            finally:
                self._backing_off -= 1
                self._update_pushback()
            pending = sorted(retry)
        return result

    def _judge(self, item: BulkItem, ok: bool, info: dict[str, Any]) -> DocumentError | str | None:
        if ok:
            return None
        body = next(iter(info.values()), {}) if len(info) == 1 else info
        status = int(body.get("status", 0) or 0)
        if status == 404 and item.delete:
            return None  # already absent
        if status == 409 and (item.operation is Operation.CREATE or item.version is not None):
            return None  # already indexed (a redelivery), or a newer version is: nothing to overwrite
        if status in RETRY_ITEM_STATUSES or (status == 409 and item.operation is Operation.UPDATE):
            item.attempts += 1
            if item.attempts <= self.errors.max_retries:
                return "retry"
            error = item_error(status, body)
            return DocumentError(
                error.error_type, f"gave up after {self.errors.max_retries} retries: {error.reason}"
            )
        return item_error(status, body)

    async def _send(
        self, items: list[BulkItem], max_bytes: int
    ) -> tuple[list[tuple[bool, dict[str, Any]]], RequestFailure | None]:
        """Stream the items; returns the answers received (in order) and the failure that cut it short."""
        answered: list[tuple[bool, dict[str, Any]]] = []
        started = time.perf_counter()
        async with self._permits:
            try:
                async for ok, info in self._stream([i.action() for i in items], max_bytes):
                    answered.append((ok, info))
            except Exception as exc:
                failure = self._request_failure(exc)
                if failure is None:
                    raise
                return answered, failure
            finally:
                metrics.WORKER_BULK_SECONDS.labels(self.pipeline).observe(time.perf_counter() - started)
        return answered, None

    def _set_healthy(self, healthy: bool) -> None:
        if healthy != self.healthy:
            log.log(
                logging.INFO if healthy else logging.WARNING,
                "%s %s",
                self.engine_name,
                "reachable again" if healthy else "unreachable: pausing consumption",
            )
        self.healthy = healthy
        self._update_pushback()

    def _update_pushback(self) -> None:
        self.on_pushback(self._backing_off > 0 or not self.healthy)

    async def target_problem(self, index: str, expected: Mapping[str, str]) -> str | None:
        """Why `index` cannot take documents whose field types must be `expected` (path -> type): it is
        missing, or a field is unmapped or mapped with another type (as dynamic mapping does); None if
        it can. Raises on transport errors, like the other engine calls."""
        answer = await self._field_mapping(index, sorted(expected))
        if not answer:
            return f"index [{index}] does not exist"
        for concrete, body in sorted(answer.items()):  # several when `index` is an alias
            fields = body.get("mappings", {}) if isinstance(body, Mapping) else {}
            for path, wanted in expected.items():
                leaf = fields.get(path, {}).get("mapping", {}).get(path.rsplit(".", 1)[-1], {})
                found = leaf.get("type")
                if found != wanted:
                    mapped = f"is mapped as [{found}]" if found else "is not mapped as a field"
                    return f"field [{path}] of index [{concrete}] {mapped}, expected [{wanted}]"
        return None

    async def fetch_stored(
        self, index: str, ids: Sequence[str], paths: list[str], routings: Sequence[str | None] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Stored `paths` of the documents that exist (for skip_if_unchanged); {} when unreachable."""
        if not ids or not paths:
            return {}
        docs: list[dict[str, Any]] = []
        for pos, doc_id in enumerate(ids):
            entry: dict[str, Any] = {"_id": doc_id}
            if routings and routings[pos] is not None:
                entry["routing"] = routings[pos]
            docs.append(entry)
        try:
            answer = await self._mget(index, docs, paths)
        except Exception as exc:
            if self._request_failure(exc) is None:
                raise
            log.debug("mget for skip_if_unchanged failed: %s", exc)
            return {}
        return {d["_id"]: d.get("_source") or {} for d in answer if d.get("found")}
