"""Exact (brute-force) cosine kNN in Python, for engines that cannot score dense vectors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class BruteForceIndex:
    def __init__(self, vectors: Mapping[str, Sequence[float]]) -> None:
        self.ids = [doc for doc, vec in vectors.items() if vec is not None and len(vec) > 0]
        matrix = np.asarray([vectors[d] for d in self.ids], dtype=np.float32)
        self.matrix = _normalise(matrix) if len(self.ids) else matrix

    def search(self, query: Sequence[float], size: int) -> list[tuple[str, float]]:
        """The `size` most cosine-similar documents, best first (ties by id)."""
        if not self.ids or size < 1:
            return []
        q = _normalise(np.asarray([query], dtype=np.float32))[0]
        scores = self.matrix @ q
        size = min(size, len(self.ids))
        top = np.argpartition(-scores, size - 1)[:size]
        ranked = sorted(((self.ids[i], float(scores[i])) for i in top), key=lambda kv: (-kv[1], kv[0]))
        return ranked


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)
