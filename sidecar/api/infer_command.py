"""`sidecar infer "some text"`: an ad-hoc inference for people at a terminal.

Runs the packaged models in-process (no server needed; the model loads before the request's time
limit starts, with a progress line on stderr when that takes over a second), or asks a running
sidecar with `--url`.
Prints the heaviest tokens for sparse results, a summary for dense vectors, the ranking for
rerank, or the raw Elasticsearch answer with `--json`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from sidecar.api.results import inference_body
from sidecar.errors import SidecarError
from sidecar.inference.loading import load_models
from sidecar.settings import Settings

DEFAULT_ENDPOINT = ".splade-tiny"


async def infer_body(
    texts: list[str],
    *,
    endpoint: str,
    settings: Settings,
    url: str | None = None,
    api_key: str | None = None,
    query: str | None = None,
) -> dict[str, Any]:
    """The Elasticsearch perform-inference answer for `texts`."""
    if url is not None:
        return await _remote(texts, endpoint=endpoint, url=url, api_key=api_key, query=query)
    from sidecar.inference.service import InferenceService  # torch loads here, not at CLI start

    service = InferenceService.from_settings(settings)
    try:
        # The model loads first, outside the request's time limit, and says so when it takes a while.
        await load_models(service, [endpoint])
        output = await service.infer(endpoint, texts, query=query)
    finally:
        await service.close()
    return inference_body(output)


async def _remote(
    texts: list[str], *, endpoint: str, url: str, api_key: str | None, query: str | None
) -> dict[str, Any]:
    headers = {"Authorization": f"ApiKey {api_key}"} if api_key else {}
    payload: dict[str, Any] = {"input": texts}
    if query is not None:
        payload["query"] = query
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60.0) as client:
        response = await client.post(f"/_inference/{endpoint}", json=payload)
    body: dict[str, Any] = response.json()
    if response.status_code >= 400:
        error = body.get("error", {})
        reason = error.get("reason", error) if isinstance(error, dict) else error
        kind = error.get("type", "error") if isinstance(error, dict) else "error"
        raise SidecarError(str(reason), status=response.status_code, es_type=kind)
    return body


def render(body: dict[str, Any], texts: list[str], *, top: int, console: Console) -> None:
    """Human-readable tables for an Elasticsearch inference answer."""
    if "sparse_embedding" in body:
        for text, entry in zip(texts, body["sparse_embedding"], strict=False):
            weights = sorted(entry["embedding"].items(), key=lambda kv: kv[1], reverse=True)
            console.print(f"{text[:60]!r}: {len(weights)} tokens")
            table = Table()
            table.add_column("token")
            table.add_column("weight", justify="right")
            for token, weight in weights[:top]:
                table.add_row(token, f"{weight:.4f}")
            console.print(table)
        return
    dense_key = next((k for k in body if k.startswith("text_embedding")), None)
    if dense_key is not None:
        for text, entry in zip(texts, body[dense_key], strict=False):
            vector = entry["embedding"]
            norm = math.sqrt(sum(v * v for v in vector))
            head = ", ".join(f"{v:.4f}" for v in vector[:6])
            console.print(f"{text[:60]!r}: {len(vector)} dims, L2 norm {norm:.4f}, [{head}, ...]")
        return
    if "rerank" in body:
        table = Table(title="rerank")
        for column in ("index", "score", "text"):
            table.add_column(column)
        for entry in body["rerank"]:
            table.add_row(str(entry["index"]), f"{entry['relevance_score']:.4f}", texts[entry["index"]][:60])
        console.print(table)
        return
    console.print_json(json.dumps(body))
