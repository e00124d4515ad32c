from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sidecar.pipelines.date_math import DateMathError, resolve_index, static_prefix

NOW = datetime(2024, 3, 31, 22, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        ("plain", "plain"),
        ("<logs-{now/d}>", "logs-2024.03.31"),
        ("<logs-{now/M{yyyy.MM}}>", "logs-2024.03"),
        ("<logs-{now/M-1M{yyyy.MM}}>", "logs-{now/M-1M{yyyy.MM}}"),
        ("<logs-{now-1M/M{yyyy.MM}}>", "logs-2024.02"),
        ("<logs-{now+1d/d}>", "logs-2024.04.01"),
        ("<logs-{now/d{yyyy.MM.dd|+02:00}}>", "logs-2024.04.01"),
        ("<logs-{now/w{yyyy-MM-dd}}>", "logs-2024-03-25"),
        ("<logs-{now/H{yyyyMMdd.HH}}>", "logs-20240331.22"),
        ("<esc\\{aped\\}-{now/y{yyyy}}>", "esc{aped}-2024"),
    ],
)
def test_resolve(index: str, expected: str) -> None:
    if "now/M-1M" in index:  # rounding must come last, as in Elasticsearch
        with pytest.raises(DateMathError):
            resolve_index(index, NOW)
        return
    assert resolve_index(index, NOW) == expected


@pytest.mark.parametrize(
    "index",
    ["<x-{tomorrow}>", "<x-{now/q}>", "<x-{now{yyyy.QQ}}>", "<x-{now/d{dd|Mars/Base}}>", "<x-{now/d>"],
)
def test_invalid(index: str) -> None:
    with pytest.raises(DateMathError):
        resolve_index(index, NOW)


def test_static_prefix() -> None:
    assert static_prefix("<logs-{now/d}>") == "logs-"
    assert static_prefix("plain") == "plain"
