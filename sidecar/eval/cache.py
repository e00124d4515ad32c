"""Encodings cached on disk (`.cache/eval/`), so re-running an evaluation does no inference.

A cache file is keyed by what decides its content: the dataset's fingerprint, the endpoint, the
model input length, and the field's chunking. Sparse vectors are stored unpruned in CSR form
(vocabulary, row pointers, column indices, weights); dense ones as one float32 matrix.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_CACHE_DIR = Path(".cache/eval")

SparseVectors = dict[str, dict[str, float]]
DenseVectors = dict[str, list[float]]


def cache_path(
    root: Path, *, kind: str, dataset: str, endpoint: str, max_length: int, extra: Any = None
) -> Path:
    """`<root>/<dataset>-<kind>-<endpoint>-<max_length>-<hash of extra>.npz`."""
    tag = hashlib.sha256(json.dumps(extra, sort_keys=True).encode()).hexdigest()[:8]
    safe = endpoint.strip(".").replace("/", "_")
    return root / f"{dataset}-{kind}-{safe}-{max_length}-{tag}.npz"


def _atomic_save(path: Path, **arrays: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def save_sparse(path: Path, vectors: SparseVectors) -> None:
    vocab: dict[str, int] = {}
    indptr, indices, values = [0], [], []
    for vec in vectors.values():
        for token, weight in vec.items():
            indices.append(vocab.setdefault(token, len(vocab)))
            values.append(weight)
        indptr.append(len(indices))
    _atomic_save(
        path,
        ids=np.array(list(vectors), dtype=str),
        vocab=np.array(list(vocab), dtype=str),
        indptr=np.array(indptr, dtype=np.int64),
        indices=np.array(indices, dtype=np.int32),
        values=np.array(values, dtype=np.float32),
    )


def load_sparse(path: Path) -> SparseVectors | None:
    if not path.is_file():
        return None
    with np.load(path) as data:
        ids, vocab = data["ids"].tolist(), data["vocab"].tolist()
        indptr, indices, values = data["indptr"], data["indices"].tolist(), data["values"].tolist()
    out: SparseVectors = {}
    for row, doc_id in enumerate(ids):
        start, end = int(indptr[row]), int(indptr[row + 1])
        out[doc_id] = {vocab[i]: v for i, v in zip(indices[start:end], values[start:end], strict=True)}
    return out


def save_dense(path: Path, vectors: DenseVectors) -> None:
    _atomic_save(path, ids=np.array(list(vectors), dtype=str),
                 matrix=np.array(list(vectors.values()), dtype=np.float32))


def load_dense(path: Path) -> DenseVectors | None:
    if not path.is_file():
        return None
    with np.load(path) as data:
        return dict(zip(data["ids"].tolist(), data["matrix"].tolist(), strict=True))
