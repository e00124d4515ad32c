import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.errors import SettingsValidationError
from sidecar.rank_features import (
    FLOAT32_MIN_NORMAL,
    MAX_TERM_BYTES,
    Pruning,
    clean_features,
    legal_token,
    max_combine,
    prune,
)


def test_dots_become_double_underscores_like_elser() -> None:
    assert legal_token("u.s.") == "u__s__"
    assert clean_features({"a.b": 1.0}) == {"a__b": 1.0}


def test_names_without_a_legal_form_are_dropped() -> None:
    assert legal_token("") is None
    assert legal_token("x" * (MAX_TERM_BYTES + 1)) is None
    assert legal_token("\ud800abc") == "\ufffdabc"  # lone surrogate cannot be UTF-8 encoded


@pytest.mark.parametrize(
    "bad", [0.0, -1.0, math.nan, math.inf, -math.inf, 1e-45, 1e39, FLOAT32_MIN_NORMAL / 2]
)
def test_illegal_weights_are_dropped(bad: float) -> None:
    assert clean_features({"ok": 1.5, "bad": bad}) == {"ok": 1.5}


def test_collisions_keep_the_largest_weight() -> None:
    assert clean_features({"a.b": 1.0, "a__b": 3.0}) == {"a__b": 3.0}
    assert clean_features([("a.b", 4.0), ("a__b", 3.0)]) == {"a__b": 4.0}


def test_order_is_weight_descending_then_name() -> None:
    out = clean_features({"b": 1.0, "a": 1.0, "c": 2.0})
    assert list(out) == ["c", "a", "b"]


def test_pruning_top_k_min_weight_and_ratio() -> None:
    vec = {"a": 4.0, "b": 2.0, "c": 1.0, "d": 0.5}
    assert clean_features(vec, Pruning(top_k=2)) == {"a": 4.0, "b": 2.0}
    assert clean_features(vec, Pruning(min_weight=1.0)) == {"a": 4.0, "b": 2.0, "c": 1.0}
    assert clean_features(vec, Pruning(max_ratio=0.25)) == {"a": 4.0, "b": 2.0, "c": 1.0}
    assert clean_features(vec, Pruning.from_dict({"top_k": 1, "max_ratio": 0.1})) == {"a": 4.0}


@pytest.mark.parametrize(
    "raw", [{"top_k": 0}, {"top_k": "3"}, {"min_weight": -1}, {"max_ratio": 2}, {"alpha": 1}]
)
def test_bad_pruning_settings_are_typed_errors(raw: dict[str, object]) -> None:
    with pytest.raises(SettingsValidationError):
        Pruning.from_dict(raw)


def test_max_combine_takes_the_largest_weight_per_token() -> None:
    assert max_combine([{"a": 1.0, "b": 2.0}, {"a": 3.0, "c": 0.5}]) == {"a": 3.0, "b": 2.0, "c": 0.5}


@given(st.dictionaries(st.text(), st.floats(allow_nan=True, allow_infinity=True, width=64)))
def test_every_output_is_legal_and_deterministic(features: dict[str, float]) -> None:
    out = clean_features(features)
    for name, value in out.items():
        assert name and "." not in name
        assert len(name.encode("utf-8")) <= MAX_TERM_BYTES
        assert math.isfinite(value) and value >= FLOAT32_MIN_NORMAL
    assert out == clean_features(dict(reversed(list(features.items()))))
    assert list(out) == list(clean_features(features))


@given(
    st.dictionaries(st.text(), st.floats(allow_nan=True, allow_infinity=True, width=64)),
    st.sampled_from(
        [Pruning(), Pruning(top_k=3), Pruning(min_weight=0.5), Pruning(max_ratio=0.4), Pruning(2, 0.1, 0.2)]
    ),
)
def test_pruning_a_clean_map_equals_cleaning_it_again(raw: dict[str, float], pruning: Pruning) -> None:
    # The enricher only prunes what services answer (already clean): the result must be the same.
    clean = clean_features(raw)
    assert list(prune(clean, pruning).items()) == list(clean_features(clean, pruning).items())
    assert list(prune(clean, pruning).items()) == list(clean_features(raw, pruning).items())


def test_booleans_are_not_weights() -> None:
    assert clean_features({"yes": True, "one": 1}) == {"one": 1.0}
