"""Enrich one window of bulk operations: pick each operation's pipeline, look up stored documents,
run the enrichers, and turn every operation into bytes to forward or a per-item error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sidecar.enrichment import EnrichResult, EnrichTask
from sidecar.errors import DocumentError, RetriableInferenceError
from sidecar.hook import items
from sidecar.hook.bulk import BulkOp
from sidecar.hook.documents import (
    RewrittenUpdate,
    UpdatePlan,
    apply_update,
    dumps,
    parse_object,
    plan_update,
    touched_fields,
    with_additions,
)
from sidecar.hook.pipelines import HookPipeline, PipelineSelector, concrete_index
from sidecar.hook.scripts import replacement_script
from sidecar.observability import metrics

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What becomes of one operation: its (maybe enriched) lines to forward, or our own item answer."""

    action: bytes
    source: bytes | None = None  # None for `delete`
    error: dict[str, Any] | None = None
    companion: bytes | None = None  # a scripted update replacing the enriched fields, sent right after

    @property
    def forward(self) -> bytes | None:
        if self.error is not None:
            return None
        lines = self.action + b"\n" + (b"" if self.source is None else self.source + b"\n")
        return lines + (self.companion or b"")

    @property
    def engine_items(self) -> int:
        """How many items of the engine's answer belong to this operation."""
        return 0 if self.error is not None else 1 + (self.companion is not None)

    @classmethod
    def unchanged(cls, op: BulkOp) -> Outcome:
        return cls(op.action_line, op.source_line)

    @classmethod
    def failed(cls, op: BulkOp, error: dict[str, Any]) -> Outcome:
        return cls(op.action_line, None, error)


