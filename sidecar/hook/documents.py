"""What enriching one bulk operation means, per operation type, and how its source is rewritten.

- `index` / `create`: the whole document is the input; the additions are added to it.
- `update` with `doc`: only fields whose inputs the partial document touches are recomputed; when
  it touches some but not all inputs of a field, the stored document supplies the rest. An `upsert`
  document is enriched like an indexed one. Scripted updates pass through (their result is unknown).
- `delete` passes through.

When none of the added top-level keys exists in the original source, the additions are spliced
into the client's bytes so the stored source stays byte-identical apart from the new fields.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sidecar import jsontext
from sidecar.enrichment import MISSING, Enricher, EnrichResult, EnrichTask, apply_additions, get_path
from sidecar.errors import DocumentError


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def parse_object(line: bytes | None) -> tuple[dict[str, Any] | DocumentError | None, bytes | None]:
    """The source line as an object, or why it cannot be enriched (the item then gets a 400);
    second, the line to forward in its place when it had to be read leniently.

    The engines accept comments in documents, so they are read here too; such a document is
    forwarded re-serialised (without its comments), since the additions could otherwise be
    spliced into a trailing comment and the document stored without them.
    """
    if line is None:
        return None, None
    try:
        value, lenient = jsontext.parse(line)
    except ValueError as exc:
        return _unparsable(str(exc)), None
    if not isinstance(value, dict):
        return _unparsable(f"expected an object, found [{type(value).__name__}]"), None
    return value, dumps(value) if lenient else None


def _unparsable(detail: str) -> DocumentError:
    return DocumentError("mapper_parsing_exception", f"failed to parse: {detail}")


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`update` merged over `base` as the engine merges a partial document (objects recursively)."""
    out = dict(base)
    for key, value in update.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = deep_merge(current, value)
        else:
            out[key] = value
    return out


def with_additions(
    original: bytes, doc: Mapping[str, Any], additions: Mapping[str, Any]
) -> bytes | DocumentError:
    """The source with the additions: spliced into the original bytes when that is safe."""
    tops = {path.split(".", 1)[0] for path in additions}
    if doc and not tops & doc.keys():
        text = original.rstrip()
        if text.endswith(b"}"):
            extra = dumps(_nested_copy(additions))[1:-1]
            return text[:-1] + b"," + extra + b"}"
    enriched = copy.deepcopy(dict(doc))
    problem = apply_additions(enriched, additions)
    return problem if problem is not None else dumps(enriched)


def _nested_copy(additions: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    apply_additions(out, additions)
    return out


@dataclass
class UpdatePlan:
    """The enrichment tasks of one `update` body and where their results go."""

    body: dict[str, Any]
    doc_task: EnrichTask | None = None
    upsert_task: EnrichTask | None = None
    needs_stored: bool = False  # the partial doc touches only some inputs of a field
    # The touched fields' target and hash paths: removed when their new text gives no value (an
    # input now empty or absent), so no vector of the old text stays behind.
    cleared: dict[str, None] = field(default_factory=dict)


@dataclass(frozen=True)
class RewrittenUpdate:
    """The client's update (its `upsert` enriched) and, when its `doc` changed inputs, a scripted
    update that replaces the enriched fields right after it (see `sidecar.hook.scripts`)."""

    body: bytes | None  # None: the client's body as sent
    replacement: dict[str, Any] | None = None  # additions for the companion scripted update


def touched_fields(enricher: Enricher, partial: Mapping[str, Any]) -> tuple[list[int], bool]:
    """Fields whose inputs `partial` touches, and whether any of them misses other inputs."""
    touched: list[int] = []
    incomplete = False
    for i, spec in enumerate(enricher.fields):
        present = [get_path(partial, path) is not MISSING for path in spec.input]
        if any(present):
            touched.append(i)
            incomplete = incomplete or not all(present)
    return touched, incomplete


def plan_update(enricher: Enricher, body: dict[str, Any], stored: Mapping[str, Any] | None) -> UpdatePlan:
    """Tasks for an update body; `stored` is the stored document's inputs when it was fetched."""
    plan = UpdatePlan(body)
    partial = body.get("doc")
    if isinstance(partial, dict) and "script" not in body:
        touched, incomplete = touched_fields(enricher, partial)
        plan.needs_stored = bool(touched) and incomplete
        if touched and (not incomplete or stored is not None):
            source = deep_merge(stored, partial) if incomplete and stored is not None else partial
            plan.doc_task = EnrichTask(source, touched)
        elif touched and body.get("doc_as_upsert") is True:
            plan.doc_task = EnrichTask(partial, touched)  # no stored document: the partial one is created
        # else: no stored document to complete the inputs; the engine answers `document_missing`.
        if plan.doc_task is not None:
            specs = [enricher.fields[i] for i in touched]
            plan.cleared = {path: None for spec in specs for path in (spec.target, spec.hash_path)}
    upsert = body.get("upsert")
    if isinstance(upsert, dict):
        plan.upsert_task = EnrichTask(upsert)
    return plan


def apply_update(
    plan: UpdatePlan, doc_result: EnrichResult | None, upsert_result: EnrichResult | None
) -> RewrittenUpdate | DocumentError | None:
    """The rewritten update, a failure, or None when nothing changes."""
    for result in (doc_result, upsert_result):
        if result is not None and result.error is not None:
            return result.error
    body = plan.body
    changed = False
    if upsert_result is not None and upsert_result.additions:
        upsert = copy.deepcopy(body["upsert"])
        problem = apply_additions(upsert, upsert_result.additions)
        if problem is not None:
            return problem
        body = {**body, "upsert": upsert}
        changed = True
    replacement = (
        {**plan.cleared, **doc_result.additions} if doc_result is not None and plan.cleared else None
    )
    if not changed and replacement is None:
        return None
    return RewrittenUpdate(dumps(body) if changed else None, replacement)
