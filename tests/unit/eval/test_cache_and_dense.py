"""Encoding cache round trips and exact brute-force kNN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sidecar.eval.cache import cache_path, load_dense, load_sparse, save_dense, save_sparse
from sidecar.eval.dense import BruteForceIndex


def test_sparse_round_trip_keeps_every_weight_at_float32(tmp_path: Path) -> None:
    vectors = {"d1": {"sky": 1.5, "##ing": 0.25}, "d2": {}, "d3": {"sky": 2.0, "über": 3.3}}
    path = tmp_path / "s.npz"
    save_sparse(path, vectors)
    loaded = load_sparse(path)
    assert loaded is not None
    assert list(loaded) == ["d1", "d2", "d3"]
    assert loaded["d2"] == {}
    assert loaded["d3"] == {"sky": 2.0, "über": pytest.approx(3.3, rel=1e-6)}
    assert load_sparse(tmp_path / "absent.npz") is None


def test_dense_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    save_dense(path, {"a": [0.5, 1.0], "b": [2.0, -1.0]})
    assert load_dense(path) == {"a": [0.5, 1.0], "b": [2.0, -1.0]}
    assert not list(tmp_path.glob("*.tmp.npz"))


def test_cache_path_depends_on_every_key() -> None:
    base = {"kind": "sparse-docs", "dataset": "scifact-abc", "endpoint": ".splade-tiny", "max_length": 512}
    first = cache_path(Path("c"), **base)  # type: ignore[arg-type]
    assert first.name.startswith("scifact-abc-sparse-docs-splade-tiny-512-")
    assert cache_path(Path("c"), **{**base, "max_length": 256}) != first  # type: ignore[arg-type]
    assert cache_path(Path("c"), **base, extra={"chunking": {"strategy": "none"}}) != first  # type: ignore[arg-type]


def test_brute_force_is_exact_cosine() -> None:
    index = BruteForceIndex({"x": [1.0, 0.0], "y": [0.0, 2.0], "z": [1.0, 1.0], "empty": []})
    hits = index.search([3.0, 1.0], 2)
    # cosines: x = 3/sqrt(10) = 0.94868, z = 4/(sqrt(2) sqrt(10)) = 0.89443, y = 1/sqrt(10) = 0.31623
    assert [d for d, _ in hits] == ["x", "z"]
    assert hits[0][1] == pytest.approx(0.94868, abs=1e-5)
    assert hits[1][1] == pytest.approx(0.89443, abs=1e-5)
    assert len(index.search([1.0, 1.0], 10)) == 3
    assert BruteForceIndex({}).search([1.0], 5) == []


def test_brute_force_matches_a_full_sort() -> None:
    rng = np.random.default_rng(7)
    vectors = {f"d{i}": rng.normal(size=8).tolist() for i in range(200)}
    query = rng.normal(size=8).tolist()
    matrix = np.array(list(vectors.values()))
    cos = matrix @ np.array(query) / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
    expected = [f"d{i}" for i in np.argsort(-cos)[:25]]
    assert [d for d, _ in BruteForceIndex(vectors).search(query, 25)] == expected
