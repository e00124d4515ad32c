"""Everything a `rank_features` (or `sparse_vector`) field demands, in one module.

Rules (Elasticsearch's `rank_features` field,
https://www.elastic.co/guide/en/elasticsearch/reference/current/rank-features.html, and Lucene's FeatureField):
- feature names may not contain `.` (ELSER writes `__` instead), may not be empty, and must fit in one
  Lucene term (32766 UTF-8 bytes); lone UTF-16 surrogates cannot be encoded, so they become U+FFFD;
- values must be finite float32 numbers no smaller than the smallest normal float32
  (Lucene: "featureValue must be a positive normal float");
- one value per feature: names that collide after legalisation keep the largest weight.
Optional pruning (top-k, minimum weight, ratio of the maximum) runs after legalisation, and the
result is ordered by weight descending then name, so equal inputs give byte-equal documents.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sidecar.errors import SettingsValidationError

FLOAT32_MIN_NORMAL = 1.1754943508222875e-38
FLOAT32_MAX = 3.4028234663852886e38
MAX_TERM_BYTES = 32766


def legal_token(name: str) -> str | None:
    """Return the name a rank_features field accepts for `name`, or None when none exists."""
    legal = name.replace(".", "__")
    try:
        size = len(legal.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: replace them as a JSON encoder would
        legal = legal.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        size = len(legal.encode("utf-8"))
    if not legal or size > MAX_TERM_BYTES:
        return None
    return legal


def legal_weight(value: float) -> bool:
    """True when `value` is a finite, positive, normal float32."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and FLOAT32_MIN_NORMAL <= value <= FLOAT32_MAX
    )


@dataclass(frozen=True)
class Pruning:
    """Optional pruning applied after legalisation (OpenSearch neural-sparse style options)."""

    top_k: int | None = None
    min_weight: float | None = None
    max_ratio: float | None = None  # keep weights >= max_ratio * the largest weight

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Pruning:
        if not raw:
            return cls()
        unknown = set(raw) - {"top_k", "min_weight", "max_ratio"}
        if unknown:
            raise SettingsValidationError(f"[pruning] contains unknown settings {sorted(unknown)}")
        top_k, min_weight, max_ratio = raw.get("top_k"), raw.get("min_weight"), raw.get("max_ratio")
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise SettingsValidationError("[pruning.top_k] must be a positive integer")
        if min_weight is not None and (not isinstance(min_weight, int | float) or min_weight < 0):
            raise SettingsValidationError("[pruning.min_weight] must be a number >= 0")
        if max_ratio is not None and (not isinstance(max_ratio, int | float) or not 0 <= max_ratio <= 1):
            raise SettingsValidationError("[pruning.max_ratio] must be a number between 0 and 1")
        return cls(
            top_k,
            None if min_weight is None else float(min_weight),
            None if max_ratio is None else float(max_ratio),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in (
                ("top_k", self.top_k),
                ("min_weight", self.min_weight),
                ("max_ratio", self.max_ratio),
            )
            if v is not None
        }


NO_PRUNING = Pruning()


def clean_features(
    features: Mapping[str, float] | Iterable[tuple[str, float]], pruning: Pruning = NO_PRUNING
) -> dict[str, float]:
    """Legal names, legal weights, pruned, in deterministic order (weight desc, then name)."""
    items = features.items() if isinstance(features, Mapping) else features
    merged: dict[str, float] = {}
    for name, value in items:
        # The common case, a model's own answer (an ASCII name without a dot, a float), is checked
        # inline: a run of comparisons costs a third of the general calls (NaN fails them too).
        if type(value) is float:
            if not FLOAT32_MIN_NORMAL <= value <= FLOAT32_MAX:
                continue
        elif not legal_weight(value):
            continue
        else:
            value = float(value)
        if not isinstance(name, str):
            continue
        legal = name
        if not (name.isascii() and "." not in name and 0 < len(name) <= MAX_TERM_BYTES):
            changed = legal_token(name)
            if changed is None:
                continue
            legal = changed
        if merged.get(legal, 0.0) < value:
            merged[legal] = value
    # Weight descending, then name: a stable sort by weight over the name-sorted items.
    ordered = sorted(sorted(merged.items(), key=itemgetter(0)), key=itemgetter(1), reverse=True)
    return prune(dict(ordered), pruning)


def prune(features: Mapping[str, float], pruning: Pruning = NO_PRUNING) -> dict[str, float]:
    """`clean_features`'s pruning alone, for a map that already follows the rules in its order
    (an inference service's answer, or `max_combine` of such answers): cleaning it again would
    only cost time."""
    if pruning == NO_PRUNING:
        return dict(features)
    ordered = list(features.items())
    if ordered and pruning.max_ratio is not None:
        floor = ordered[0][1] * pruning.max_ratio
        ordered = [kv for kv in ordered if kv[1] >= floor]
    if pruning.min_weight is not None:
        ordered = [kv for kv in ordered if kv[1] >= pruning.min_weight]
    if pruning.top_k is not None:
        ordered = ordered[: pruning.top_k]
    return dict(ordered)


def max_combine(vectors: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Combine chunk vectors into one field value: the largest weight per token."""
    out: dict[str, float] = {}
    for vec in vectors:
        for name, value in vec.items():
            if out.get(name, -math.inf) < value:
                out[name] = value
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
