"""Fusion against hand-computed scores."""

from __future__ import annotations

import pytest

from sidecar.errors import RequestValidationError
from sidecar.search.fusion import Fusion, fuse, minmax, parse_fusion, rrf


def test_rrf_sums_reciprocal_ranks() -> None:
    # a: 1/61; b: 1/62 + 1/61; c: 1/62
    fused = rrf([[("a", 9.0), ("b", 5.0)], [("b", 0.9), ("c", 0.1)]])
    assert [d for d, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1][1] == pytest.approx(1 / 61)
    assert fused[2][1] == pytest.approx(1 / 62)


def test_rrf_weights_and_k() -> None:
    fused = rrf([[("a", 1.0)], [("b", 1.0)]], [1.0, 3.0], k=1)
    assert fused == [("b", pytest.approx(1.5)), ("a", pytest.approx(0.5))]


def test_minmax_normalises_each_list_then_weights() -> None:
    bm25 = [("a", 10.0), ("b", 6.0), ("c", 2.0)]  # -> a 1, b 0.5, c 0
    sparse = [("c", 0.9), ("a", 0.5)]  # -> c 1, a 0 (b absent: 0)
    fused = minmax([bm25, sparse], [0.7, 0.3])
    assert fused == [("a", pytest.approx(0.7)), ("b", pytest.approx(0.35)), ("c", pytest.approx(0.3))]
    # equal weights: a 0.5, c 0.5 tie -> by id; b 0.25
    assert [d for d, _ in minmax([bm25, sparse], [0.5, 0.5])] == ["a", "c", "b"]


def test_minmax_single_valued_list_maps_to_one_and_empty_lists_are_ignored() -> None:
    assert minmax([[("a", 3.0)], []], [0.5, 0.5]) == [("a", pytest.approx(0.5))]
    assert minmax([[("a", 2.0), ("b", 2.0)]]) == [("a", 1.0), ("b", 1.0)]


def test_size_cuts_the_fused_list() -> None:
    lists = [[(str(i), float(10 - i)) for i in range(10)]]
    assert [d for d, _ in fuse("minmax", lists, size=3)] == ["0", "1", "2"]
    assert [d for d, _ in fuse(Fusion.RRF, lists, size=2)] == ["0", "1"]


@pytest.mark.parametrize(("weights", "message"), [([1.0], "2 ranked lists"), ([0.0, 0.0], "not all 0"),
                                                   ([-1.0, 2.0], ">= 0")])
def test_bad_weights(weights: list[float], message: str) -> None:
    with pytest.raises(RequestValidationError, match=message):
        minmax([[("a", 1.0)], [("b", 1.0)]], weights)


def test_unknown_fusion() -> None:
    assert parse_fusion("rrf") is Fusion.RRF
    with pytest.raises(RequestValidationError, match="unknown fusion"):
        fuse("borda", [[("a", 1.0)]])
