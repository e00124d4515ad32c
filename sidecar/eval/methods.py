"""The retrieval methods an evaluation compares, and their fused combinations.

Each base method gives, per query, the top `depth` (doc id, score) pairs; hybrids are fused
client-side from those lists exactly as `sidecar search --hybrid` fuses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sidecar.search.fusion import Fusion, fuse

RankedRun = dict[str, list[tuple[str, float]]]  # query id -> (doc id, score) best first


@dataclass(frozen=True)
class Hybrid:
    methods: tuple[str, ...]
    fusion: Fusion
    weights: tuple[float, ...]

    @property
    def name(self) -> str:
        label = "+".join(self.methods) + f" {self.fusion.value}"
        if self.fusion is Fusion.MINMAX:
            label += " " + "/".join(f"{w:.2g}" for w in self.weights)
        return label


def fuse_runs(runs: Mapping[str, RankedRun], hybrid: Hybrid, size: int) -> RankedRun:
    queries = set().union(*(runs[m].keys() for m in hybrid.methods))
    return {
        q: fuse(hybrid.fusion, [runs[m].get(q, []) for m in hybrid.methods], hybrid.weights, size=size)
        for q in queries
    }


def default_hybrids(
    available: Sequence[str], weights: Mapping[tuple[str, ...], tuple[float, ...]]
) -> list[Hybrid]:
    """Min-max with `weights` (and with equal weights when those differ) and RRF, for every
    combination with BM25."""
    combos = [("bm25", "sparse"), ("bm25", "dense"), ("bm25", "sparse", "dense")]
    out: list[Hybrid] = []
    for combo in combos:
        if not set(combo) <= set(available):
            continue
        equal = tuple(round(1.0 / len(combo), 4) for _ in combo)
        chosen = weights.get(combo, equal)
        out.append(Hybrid(combo, Fusion.MINMAX, chosen))
        if len(set(chosen)) > 1:
            out.append(Hybrid(combo, Fusion.MINMAX, equal))
        out.append(Hybrid(combo, Fusion.RRF, tuple(1.0 for _ in combo)))
    return out


def weight_grid(arity: int, step: float) -> list[tuple[float, ...]]:
    """All weight vectors of `arity` non-negative multiples of `step` summing to 1 (no all-zero)."""
    units = round(1 / step)

    def parts(n: int, left: int) -> list[tuple[int, ...]]:
        if n == 1:
            return [(left,)]
        return [(i, *rest) for i in range(left + 1) for rest in parts(n - 1, left - i)]

    return [tuple(round(u / units, 6) for u in p) for p in parts(arity, units)]
