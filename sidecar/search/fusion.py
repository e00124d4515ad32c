"""Client-side fusion of several ranked lists into one.

- `rrf`: reciprocal rank fusion, score(d) = sum over lists of weight / (k + rank), ranks from 1;
- `minmax`: each list's scores rescaled to [0, 1] per query ((s - min) / (max - min); a list whose
  scores are all equal maps to 1), then a weighted sum; a document absent from a list gets 0 there.
Ties are broken by document id so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from sidecar.errors import RequestValidationError

Ranked = Sequence[tuple[str, float]]  # (doc id, score), best first
RRF_K = 60


class Fusion(StrEnum):
    RRF = "rrf"
    MINMAX = "minmax"


def _check(lists: Sequence[Ranked], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(lists)
    if len(weights) != len(lists):
        raise RequestValidationError(f"got {len(weights)} fusion weights for {len(lists)} ranked lists")
    if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
        raise RequestValidationError("fusion weights must be >= 0 and not all 0")
    return [float(w) for w in weights]


def _ordered(scores: dict[str, float], size: int | None) -> list[tuple[str, float]]:
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return ranked if size is None else ranked[:size]


def rrf(
    lists: Sequence[Ranked],
    weights: Sequence[float] | None = None,
    *,
    k: int = RRF_K,
    size: int | None = None,
) -> list[tuple[str, float]]:
    ws = _check(lists, weights)
    scores: dict[str, float] = {}
    for weight, ranked in zip(ws, lists, strict=True):
        for rank, (doc, _) in enumerate(ranked, start=1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return _ordered(scores, size)


def minmax(
    lists: Sequence[Ranked], weights: Sequence[float] | None = None, *, size: int | None = None
) -> list[tuple[str, float]]:
    ws = _check(lists, weights)
    scores: dict[str, float] = {}
    for weight, ranked in zip(ws, lists, strict=True):
        if not ranked:
            continue
        values = [s for _, s in ranked]
        low, high = min(values), max(values)
        span = high - low
        for doc, score in ranked:
            norm = (score - low) / span if span > 0 else 1.0
            scores[doc] = scores.get(doc, 0.0) + weight * norm
    return _ordered(scores, size)


def parse_fusion(value: Fusion | str) -> Fusion:
    try:
        return Fusion(value)
    except ValueError:
        names = [f.value for f in Fusion]
        raise RequestValidationError(f"unknown fusion [{value}]: use one of {names}") from None


def fuse(
    method: Fusion | str,
    lists: Sequence[Ranked],
    weights: Sequence[float] | None = None,
    *,
    size: int | None = None,
) -> list[tuple[str, float]]:
    if parse_fusion(method) is Fusion.RRF:
        return rrf(lists, weights, size=size)
    return minmax(lists, weights, size=size)
