"""Encode a dataset's corpus and queries through the project's own enricher, with a disk cache.

Documents go through `sidecar.enrichment.Enricher` exactly as the pipeline's worker sends
them (inputs joined by a newline, the field's chunking, chunk vectors max-combined); pruning is
left out here and applied when indexing, so one cached encoding serves every `--doc-top-k`.
Queries go through the search helper's encoder (`input_type=search` for dense endpoints).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.enrichment import MISSING, Enricher, get_path
from sidecar.errors import DocumentError, InferenceFailedError
from sidecar.eval.cache import (
    DenseVectors,
    SparseVectors,
    cache_path,
    load_dense,
    load_sparse,
    save_dense,
    save_sparse,
)
from sidecar.eval.dataset import Dataset
from sidecar.inference.types import InferenceServiceProtocol
from sidecar.pipelines.schema import FieldConfig
from sidecar.search.encode import QueryEncoder

DOC_BATCH = 64  # documents per enricher call (one request; well inside the 30 s inference timeout)
QUERY_CONCURRENCY = 32

Progress = Callable[[int], None]  # called with the number of documents just encoded
LoadModels = Callable[[Sequence[str]], Awaitable[None]]  # loads endpoints' models (with progress)


@dataclass
class Encodings:
    docs: dict[str, Any]  # doc id -> sparse dict or dense list
    queries: dict[str, Any]  # query id -> sparse dict or dense list
    seconds: float  # inference time spent now (0 when everything came from the cache)
    version: str = ""  # identifies the cached document vectors (an index built from others is stale)


def _paths(
    root: Path, spec: FieldConfig, dataset: Dataset, max_length: int, endpoint_config: Any
) -> tuple[Path, Path]:
    kind = "sparse" if spec.type.sparse else "dense"
    # The endpoint's own settings (model, chunking) matter as much as the field's.
    extra = {"input": list(spec.input), "chunking": spec.chunking, "endpoint": endpoint_config}
    name = f"{dataset.name}-{dataset.fingerprint}"
    return (
        cache_path(root, kind=f"{kind}-docs", dataset=name, endpoint=spec.endpoint, max_length=max_length,
                   extra=extra),
        cache_path(root, kind=f"{kind}-queries", dataset=name, endpoint=spec.endpoint, max_length=max_length,
                   extra=endpoint_config),
    )


async def encode_documents(
    spec: FieldConfig, service: InferenceServiceProtocol, dataset: Dataset, progress: Progress | None = None
) -> dict[str, Any]:
    """Field values for every document (unpruned); a document the enricher rejects is an error."""
    unpruned = spec.model_copy(update={"pruning": None})
    enricher = Enricher([unpruned], service)
    # Similar lengths side by side: less padding inside the batcher's batches.
    ids = sorted(dataset.corpus, key=lambda d: len(dataset.corpus[d].title) + len(dataset.corpus[d].text))
    out: dict[str, Any] = {}
    for start in range(0, len(ids), DOC_BATCH):
        chunk = ids[start : start + DOC_BATCH]
        docs = [{"title": dataset.corpus[d].title, "text": dataset.corpus[d].text} for d in chunk]
        written = await enricher.write(docs)
        for doc_id, doc in zip(chunk, written, strict=True):
            if isinstance(doc, DocumentError):
                raise InferenceFailedError(f"document [{doc_id}] could not be encoded: {doc.reason}")
            value = get_path(doc, spec.target)
            if value is MISSING:  # an empty text gets no vector
                value = {} if spec.type.sparse else None
            out[doc_id] = value
        if progress is not None:
            progress(len(chunk))
    return out


async def encode_queries(spec: FieldConfig, encoder: QueryEncoder, dataset: Dataset) -> dict[str, Any]:
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def one(text: str) -> Any:
        async with gate:
            if spec.type.sparse:
                return await encoder.sparse(spec.endpoint, text)
            return await encoder.dense(spec.endpoint, text)

    values = await asyncio.gather(*(one(t) for t in dataset.queries.values()))
    return dict(zip(dataset.queries, values, strict=True))


async def encodings_for(
    spec: FieldConfig,
    dataset: Dataset,
    *,
    cache_dir: Path,
    max_length: int,
    service: InferenceServiceProtocol,
    endpoint_config: Any = None,
    progress: Progress | None = None,
    load_models: LoadModels | None = None,
) -> Encodings:
    """Cached encodings, computing (and caching) what is missing; `endpoint_config` (the endpoint's
    settings) is part of the cache key. Models load only when something must be encoded, through
    `load_models` first when given (a terminal sees that a model is loading)."""
    from sidecar.search.encode import ServiceQueryEncoder

    sparse = spec.type.sparse
    doc_path, query_path = _paths(cache_dir, spec, dataset, max_length, endpoint_config)
    load = load_sparse if sparse else load_dense
    docs: SparseVectors | DenseVectors | None = load(doc_path)
    queries: SparseVectors | DenseVectors | None = load(query_path)
    started = time.perf_counter()
    computed = False
    docs_stale = docs is None or set(docs) != set(dataset.corpus)
    queries_stale = queries is None or set(queries) != set(dataset.queries)
    if load_models is not None and (docs_stale or queries_stale):
        await load_models([spec.endpoint])
    if docs is None or docs_stale:  # `docs is None` again for the type checker
        docs = await encode_documents(spec, service, dataset, progress)
        (save_sparse if sparse else save_dense)(doc_path, docs)  # type: ignore[arg-type]
        computed = True
    elif progress is not None:
        progress(len(docs))
    if queries is None or queries_stale:
        queries = await encode_queries(spec, ServiceQueryEncoder(service), dataset)
        (save_sparse if sparse else save_dense)(query_path, queries)  # type: ignore[arg-type]
        computed = True
    stat = doc_path.stat()
    version = f"{doc_path.name}:{stat.st_size}:{stat.st_mtime_ns}"
    return Encodings(docs, queries, time.perf_counter() - started if computed else 0.0, version)
