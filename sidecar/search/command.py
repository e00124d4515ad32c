"""`sidecar search`: run one query against the index a pipeline fills and print the hits."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sidecar.errors import SidecarError
from sidecar.search.searcher import SearchResult, search
from sidecar.settings import Settings

SNIPPET = 100


def _snippet(source: dict[str, object]) -> str:
    text = " | ".join(str(v) for v in source.values() if isinstance(v, str) and v)
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


def render(result: SearchResult, console: Console) -> None:
    table = Table()
    for column, justify in (("#", "right"), ("_id", "left"), ("score", "right"), ("text", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for rank, hit in enumerate(result.hits, start=1):
        table.add_row(str(rank), hit.doc_id, f"{hit.score:.4f}", _snippet(hit.source))
    console.print(table)
    how = " + ".join(result.methods)
    if result.fusion is not None and result.weights is not None:
        how += f", {result.fusion.value} fusion, weights {'/'.join(f'{w:g}' for w in result.weights)}"
    if result.query_terms is not None:
        how += f", {result.query_terms} query terms"
    console.print(f"[dim]{how}[/]")


def search_command(
    pipeline: Path,
    text: str,
    *,
    k: int,
    hybrid: bool,
    fusion: str,
    weights: str | None,
    query_top_k: int,
    as_json: bool,
    settings: Settings | None = None,
) -> int:
    try:
        result = asyncio.run(
            search(pipeline, text, k=k, hybrid=hybrid, fusion=fusion, weights=weights,
                   query_top_k=query_top_k or None, settings=settings)
        )
    except SidecarError as err:
        Console(stderr=True).print(f"error: {err.es_type}: {err.reason}", markup=False, soft_wrap=True)
        return 1
    if as_json:
        print(json.dumps({"hits": [asdict(h) for h in result.hits]}, ensure_ascii=False))
    else:
        render(result, Console())
    return 0
