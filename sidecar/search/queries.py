"""Engine query bodies for the three retrieval methods (Elasticsearch and OpenSearch alike).

- sparse: a dot product over a `rank_features` field: a bool `should` of `rank_feature` clauses,
  each `linear` with boost = the query token's weight (Elasticsearch's `rank_feature` query:
  https://www.elastic.co/guide/en/elasticsearch/reference/current/query-dsl-rank-feature-query.html);
- bm25: `multi_match` over the text fields: `best_fields` with tie_breaker 0.5 (the best field's
  score plus half the others', as BEIR's Elasticsearch baseline queries) or `most_fields` (the sum
  of the per-field scores: the "multifield" BM25 of the published baselines);
- dense: approximate kNN: Elasticsearch's top-level `knn`, OpenSearch k-NN plugin's `knn` query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from sidecar.errors import RequestValidationError
from sidecar.rank_features import Pruning, clean_features

DEFAULT_QUERY_TOP_K = 32  # measured lossless on SciFact (docs/quality.md)


def prune_query(weights: Mapping[str, float], top_k: int | None = DEFAULT_QUERY_TOP_K) -> dict[str, float]:
    """The query's `top_k` heaviest legal tokens (all when `top_k` is None)."""
    return clean_features(weights, Pruning(top_k=top_k))


def sparse_query(field: str, weights: Mapping[str, float]) -> dict[str, Any]:
    """Dot product of `weights` with the `rank_features` field `field` (already pruned and legal)."""
    if not weights:
        # An empty bool would match every document with score 0; match none instead.
        return {"match_none": {}}
    clauses = [
        {"rank_feature": {"field": f"{field}.{token}", "linear": {}, "boost": weight}}
        for token, weight in weights.items()
    ]
    return {"bool": {"should": clauses}}


class Bm25Type(StrEnum):
    BEST_FIELDS = "best_fields"
    MOST_FIELDS = "most_fields"


DEFAULT_BM25_TYPE = Bm25Type.BEST_FIELDS


def bm25_query(text: str, fields: Sequence[str], kind: Bm25Type = DEFAULT_BM25_TYPE) -> dict[str, Any]:
    if not fields:
        raise RequestValidationError("BM25 needs at least one text field")
    query: dict[str, Any] = {"query": text, "type": kind.value, "fields": list(fields)}
    if kind is Bm25Type.BEST_FIELDS:
        query["tie_breaker"] = 0.5
    return {"multi_match": query}


def search_body(query: dict[str, Any], size: int, *, source: bool | list[str] = False) -> dict[str, Any]:
    return {"query": query, "size": size, "_source": source, "track_total_hits": False}


def knn_body(
    engine: str, field: str, vector: Sequence[float], size: int, *, source: bool | list[str] = False
) -> dict[str, Any]:
    """A kNN search for `size` neighbours; Elasticsearch looks at 10x candidates per shard."""
    vec = [float(x) for x in vector]
    if engine == "opensearch":
        query = {"knn": {field: {"vector": vec, "k": size}}}
        return {"query": query, "size": size, "_source": source}
    knn = {"field": field, "query_vector": vec, "k": size, "num_candidates": max(100, 10 * size)}
    return {"knn": knn, "size": size, "_source": source}
