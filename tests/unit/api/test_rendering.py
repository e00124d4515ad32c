"""`filter_path` semantics and the parsing of Elasticsearch-style query values."""

from __future__ import annotations

import pytest

from sidecar.api.params import ParseException, parse_bool, parse_task_type, parse_time
from sidecar.api.rendering import filter_body
from sidecar.errors import IllegalArgumentError, StatusError
from sidecar.inference.types import TaskType

BODY = {
    "endpoints": [
        {
            "inference_id": "a",
            "task_type": "sparse_embedding",
            "service_settings": {"model_id": "m", "dims": 3},
        },
        {"inference_id": "b", "task_type": "text_embedding", "service_settings": {"model_id": "n"}},
    ],
    "took": 3,
}


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["took"], {"took": 3}),
        (["endpoints.inference_id"], {"endpoints": [{"inference_id": "a"}, {"inference_id": "b"}]}),
        (
            ["endpoints.*_type"],
            {"endpoints": [{"task_type": "sparse_embedding"}, {"task_type": "text_embedding"}]},
        ),
        (["**.dims"], {"endpoints": [{"service_settings": {"dims": 3}}]}),
        (["nothing"], {}),
        (["-endpoints"], {"took": 3}),
        (
            ["endpoints", "-endpoints.service_settings"],
            {
                "endpoints": [
                    {"inference_id": "a", "task_type": "sparse_embedding"},
                    {"inference_id": "b", "task_type": "text_embedding"},
                ]
            },
        ),
    ],
)
def test_filter_path(patterns: list[str], expected: object) -> None:
    assert filter_body(BODY, patterns) == expected


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), ("0", 0.0), ("-1", None), ("1.5s", 1.5)],
)
def test_time_values(raw: str, seconds: float | None) -> None:
    assert parse_time("timeout", raw) == seconds


@pytest.mark.parametrize("raw", ["", "s", "10", "ten s", "5 s", "-5s", "1y"])
def test_bad_time_values(raw: str) -> None:
    with pytest.raises(ParseException):
        parse_time("timeout", raw)


def test_booleans() -> None:
    assert parse_bool("x", None) is False
    assert parse_bool("x", None, default=True) is True
    assert parse_bool("x", "") is True
    assert parse_bool("x", "true") is True
    assert parse_bool("x", "false") is False
    with pytest.raises(IllegalArgumentError):
        parse_bool("x", "True")


def test_task_types_are_case_insensitive() -> None:
    assert parse_task_type("SPARSE_EMBEDDING") is TaskType.SPARSE_EMBEDDING
    with pytest.raises(StatusError, match=r"Unknown task_type \[dense\]"):
        parse_task_type("dense")
