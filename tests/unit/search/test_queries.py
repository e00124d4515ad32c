"""Engine query bodies and query pruning."""

from __future__ import annotations

import pytest

from sidecar.errors import RequestValidationError
from sidecar.search.queries import Bm25Type, bm25_query, knn_body, prune_query, search_body, sparse_query


def test_sparse_query_is_a_bool_should_of_linear_rank_features_boosted_by_weight() -> None:
    assert sparse_query("ml.tokens", {"sky": 1.7, "port": 2.5}) == {
        "bool": {
            "should": [
                {"rank_feature": {"field": "ml.tokens.sky", "linear": {}, "boost": 1.7}},
                {"rank_feature": {"field": "ml.tokens.port", "linear": {}, "boost": 2.5}},
            ]
        }
    }


def test_empty_sparse_query_matches_nothing() -> None:
    assert sparse_query("f", {}) == {"match_none": {}}


def test_prune_query_keeps_the_heaviest_legal_terms() -> None:
    weights = {f"t{i:02d}": float(i + 1) for i in range(40)} | {"a.b": 100.0, "neg": -1.0}
    pruned = prune_query(weights, 32)
    assert len(pruned) == 32
    assert next(iter(pruned)) == "a__b"  # dots are illegal in rank_features names
    assert "neg" not in pruned and "t00" not in pruned
    assert list(pruned.values()) == sorted(pruned.values(), reverse=True)
    assert len(prune_query(weights, None)) == 41


def test_bm25_query_is_best_fields_over_every_text_field() -> None:
    assert bm25_query("dogs", ["title", "text"]) == {
        "multi_match": {
            "query": "dogs", "type": "best_fields", "fields": ["title", "text"], "tie_breaker": 0.5
        }
    }
    assert bm25_query("dogs", ["title", "text"], Bm25Type.MOST_FIELDS) == {
        "multi_match": {"query": "dogs", "type": "most_fields", "fields": ["title", "text"]}
    }
    with pytest.raises(RequestValidationError):
        bm25_query("dogs", [])


def test_search_body_and_knn_bodies_per_engine() -> None:
    assert search_body({"match_all": {}}, 5) == {
        "query": {"match_all": {}}, "size": 5, "_source": False, "track_total_hits": False
    }
    es = knn_body("elasticsearch", "vec", [1, 0.5], 10)
    assert es["knn"] == {"field": "vec", "query_vector": [1.0, 0.5], "k": 10, "num_candidates": 100}
    assert es["size"] == 10
    os_body = knn_body("opensearch", "vec", [1.0], 3, source=["title"])
    assert os_body == {"query": {"knn": {"vec": {"vector": [1.0], "k": 3}}}, "size": 3, "_source": ["title"]}
