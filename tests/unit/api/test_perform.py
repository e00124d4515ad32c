"""Performing inference through `POST /_inference/...` with the packaged models: Elasticsearch's
response bodies for sparse, dense and rerank, in both route forms."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from syrupy.assertion import SnapshotAssertion

from tests.unit.api.conftest import COMPLETION_ID, DENSE_ID, RERANK_ID, SPARSE_ID, rounded, top_tokens

SKY = "The sky above the port was the color of television, tuned to a dead channel."


@pytest.mark.parametrize("path", [f"/_inference/{SPARSE_ID}", f"/_inference/sparse_embedding/{SPARSE_ID}"])
async def test_sparse_embedding(client: httpx.AsyncClient, snapshot: SnapshotAssertion, path: str) -> None:
    response = await client.post(path, json={"input": [SKY, "hello world"]})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["sparse_embedding"]
    entries = body["sparse_embedding"]
    assert [set(e) for e in entries] == [{"is_truncated", "embedding"}] * 2
    for entry in entries:
        assert entry["is_truncated"] is False
        assert all(isinstance(w, float) and w > 0 and math.isfinite(w) for w in entry["embedding"].values())
        assert not any("." in token for token in entry["embedding"])  # legal rank_features names
    assert [top_tokens(e["embedding"]) for e in entries] == snapshot


async def test_a_single_string_is_one_input(client: httpx.AsyncClient) -> None:
    single = await client.post(f"/_inference/{SPARSE_ID}", json={"input": "hello world"})
    listed = await client.post(f"/_inference/{SPARSE_ID}", json={"input": ["hello world"]})
    assert single.json() == listed.json()
    assert len(single.json()["sparse_embedding"]) == 1


@pytest.mark.parametrize("input_type", [None, "ingest", "search", "SEARCH"])
async def test_text_embedding(
    client: httpx.AsyncClient, snapshot: SnapshotAssertion, input_type: str | None
) -> None:
    payload: dict[str, Any] = {"input": [SKY, "a dead channel"]}
    if input_type is not None:
        payload["input_type"] = input_type
    response = await client.post(f"/_inference/text_embedding/{DENSE_ID}", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["text_embedding"]
    vectors = [entry["embedding"] for entry in body["text_embedding"]]
    assert [len(v) for v in vectors] == [384, 384]
    norms = [math.sqrt(sum(x * x for x in v)) for v in vectors]
    assert {"norms": rounded(norms)} == snapshot


async def test_rerank(client: httpx.AsyncClient, snapshot: SnapshotAssertion) -> None:
    documents = ["a recipe for lemon cake", "ships leaving the harbour at night", "the sky over the port"]
    response = await client.post(
        f"/_inference/rerank/{RERANK_ID}",
        json={"input": documents, "query": "port sky", "top_n": 2, "return_documents": True},
    )
    assert response.status_code == 200, response.text
    ranked = response.json()["rerank"]
    assert len(ranked) == 2
    assert [r["relevance_score"] for r in ranked] == sorted(
        (r["relevance_score"] for r in ranked), reverse=True
    )
    assert all(r["text"] == documents[r["index"]] for r in ranked)
    assert [(r["index"], r["text"]) for r in ranked] == snapshot
    # The `elasticsearch` service returns the documents unless told otherwise, as in Elasticsearch.
    untyped = await client.post(f"/_inference/{RERANK_ID}", json={"input": documents, "query": "port sky"})
    assert [set(r) for r in untyped.json()["rerank"]] == [{"index", "relevance_score", "text"}] * 3
    bare = await client.post(
        f"/_inference/{RERANK_ID}",
        json={"input": documents, "query": "port sky", "task_settings": {"return_documents": False}},
    )
    assert [set(r) for r in bare.json()["rerank"]] == [{"index", "relevance_score"}] * 3


async def test_timeout_from_query_or_body(client: httpx.AsyncClient) -> None:
    for path, body in (
        (f"/_inference/{SPARSE_ID}?timeout=30s", {"input": "x"}),
        (f"/_inference/{SPARSE_ID}", {"input": "x", "timeout": "1m"}),
        (f"/_inference/{SPARSE_ID}?timeout=-1", {"input": "x"}),
    ):
        assert (await client.post(path, json=body)).status_code == 200
    expired = await client.post(f"/_inference/{SPARSE_ID}?timeout=0", json={"input": SKY})
    assert expired.status_code == 408
    assert expired.json()["error"]["type"] == "elasticsearch_timeout_exception"


async def test_task_settings_reach_the_service(client: httpx.AsyncClient) -> None:
    plain = await client.post(f"/_inference/{SPARSE_ID}", json={"input": SKY})
    pruned = await client.post(
        f"/_inference/{SPARSE_ID}", json={"input": SKY, "task_settings": {"pruning": {"top_k": 5}}}
    )
    assert pruned.status_code == 200, pruned.text
    assert len(pruned.json()["sparse_embedding"][0]["embedding"]) == 5
    assert len(plain.json()["sparse_embedding"][0]["embedding"]) > 5


async def test_stream_timeout_bounds_the_first_chunk(fake_client: httpx.AsyncClient, fake: Any) -> None:
    fake.delay = 600.0  # the provider never answers within the request's timeout
    response = await fake_client.post(
        f"/_inference/completion/{COMPLETION_ID}/_stream?timeout=50ms", json={"input": "hello"}
    )
    assert response.status_code == 408, response.text
    assert response.json()["error"]["type"] == "elasticsearch_timeout_exception"
