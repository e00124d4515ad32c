"""Run every query of a dataset with each base method and score the rankings.

BM25 and sparse always run in the engine (through the search helper's query bodies); dense runs
as engine kNN where the index has a vector field, else by exact brute force in Python.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sidecar.eval import metrics
from sidecar.eval.dataset import Dataset
from sidecar.eval.dense import BruteForceIndex
from sidecar.eval.encoding import Encodings
from sidecar.eval.indexing import DENSE_FIELD, SPARSE_FIELD, TEXT_FIELDS
from sidecar.eval.methods import Hybrid, RankedRun, fuse_runs, weight_grid
from sidecar.pipelines.schema import Engine
from sidecar.search.engine import EngineClient, Hit
from sidecar.search.fusion import Fusion
from sidecar.search.queries import Bm25Type, prune_query
from sidecar.search.searcher import Searcher, SearchTarget

DEPTH = 100  # per method; what Recall@100 needs and what fusion draws from
QUERY_CONCURRENCY = 8
BM25_MULTIFIELD = "bm25 multifield"  # a reference row: the harness check against published BM25
Ranked = list[tuple[str, float]]


@dataclass
class MethodScore:
    name: str
    ndcg10: float
    recall100: float
    note: str = ""


class _CachedEncoder:
    """Query vectors from the precomputed encodings, looked up by query text."""

    def __init__(self, sparse: Mapping[str, dict[str, float]], dense: Mapping[str, list[float]]) -> None:
        self._sparse, self._dense = sparse, dense

    async def sparse(self, endpoint: str, text: str) -> dict[str, float]:
        return self._sparse[text]

    async def dense(self, endpoint: str, text: str) -> list[float]:
        return self._dense[text]


async def _each_query(dataset: Dataset, one: Callable[[str, str], Awaitable[list[Hit]]]) -> RankedRun:
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def limited(qid: str, text: str) -> tuple[str, Ranked]:
        async with gate:
            return qid, [(h.doc_id, h.score) for h in await one(qid, text)]

    return dict(await asyncio.gather(*(limited(q, t) for q, t in dataset.queries.items())))


async def retrieve_all(
    client: EngineClient,
    engine: Engine,
    index: str,
    dataset: Dataset,
    sparse: Encodings,
    dense: Encodings | None,
    *,
    engine_dense: bool,
    query_top_k: int | None,
) -> tuple[dict[str, RankedRun], dict[str, str]]:
    """Per method, the top `DEPTH` of every query; and a note on how each method ran."""
    queries = dataset.queries
    target = SearchTarget(
        engine=engine, index=index, text_fields=TEXT_FIELDS, sparse_field=SPARSE_FIELD,
        dense_field=DENSE_FIELD if engine_dense else None,
        sparse_endpoint="cached", dense_endpoint="cached" if dense is not None else None,
    )
    encoder = _CachedEncoder(
        {queries[q]: v for q, v in sparse.queries.items()},
        {queries[q]: v for q, v in dense.queries.items()} if dense is not None else {},
    )
    searcher = Searcher(target, client, encoder, query_top_k=query_top_k, depth=DEPTH, source=False)
    summed = Searcher(target, client, encoder, depth=DEPTH, source=False, bm25_type=Bm25Type.MOST_FIELDS)
    runs: dict[str, RankedRun] = {}
    notes = {
        BM25_MULTIFIELD: "engine, per-field scores summed (most_fields): the published baseline's shape",
        "bm25": "engine, best field + 0.5 x others (best_fields): what search uses",
        "sparse": f"engine rank_feature dot product, query top-{query_top_k or 'all'} terms",
    }
    runs[BM25_MULTIFIELD] = await _each_query(dataset, lambda q, text: summed.run_bm25(text, DEPTH))
    runs["bm25"] = await _each_query(dataset, lambda q, text: searcher.run_bm25(text, DEPTH))
    runs["sparse"] = await _each_query(
        dataset, lambda q, text: searcher.run_sparse(prune_query(sparse.queries[q], query_top_k), DEPTH)
    )
    if dense is not None and engine_dense:
        runs["dense"] = await _each_query(dataset, lambda q, text: searcher.method("dense", text, DEPTH))
        notes["dense"] = "engine kNN"
    elif dense is not None:
        brute = BruteForceIndex(dense.docs)
        runs["dense"] = {q: brute.search(dense.queries[q], DEPTH) for q in queries}
        notes["dense"] = "exact brute force in Python (the engine has no vector field)"
    return runs, notes


def score_run(name: str, run: RankedRun, dataset: Dataset, note: str = "") -> MethodScore:
    ranked = {q: [d for d, _ in hits] for q, hits in run.items()}
    ndcg = metrics.mean_ndcg(ranked, dataset.qrels, 10)
    return MethodScore(name, ndcg, metrics.mean_recall(ranked, dataset.qrels, 100), note)


SWEEP_COMBOS = [("bm25", "sparse"), ("bm25", "dense"), ("sparse", "dense"), ("bm25", "sparse", "dense")]


def sweep_weights(runs: Mapping[str, RankedRun], dataset: Dataset, step: float = 0.1) -> list[dict[str, Any]]:
    """nDCG@10 and Recall@100 of min-max fusion over a weight grid (every weight > 0)."""
    out: list[dict[str, Any]] = []
    for combo in SWEEP_COMBOS:
        if not set(combo) <= set(runs):
            continue
        for weights in weight_grid(len(combo), step):
            if min(weights) == 0:
                continue
            score = score_run("", fuse_runs(runs, Hybrid(combo, Fusion.MINMAX, weights), DEPTH), dataset)
            out.append({"methods": list(combo), "weights": list(weights),
                        "ndcg10": score.ndcg10, "recall100": score.recall100})
    return out
