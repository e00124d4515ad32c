"""nDCG@10 and Recall@100 against cases worked out by hand (log2 values written out below).

1/log2(2) = 1, 1/log2(3) = 0.63093, 1/log2(4) = 0.5, 1/log2(5) = 0.43068.
"""

from __future__ import annotations

import pytest

from sidecar.eval.metrics import mean_ndcg, mean_recall, ndcg_at_k, recall_at_k


def test_two_relevant_found_at_ranks_two_and_four() -> None:
    # DCG = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068 = 1.06161; IDCG = 1 + 0.63093 = 1.63093
    assert ndcg_at_k(["x", "a", "y", "b"], {"a": 1, "b": 1}, 10) == pytest.approx(1.06161 / 1.63093, abs=1e-5)


def test_graded_relevance_uses_linear_gain() -> None:
    # ranking b(1), a(2), c(0): DCG = 1 + 2 * 0.63093 = 2.26186; IDCG = 2 + 0.63093 = 2.63093
    assert ndcg_at_k(["b", "a", "c"], {"a": 2, "b": 1, "c": 0}, 10) == pytest.approx(0.85972, abs=1e-5)


def test_perfect_and_empty_rankings() -> None:
    assert ndcg_at_k(["a", "b", "x"], {"a": 1, "b": 1}, 10) == 1.0
    assert ndcg_at_k([], {"a": 1}, 10) == 0.0
    assert ndcg_at_k(["x", "y"], {"a": 1}, 10) == 0.0


def test_cutoff_ignores_documents_below_k() -> None:
    ranking = [f"x{i}" for i in range(10)] + ["a"]
    assert ndcg_at_k(ranking, {"a": 1}, 10) == 0.0
    # at k=11 the hit counts: 1/log2(12) = 0.27894, IDCG = 1
    assert ndcg_at_k(ranking, {"a": 1}, 11) == pytest.approx(0.27894, abs=1e-5)


def test_ideal_dcg_is_cut_at_k_too() -> None:
    # three relevant, k=2: IDCG = 1 + 0.63093; found only at rank 1 -> 1 / 1.63093 = 0.61315
    assert ndcg_at_k(["a", "x"], {"a": 1, "b": 1, "c": 1}, 2) == pytest.approx(0.61315, abs=1e-5)


def test_duplicates_count_once() -> None:
    # ["a", "a", "b"] is read as ["a", "b"]: perfect
    assert ndcg_at_k(["a", "a", "b"], {"a": 1, "b": 1}, 10) == 1.0


def test_recall() -> None:
    judged = {"a": 1, "b": 1, "c": 1, "z": 0}
    assert recall_at_k(["a", "z", "c"], judged, 100) == pytest.approx(2 / 3)
    assert recall_at_k(["a", "b"], judged, 1) == pytest.approx(1 / 3)
    assert recall_at_k(["z"], {"z": 0}, 100) == 0.0


def test_means_skip_unjudged_queries_and_count_missing_runs_as_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}, "q3": {"d": 0}}
    run = {"q1": ["a"], "q3": ["d"]}  # q2 has no results; q3 has no relevant document
    # q1 = 1.0, q2 = 0.0 -> mean over the two judged queries = 0.5
    assert mean_ndcg(run, qrels) == pytest.approx(0.5)
    assert mean_recall({"q1": ["a"], "q2": ["c", "x"]}, qrels) == pytest.approx((1.0 + 0.5) / 2)
    assert mean_ndcg({}, {}) == 0.0
