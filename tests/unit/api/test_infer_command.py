"""The terminal rendering of `sidecar infer` for each kind of answer."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from sidecar.api.infer_command import render


def _rendered(body: dict[str, Any], texts: list[str], top: int = 2) -> str:
    console = Console(record=True, width=100)
    render(body, texts, top=top, console=console)
    return console.export_text()


def test_sparse_shows_the_heaviest_tokens_first() -> None:
    body = {"sparse_embedding": [{"is_truncated": False, "embedding": {"a": 0.5, "port": 2.0, "sky": 1.5}}]}
    text = _rendered(body, ["the sky above the port"])
    assert "3 tokens" in text
    assert text.index("│ port") < text.index("│ sky")
    assert "│ a " not in text  # only the top 2


def test_dense_shows_size_and_norm() -> None:
    text = _rendered({"text_embedding": [{"embedding": [0.6, 0.8, 0.0]}]}, ["x"])
    assert "3 dims, L2 norm 1.0000" in text


def test_rerank_shows_the_ranked_texts() -> None:
    body = {"rerank": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}]}
    text = _rendered(body, ["a cake", "the port sky"])
    assert text.index("the port sky") < text.index("a cake")


def test_other_answers_are_printed_as_json() -> None:
    assert '"result": "hello"' in _rendered({"completion": [{"result": "hello"}]}, ["x"])
