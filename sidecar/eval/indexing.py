"""Build (or reuse) the evaluation index: title and text as English-analysed text fields, the sparse
`rank_features` field beside them, and a vector field where the engine has one (the same mapping
`sidecar setup` gives a pipeline's `dense_vector` target: OpenSearch's `knn_vector` on the Lucene
engine, Elasticsearch's `dense_vector`), searched with the engine's kNN query.

OpenSearch without its k-NN plugin has no vector field type: dense scoring then happens by brute
force in Python (`sidecar.eval.dense`) and the report says so. The index records what built it in
its mapping's `_meta`, so a re-run with the same inputs reuses it instead of re-indexing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sidecar.errors import SidecarError
from sidecar.eval.dataset import Dataset
from sidecar.pipelines.schema import Engine
from sidecar.rank_features import Pruning, clean_features
from sidecar.search.engine import EngineClient, knn_support
from sidecar.sinks.setup import dense_mapping

SPARSE_FIELD, DENSE_FIELD = "sparse", "dense"
TEXT_FIELDS = ("title", "text")
BULK_DOCS = 250


@dataclass(frozen=True)
class IndexInfo:
    name: str
    docs: int
    size_bytes: int | None
    seconds: float  # time spent indexing now (0 when reused)
    reused: bool
    sparse_postings: int  # total (doc, token) pairs after pruning


engine_scores_dense = knn_support  # Elasticsearch has `dense_vector`; OpenSearch only with k-NN


def mapping(
    engine: str, dense_dims: int | None, meta: Mapping[str, Any], bm25: tuple[float, float] | None = None
) -> dict[str, Any]:
    """`dense_dims` None: no vector field (brute force instead); `bm25`: (k1, b) instead of the
    engine's defaults (1.2, 0.75), e.g. Anserini's (0.9, 0.4)."""
    props: dict[str, Any] = {name: {"type": "text", "analyzer": "english"} for name in TEXT_FIELDS}
    props[SPARSE_FIELD] = {"type": "rank_features"}
    # One shard: BM25 statistics over the whole corpus, as the published baselines have them.
    settings: dict[str, Any] = {"number_of_shards": 1, "number_of_replicas": 0}
    if bm25 is not None:
        settings["similarity"] = {"default": {"type": "BM25", "k1": bm25[0], "b": bm25[1]}}
    if dense_dims:
        if engine == "opensearch":
            settings["knn"] = True
        props[DENSE_FIELD] = dense_mapping(Engine(engine), dense_dims)
    return {"settings": settings, "mappings": {"_meta": dict(meta), "properties": props}}


async def _existing_meta(client: EngineClient, index: str) -> dict[str, Any] | None:
    answer = await client.request("GET", f"/{index}/_mapping", ok=(404,))
    if "error" in answer:
        return None
    mappings = answer.get(index, {}).get("mappings", {})
    meta = mappings.get("_meta")
    return meta if isinstance(meta, dict) else None


async def store_size(client: EngineClient, index: str) -> int | None:
    try:
        stats = await client.request("GET", f"/{index}/_stats/store")
        return int(stats["_all"]["primaries"]["store"]["size_in_bytes"])
    except (SidecarError, KeyError, TypeError, ValueError):
        return None


async def _bulk(client: EngineClient, index: str, docs: list[tuple[str, dict[str, Any]]]) -> None:
    lines = []
    for doc_id, source in docs:
        lines.append(json.dumps({"index": {"_index": index, "_id": doc_id}}))
        lines.append(json.dumps(source, ensure_ascii=False))
    body = ("\n".join(lines) + "\n").encode("utf-8")
    answer = await client.request(
        "POST", "/_bulk", content=body, headers={"content-type": "application/x-ndjson"}
    )
    if answer.get("errors"):
        failed = [i for i in answer["items"] if next(iter(i.values())).get("error")]
        first = next(iter(failed[0].values())) if failed else {}
        raise SidecarError(f"{len(failed)} documents failed to index, first: {first.get('error')}")


async def build_index(
    client: EngineClient,
    index: str,
    dataset: Dataset,
    sparse: Mapping[str, dict[str, float]],
    dense: Mapping[str, list[float]] | None,
    *,
    pruning: Pruning,
    engine: str,
    engine_dense: bool,
    meta: Mapping[str, Any],
    reindex: bool = False,
    bm25: tuple[float, float] | None = None,
) -> IndexInfo:
    """Index every document (title, text, pruned sparse vector, dense vector where supported)."""
    pruned = {doc_id: clean_features(sparse.get(doc_id, {}), pruning) for doc_id in dataset.corpus}
    postings = sum(len(v) for v in pruned.values())
    if not reindex and await _existing_meta(client, index) == dict(meta):
        count = await client.request("GET", f"/{index}/_count")
        if count.get("count") == len(dataset.corpus):
            return IndexInfo(index, len(dataset.corpus), await store_size(client, index), 0.0, True, postings)
    started = time.perf_counter()
    await client.request("DELETE", f"/{index}", ok=(404,))
    dims = len(next(iter(dense.values()))) if dense and engine_dense else None
    await client.request("PUT", f"/{index}", body=mapping(engine, dims, meta, bm25))
    batch: list[tuple[str, dict[str, Any]]] = []
    for doc_id, doc in dataset.corpus.items():
        source: dict[str, Any] = {"title": doc.title, "text": doc.text}
        if pruned[doc_id]:
            source[SPARSE_FIELD] = pruned[doc_id]
        if engine_dense and dense is not None and dense.get(doc_id):
            source[DENSE_FIELD] = dense[doc_id]
        batch.append((doc_id, source))
        if len(batch) >= BULK_DOCS:
            await _bulk(client, index, batch)
            batch = []
    if batch:
        await _bulk(client, index, batch)
    await client.request("POST", f"/{index}/_refresh")
    # One segment: comparable sizes between runs, and scoring independent of merge timing.
    await client.request("POST", f"/{index}/_forcemerge", params={"max_num_segments": "1"})
    await client.request("POST", f"/{index}/_refresh")
    seconds = time.perf_counter() - started
    return IndexInfo(index, len(dataset.corpus), await store_size(client, index), seconds, False, postings)
