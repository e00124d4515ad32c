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


async def test_embedding_task_type(client: httpx.AsyncClient) -> None:
    body = {"service": "elasticsearch", "service_settings": {"model_id": ".minilm_l6"}}
    created = await client.put("/_inference/embedding/perform-embedding", json=body)
    assert created.status_code == 200, created.text
    assert created.json()["task_type"] == "embedding"
    assert created.json()["service_settings"]["dimensions"] == 384
    try:
        texts = ["The first text", "The second text"]  # Elasticsearch's text-only example
        plain = await client.post("/_inference/embedding/perform-embedding", json={"input": texts})
        assert plain.status_code == 200, plain.text
        assert [len(e["embedding"]) for e in plain.json()["embeddings"]] == [384, 384]
        objects = [{"content": {"type": "text", "value": t}} for t in texts[:1]] + [
            {"content": [{"type": "text", "format": "text", "value": texts[1]}]}
        ]
        same = await client.post(
            "/_inference/embedding/perform-embedding", json={"input": objects, "input_type": "INGEST"}
        )
        assert same.status_code == 200, same.text
        for got, want in zip(same.json()["embeddings"], plain.json()["embeddings"], strict=True):
            assert got["embedding"] == pytest.approx(want["embedding"], abs=1e-6)
        image = {"content": {"type": "image", "format": "base64", "value": "data:image/jpeg;base64,AAAA"}}
        refused = await client.post("/_inference/embedding/perform-embedding", json={"input": [image]})
        assert refused.status_code == 400
        assert refused.json()["error"]["reason"] == (
            "[input[0].content] has content of type [image]; this server's models accept only [text] content"
        )
        mismatch = await client.post("/_inference/embedding/.minilm-l6", json={"input": "x"})
        assert mismatch.status_code == 400
    finally:
        await client.delete("/_inference/perform-embedding")


async def test_rerank_input_objects(client: httpx.AsyncClient) -> None:
    documents = ["a recipe for lemon cake", "the sky over the port"]
    as_objects = {
        "query": {"type": "text", "value": "port sky"},
        "input": [{"type": "text", "format": "text", "value": d} for d in documents],
    }
    ranked = await client.post(f"/_inference/rerank/{RERANK_ID}", json=as_objects)
    assert ranked.status_code == 200, ranked.text
    assert [r["index"] for r in ranked.json()["rerank"]] == [1, 0]
    image = {**as_objects, "input": [{"type": "image", "format": "base64", "value": "AAAA"}]}
    refused = await client.post(f"/_inference/rerank/{RERANK_ID}", json=image)
    assert refused.status_code == 400
    assert "content of type [image]" in refused.json()["error"]["reason"]


async def test_chat_completion_without_streaming(open_client: Any) -> None:
    from tests.unit.api.test_remote_completion import _put
    from tests.unit.inference.remote_fakes import EventStream, fake_provider
    from tests.unit.inference.test_openai_completion import STREAM

    with fake_provider() as server:
        async with open_client() as client:
            await _put(client, server, "chat_completion", "chat-plain")
            server.script.append((200, EventStream(STREAM), {}))
            request = {
                "messages": [{"role": "user", "content": "Say hello"}],
                "reasoning": {"effort": "low", "summary": "concise"},
            }
            answer = await client.post("/_inference/chat_completion/chat-plain", json=request)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["object"] == "chat.completion" and body["id"]
            assert body["choices"] == [
                {"finish_reason": "stop", "index": 0, "message": {"content": "Hello", "role": "assistant"}}
            ]
            assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
            assert "reasoning" not in server.requests[0].body  # validated, not forwarded
            bad = await client.post(
                "/_inference/chat_completion/chat-plain",
                json={**request, "reasoning": {"effort": "enormous"}},
            )
            assert bad.status_code == 400
        assert len(server.requests) == 1


async def test_an_empty_text_has_an_empty_sparse_embedding(client: httpx.AsyncClient) -> None:
    """Like Elasticsearch's semantic_text, a text with no content gets no terms (the model alone
    would answer with the weights of its special tokens); the other inputs keep their places."""
    response = await client.post(
        f"/_inference/sparse_embedding/{SPARSE_ID}", json={"input": ["", "hello world", " \n\t"]}
    )
    assert response.status_code == 200, response.text
    empty, hello, blank = response.json()["sparse_embedding"]
    assert empty == blank == {"is_truncated": False, "embedding": {}}
    alone = await client.post(f"/_inference/sparse_embedding/{SPARSE_ID}", json={"input": "hello world"})
    assert hello == alone.json()["sparse_embedding"][0]
    only_empty = await client.post(f"/_inference/{SPARSE_ID}", json={"input": ""})
    assert only_empty.json() == {"sparse_embedding": [{"is_truncated": False, "embedding": {}}]}


async def test_an_empty_text_has_no_dense_embedding(client: httpx.AsyncClient) -> None:
    """No vector stands for no text (a zero vector has no cosine): a validation error naming it."""
    response = await client.post(f"/_inference/text_embedding/{DENSE_ID}", json={"input": ["hello", "  "]})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "action_request_validation_exception"
    assert response.json()["error"]["reason"] == (
        "Validation Failed: 1: Field [input][1] cannot be empty or whitespace only for task type "
        "[text_embedding];"
    )
