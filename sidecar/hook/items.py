"""Per-item answers the hook writes itself, in Elasticsearch's bulk item and error shapes."""

from __future__ import annotations

from typing import Any

from sidecar.errors import DocumentError
from sidecar.hook.bulk import BulkOp


def item_error(
    op: BulkOp, status: int, es_type: str, reason: str, caused_by: dict[str, Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": es_type, "reason": reason, "index": op.index}
    if caused_by is not None:
        error["caused_by"] = caused_by
    return {op.op: {"_index": op.index, "_id": op.doc_id, "status": status, "error": error}}


def enrichment_failed(op: BulkOp, pipeline: str, problem: DocumentError) -> dict[str, Any]:
    return item_error(
        op,
        400,
        "illegal_argument_exception",
        f"pipeline [{pipeline}] cannot enrich the document: {problem.reason}",
        {"type": problem.error_type, "reason": problem.reason},
    )


def unreadable(op: BulkOp, problem: DocumentError) -> dict[str, Any]:
    """A source that is not a readable JSON object (the engines answer these with the same type)."""
    return item_error(op, 400, problem.error_type, problem.reason)


def inference_overloaded(op: BulkOp, reason: str) -> dict[str, Any]:
    """429: clients (the official helpers included) retry these items."""
    return item_error(op, 429, "es_rejected_execution_exception", f"inference unavailable: {reason}")


def too_large(op: BulkOp, size: int, limit: int) -> dict[str, Any]:
    return item_error(
        op,
        413,
        "request_entity_too_large_exception",
        f"document of at least [{size}] bytes exceeds the limit of [{limit}] bytes",
    )


def whole_request_error(item: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A per-item error as the error answer of a single-document request."""
    body = next(iter(item.values()))
    error = dict(body["error"])
    error.pop("index", None)
    cause = {"type": error["type"], "reason": error["reason"]}
    return int(body["status"]), {"error": {"root_cause": [cause], **error}, "status": body["status"]}
