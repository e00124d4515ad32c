"""Ranking metrics as BEIR reports them (pytrec_eval definitions).

- nDCG@k: gain = the judged relevance (linear, not 2**rel - 1), discount = log2(rank + 1) with ranks
  from 1; the ideal DCG uses the judged relevances sorted descending. A query's ranking is cut at k.
- Recall@k: relevant documents (relevance > 0) found in the top k, over all relevant documents.
Only queries with at least one relevant judgment count; a judged query with no results scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]  # query id -> doc id -> relevance
Run = Mapping[str, Sequence[str]]  # query id -> doc ids, best first


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))


def ndcg_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    ideal = dcg(sorted((r for r in judged.values() if r > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    gains = [max(judged.get(doc, 0), 0) for doc in _dedup(ranking)[:k]]
    return dcg(gains) / ideal


def recall_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, rel in judged.items() if rel > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_dedup(ranking)[:k])) / len(relevant)


def _dedup(ranking: Sequence[str]) -> list[str]:
    """A document counts once, at its best rank (fused lists never repeat, engines might)."""
    return list(dict.fromkeys(ranking))


def judged_queries(qrels: Qrels) -> list[str]:
    return [qid for qid, judged in qrels.items() if any(r > 0 for r in judged.values())]


def mean_ndcg(run: Run, qrels: Qrels, k: int = 10) -> float:
    queries = judged_queries(qrels)
    if not queries:
        return 0.0
    return sum(ndcg_at_k(run.get(q, ()), qrels[q], k) for q in queries) / len(queries)


def mean_recall(run: Run, qrels: Qrels, k: int = 100) -> float:
    queries = judged_queries(qrels)
    if not queries:
        return 0.0
    return sum(recall_at_k(run.get(q, ()), qrels[q], k) for q in queries) / len(queries)
