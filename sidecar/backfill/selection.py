"""Which documents a backfill reads, and which of their fields it recomputes.

- `missing` (default): documents without a field's content hash, and then only the fields whose
  target is absent too (a vector written without a hash is left alone). `rank_features` fields
  cannot be queried for existence, hence the hash, which the backfill always writes.
- `changed`: every document; a field is recomputed when its stored hash differs from the hash of
  the current text (or is absent).
- `all` (`--force`): every field of every document.
A user query (`--query`) narrows any of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from sidecar.enrichment import MISSING, Enricher, content_hash, get_path
from sidecar.pipelines.schema import FieldConfig


class Mode(StrEnum):
    MISSING = "missing"
    CHANGED = "changed"
    ALL = "all"


def build_query(
    mode: Mode, fields: Sequence[FieldConfig], user_query: Mapping[str, Any] | None
) -> dict[str, Any]:
    filters: list[Any] = [dict(user_query)] if user_query else []
    if mode is Mode.MISSING:
        lacking = [{"bool": {"must_not": [{"exists": {"field": f.hash_path}}]}} for f in fields]
        filters.append({"bool": {"should": lacking, "minimum_should_match": 1}})
    if not filters:
        return {"match_all": {}}
    return {"bool": {"filter": filters}}


def source_paths(mode: Mode, fields: Sequence[FieldConfig], *, full: bool = False) -> Any:
    """`_source` of the scan: the inputs and hashes (and targets in `missing` mode), or everything."""
    if full:
        return True
    paths = {p for f in fields for p in f.input} | {f.hash_path for f in fields}
    if mode is Mode.MISSING:
        paths |= {f.target for f in fields}
    return sorted(paths)


def fields_to_do(mode: Mode, enricher: Enricher, source: Mapping[str, Any]) -> list[int]:
    """Indices of the fields this document needs recomputed."""
    todo: list[int] = []
    for i, spec in enumerate(enricher.fields):
        stored_hash = get_path(source, spec.hash_path)
        if mode is Mode.ALL:
            todo.append(i)
        elif mode is Mode.MISSING:
            if stored_hash is MISSING and get_path(source, spec.target) is MISSING:
                todo.append(i)
        else:
            text = enricher.input_text(spec, source)
            if stored_hash is MISSING or not isinstance(text, str) or stored_hash != content_hash(spec, text):
                todo.append(i)
    return todo