class WindowProcessor:
    def __init__(self, selector: PipelineSelector, max_document_bytes: int) -> None:
        self.selector = selector
        self.max_document_bytes = max_document_bytes

    async def process(self, ops: Sequence[BulkOp]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(ops)
        groups: dict[HookPipeline, list[int]] = defaultdict(list)
        for k, op in enumerate(ops):
            if op.oversized is not None:
                outcomes[k] = Outcome.failed(op, items.too_large(op, op.oversized, self.max_document_bytes))
                continue
            pipeline = None if op.op == "delete" else self.selector.select(op.index)
            if pipeline is None:
                outcomes[k] = Outcome.unchanged(op)
                metrics.HOOK_DOCS.labels("", "passed").inc()
            else:
                groups[pipeline].append(k)
        answers = await asyncio.gather(
            *(self._enrich(pipeline, [ops[k] for k in ks]) for pipeline, ks in groups.items())
        )
        for ks, answer in zip(groups.values(), answers, strict=True):
            for k, outcome in zip(ks, answer, strict=True):
                outcomes[k] = outcome
        return [o if o is not None else Outcome.unchanged(op) for o, op in zip(outcomes, ops, strict=True)]

    async def _enrich(self, pipeline: HookPipeline, ops: list[BulkOp]) -> list[Outcome]:
        started = time.perf_counter()
        enricher = pipeline.enricher
        bodies: list[dict[str, Any] | None] = []
        unreadable: dict[int, DocumentError] = {}
        for k, op in enumerate(ops):
            body, canonical = parse_object(op.source_line)
            if canonical is not None:
                op.source_line = canonical
            if isinstance(body, DocumentError):
                unreadable[k] = body
                body = None
            bodies.append(body)
        stored = await self._stored(pipeline, ops, bodies)
        plans: list[UpdatePlan | None] = [None] * len(ops)
        tasks: list[EnrichTask] = []
        slots: list[tuple[int, str]] = []  # (operation, "doc" | "upsert") per task
        for k, (op, body) in enumerate(zip(ops, bodies, strict=True)):
            if body is None:
                continue  # unreadable: the item's own 400 below
            previous = stored.get((op.index or "", op.doc_id or "")) if op.doc_id else None
            if op.op == "update":
                plan = plans[k] = plan_update(enricher, body, previous)
                for key, task in (("doc", plan.doc_task), ("upsert", plan.upsert_task)):
                    if task is not None:
                        tasks.append(task)
                        slots.append((k, key))
            else:
                tasks.append(EnrichTask(body, None, previous))
                slots.append((k, "doc"))
        try:
            results = await enricher.enrich(tasks) if tasks else []
        except RetriableInferenceError as exc:
            metrics.HOOK_DOCS.labels(pipeline.name, "overloaded").inc(len(ops))
            return [Outcome.failed(op, items.inference_overloaded(op, exc.cause.reason)) for op in ops]
        per_op: dict[int, dict[str, EnrichResult]] = defaultdict(dict)
        for (k, key), result in zip(slots, results, strict=True):
            per_op[k][key] = result
        outcomes = [
            self._unreadable(pipeline, op, unreadable[k])
            if k in unreadable
            else self._outcome(pipeline, op, bodies[k], plans[k], per_op.get(k, {}))
            for k, op in enumerate(ops)
        ]
        metrics.HOOK_ENRICH_SECONDS.labels(pipeline.name).observe(time.perf_counter() - started)
        return outcomes

    @staticmethod
    def _unreadable(pipeline: HookPipeline, op: BulkOp, problem: DocumentError) -> Outcome:
        """A source the hook cannot read is refused, never stored without its enrichment."""
        metrics.HOOK_DOCS.labels(pipeline.name, "failed").inc()
        return Outcome.failed(op, items.unreadable(op, problem))

    def _outcome(
        self,
        pipeline: HookPipeline,
        op: BulkOp,
        body: dict[str, Any] | None,
        plan: UpdatePlan | None,
        results: dict[str, EnrichResult],
    ) -> Outcome:
        rewritten: bytes | RewrittenUpdate | DocumentError | None = None
        if plan is not None:
            rewritten = apply_update(plan, results.get("doc"), results.get("upsert"))
        elif body is not None and "doc" in results:
            result = results["doc"]
            if result.error is not None:
                rewritten = result.error
            elif result.additions:
                rewritten = with_additions(op.source_line or b"", body, result.additions)
        if isinstance(rewritten, DocumentError):
            metrics.HOOK_DOCS.labels(pipeline.name, "failed").inc()
            return Outcome.failed(op, items.enrichment_failed(op, pipeline.name, rewritten))
        metrics.HOOK_DOCS.labels(pipeline.name, "enriched" if rewritten is not None else "passed").inc()
        if isinstance(rewritten, RewrittenUpdate):
            companion = None if rewritten.replacement is None else companion_update(op, rewritten.replacement)
            return Outcome(op.action_line, rewritten.body or op.source_line, companion=companion)
        return Outcome(op.action_line, op.source_line if rewritten is None else rewritten)

    async def _stored(
        self, pipeline: HookPipeline, ops: list[BulkOp], bodies: list[dict[str, Any] | None]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Stored documents the enrichment needs: for skip_if_unchanged, and to complete partial updates."""
        enricher = pipeline.enricher
        wanted: dict[str, list[BulkOp]] = defaultdict(list)
        for op, body in zip(ops, bodies, strict=True):
            if op.doc_id is None or body is None or op.index is None:
                continue
            if op.op == "update":
                partial = body.get("doc")
                if not isinstance(partial, dict) or not touched_fields(enricher, partial)[1]:
                    continue
            elif not enricher.lookup_paths:
                continue
            wanted[op.index].append(op)
        paths = sorted(set(enricher.lookup_paths) | set(enricher.input_paths))
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for index, group in wanted.items():
            concrete = concrete_index(index)
            if concrete is None:
                continue
            stored = await pipeline.sink.fetch_stored(
                concrete, [op.doc_id or "" for op in group], paths, [op.routing for op in group]
            )
            for doc_id, source in stored.items():
                found[(index, doc_id)] = source
        return found


def companion_update(op: BulkOp, additions: dict[str, Any]) -> bytes:
    """The scripted update that follows an enriched `update` (same document, same routing)."""
    meta: dict[str, Any] = {"_index": op.index, "_id": op.doc_id, "retry_on_conflict": 3}
    if op.routing is not None:
        meta["routing"] = op.routing
    return dumps({"update": meta}) + b"\n" + dumps({"script": replacement_script(additions)}) + b"\n"
