"""Bulk operations read one by one from NDJSON lines: an action line, then a source line (not for delete).

Action lines are parsed (the hook needs the index, id and routing); source lines stay as the bytes
the client sent until an enrichment decides otherwise, so passed-through documents are untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from sidecar import jsontext
from sidecar.errors import IllegalArgumentError, RequestValidationError
from sidecar.hook.ndjson import Line, Oversized

OPERATIONS = ("create", "delete", "index", "update")


@dataclass
class BulkOp:
    position: int  # 0-based place of the item in the request (and in the response)
    op: str  # create | delete | index | update
    index: str | None  # from the action, else the path's default index
    doc_id: str | None
    routing: str | None
    action_line: bytes
    source_line: bytes | None = None
    oversized: int | None = None  # the source line's size when it exceeded the per-document limit


def _malformed(line_no: int, detail: str) -> IllegalArgumentError:
    return IllegalArgumentError(f"Malformed action/metadata line [{line_no}], {detail}")


def parse_action(line: bytes, line_no: int) -> tuple[str, dict[str, Any]]:
    try:  # deep nesting and invalid text are refused here, not met later as a 500
        action = jsontext.loads(line)
    except ValueError:
        raise _malformed(line_no, "expected START_OBJECT but found invalid JSON") from None
    if not isinstance(action, dict) or len(action) != 1:
        raise _malformed(line_no, "expected an object with exactly one action")
    op, meta = next(iter(action.items()))
    if op not in OPERATIONS:
        raise _malformed(line_no, f"expected field [create], [delete], [index] or [update] but found [{op}]")
    if not isinstance(meta, dict):
        raise _malformed(line_no, f"expected START_OBJECT after [{op}]")
    return op, meta


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def read_operations(
    lines: AsyncIterable[Line], default_index: str | None, default_routing: str | None = None
) -> AsyncIterator[BulkOp]:
    """Yield operations in request order; malformed structure fails the whole request (as in ES)."""
    position = 0
    line_no = 0
    current: BulkOp | None = None
    async for line in lines:
        line_no += 1
        if current is not None:  # this line is the source of `current`
            if isinstance(line, Oversized):
                current.oversized = line.size
            else:
                current.source_line = line
            yield current
            current = None
            continue
        if isinstance(line, Oversized):
            raise _malformed(line_no, f"the line of [{line.size}] bytes exceeds the per-document limit")
        if not line.strip():
            continue  # blank lines between operations are tolerated
        op, meta = parse_action(line, line_no)
        index = _text(meta.get("_index")) or default_index
        if index is None:
            raise RequestValidationError(
                f"Validation Failed: 1: index is missing for the action on line [{line_no}];"
            )
        item = BulkOp(
            position=position,
            op=op,
            index=index,
            doc_id=_text(meta.get("_id")),
            routing=_text(meta.get("routing", meta.get("_routing"))) or default_routing,
            action_line=line,
        )
        position += 1
        if op == "delete":
            yield item
        else:
            current = item
    if current is not None:
        raise _malformed(line_no, f"the [{current.op}] action has no source line")
