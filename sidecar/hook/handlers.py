"""The two request shapes the hook serves: a bulk (NDJSON, streamed) and a single document."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sidecar.errors import BodyTooLargeError, RequestValidationError, SidecarError
from sidecar.hook import items
from sidecar.hook.bulk import BulkOp, read_operations
from sidecar.hook.ndjson import split_lines
from sidecar.hook.spool import Spool
from sidecar.hook.state import Hook
from sidecar.hook.upstream import UpstreamAnswer
from sidecar.hook.window import Outcome

# Applied by the hook to the merged answer when it adds items of its own (never forwarded then).
RENDER_PARAMS = frozenset({"filter_path", "pretty", "human", "error_trace"})
WINDOW_BYTES = 4 * 1024 * 1024
NDJSON = "application/x-ndjson"


Answer = dict[str, Any] | int  # the hook's own item, or how many engine items answer the operation


async def enrich_stream(hook: Hook, ops: AsyncIterator[BulkOp], spool: Spool) -> list[Answer]:
    """Enrich the operations window by window into `spool`; per operation, its `Answer`."""
    answers: list[Answer] = []
    window: list[BulkOp] = []
    size = 0
    window_docs = hook.settings.hook_window_docs

    async def flush() -> None:
        nonlocal size
        outcomes: list[Outcome] = await hook.processor.process(window)
        await spool.write(b"".join(o.forward for o in outcomes if o.forward is not None))
        answers.extend(o.error if o.error is not None else o.engine_items for o in outcomes)
        window.clear()
        size = 0

    async for op in ops:
        window.append(op)
        size += len(op.action_line) + len(op.source_line or b"")
        if len(window) >= window_docs or size >= WINDOW_BYTES:
            await flush()
    if window:
        await flush()
    return answers


def merge_items(answers: Sequence[Answer], engine: dict[str, Any], took_ms: int) -> dict[str, Any]:
    """The engine's bulk answer with the hook's own items put back at their positions.

    An enriched update has two engine items (the client's update, then the scripted replacement of
    the enriched fields): the client sees the first failure, else the client's own update.
    """
    engine_items = engine.get("items")
    expected = sum(a for a in answers if isinstance(a, int))
    if not isinstance(engine_items, list) or len(engine_items) != expected:
        count = len(engine_items) if isinstance(engine_items, list) else "no"
        raise SidecarError(f"the engine answered {count} bulk items for {expected} operations")
    merged: list[dict[str, Any]] = []
    pos = 0
    for answer in answers:
        if isinstance(answer, dict):
            merged.append(answer)
            continue
        mine = engine_items[pos : pos + answer]
        pos += answer
        merged.append(next((item for item in mine if _failed(item)), mine[0]))
    return {**engine, "took": took_ms, "errors": any(_failed(item) for item in merged), "items": merged}


def _failed(item: dict[str, Any]) -> bool:
    body: Any = next(iter(item.values()), None)
    return isinstance(body, dict) and "error" in body


async def handle_bulk(
    hook: Hook,
    path: str,
    params: Sequence[tuple[str, str]],
    body: AsyncIterator[bytes],
    *,
    default_index: str | None,
    authorization: str | None,
) -> UpstreamAnswer | dict[str, Any]:
    """The engine's answer to pass on verbatim, or the merged body when the hook added items."""
    started = time.perf_counter()
    routing = next((v for k, v in params if k == "routing"), None)
    lines = split_lines(body, hook.settings.hook_max_document_bytes)
    spool = Spool(hook.settings.hook_spool_memory_bytes)
    try:
        answers = await enrich_stream(hook, read_operations(lines, default_index, routing), spool)
        if not answers:
            raise RequestValidationError("Validation Failed: 1: no requests added;")
        own = any(not isinstance(a, int) or a != 1 for a in answers)
        if all(isinstance(a, dict) for a in answers):
            return {"took": _ms(started), "errors": True, "items": answers}
        forwarded_params = [(k, v) for k, v in params if not (own and k in RENDER_PARAMS)]
        answer = await hook.upstream.send(
            "POST",
            path,
            forwarded_params,
            spool.body(),
            NDJSON,
            client_authorization=authorization,
            content_length=spool.size,
        )
    finally:
        spool.close()
    if not own or answer.status != 200:
        return answer
    try:
        engine = json.loads(answer.body)
    except ValueError as exc:
        raise SidecarError(f"the engine's bulk answer is not JSON: {answer.body[:200]!r}") from exc
    return merge_items(answers, engine, _ms(started))


async def handle_document(
    hook: Hook,
    method: str,
    path: str,
    params: Sequence[tuple[str, str]],
    body: bytes,
    *,
    index: str,
    doc_id: str | None,
    create: bool,
    authorization: str | None,
) -> UpstreamAnswer | tuple[int, dict[str, Any]]:
    """Enrich and forward one document; an enrichment failure is the request's error."""
    limit = hook.settings.hook_max_document_bytes
    if len(body) > limit:
        raise BodyTooLargeError(f"document of [{len(body)}] bytes exceeds the limit of [{limit}] bytes")
    op_type = dict(params).get("op_type")
    routing = dict(params).get("routing")
    op = BulkOp(0, "create" if create or op_type == "create" else "index", index, doc_id, routing, b"", body)
    outcome = (await hook.processor.process([op]))[0]
    if outcome.error is not None:
        return items.whole_request_error(outcome.error)
    return await hook.upstream.send(
        method, path, params, outcome.source or body, "application/json", client_authorization=authorization
    )


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
