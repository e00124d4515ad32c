"""AlibabaCloud AI Search against a local server that answers in its documented formats."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.errors import RemoteServiceError
from sidecar.inference.service import InferenceService
from sidecar.inference.types import InputType

from .remote_fakes import Recorded, fake_provider

THROTTLED = {
    "request_id": "r1",
    "latency": 0,
    "code": "Throttling.User",
    "message": "Request was denied due to user flow control.",
}


def alibaba(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    envelope = {
        "request_id": "651B3087-8A07-4BF3-B931-9C4E7B60F52D",
        "latency": 38,
        "usage": {"token_count": 3},
    }
    if "/text-sparse-embedding/" in rec.path:
        rows = [
            {
                "index": i,
                "embedding": [
                    {
                        "token_id": 100 + len(t),
                        "weight": 0.5,
                        **({"token": t[:2]} if rec.body.get("return_token") else {}),
                    },
                    {
                        "token_id": 6,
                        "weight": 0.25,
                        **({"token": "▁"} if rec.body.get("return_token") else {}),
                    },
                ],
            }
            for i, t in enumerate(rec.body["input"])
        ]
        return 200, {**envelope, "result": {"sparse_embeddings": rows[::-1]}}, {}
    if "/text-embedding/" in rec.path:
        rows = [{"index": i, "embedding": [float(len(t)), 1.0]} for i, t in enumerate(rec.body["input"])]
        return 200, {**envelope, "result": {"embeddings": rows}}, {}
    if "/ranker/" in rec.path:
        scores = sorted(
            ({"index": i, "score": 1.0 / (1 + len(d))} for i, d in enumerate(rec.body["docs"])),
            key=lambda s: -s["score"],
        )
        return 200, {**envelope, "result": {"scores": scores}}, {}
    turns = [f"{m['role']}:{m['content']}" for m in rec.body["messages"]]
    return 200, {**envelope, "result": {"text": " ".join(turns)}}, {}


def create(
    remote: InferenceService, inference_id: str, task: str, host: str, service_id: str, **task_settings: Any
) -> None:
    settings = {
        "api_key": "ali-key",
        "host": host,
        "http_schema": "http",
        "workspace": "default",
        "service_id": service_id,
    }
    remote.registry.create(
        inference_id,
        task,
        {"service": "alibabacloud-ai-search", "service_settings": settings, "task_settings": task_settings},
    )


async def test_sparse_embeddings_with_token_ids_or_names(remote: InferenceService) -> None:
    with fake_provider(alibaba) as server:
        host = server.url.removeprefix("http://")
        create(remote, "ali-sparse", "sparse_embedding", host, "ops-text-sparse-embedding-001")
        out = await remote.infer("ali-sparse", ["abc", "de"])
        assert [r.embedding for r in out.results] == [{"103": 0.5, "6": 0.25}, {"102": 0.5, "6": 0.25}]
        sent = server.requests[0]
        assert (
            sent.path == "/v3/openapi/workspaces/default/text-sparse-embedding/ops-text-sparse-embedding-001"
        )
        assert sent.headers["authorization"] == "Bearer ali-key"
        assert sent.body == {"input": ["abc", "de"]}

        create(
            remote,
            "ali-tokens",
            "sparse_embedding",
            host,
            "ops-text-sparse-embedding-001",
            input_type="ingest",
            return_token=True,
        )
        out = await remote.infer("ali-tokens", ["abc"])
        assert out.results[0].embedding == {"ab": 0.5, "▁": 0.25}
        assert server.requests[-1].body == {"input": ["abc"], "input_type": "document", "return_token": True}


async def test_dense_rerank_and_completion(remote: InferenceService) -> None:
    with fake_provider(alibaba) as server:
        host = server.url.removeprefix("http://")
        create(remote, "ali-dense", "text_embedding", host, "ops-text-embedding-001")
        out = await remote.infer("ali-dense", ["ab"], input_type=InputType.SEARCH)
        assert out.results[0].embedding == [2.0, 1.0]
        assert server.requests[-1].body == {"input": ["ab"], "input_type": "query"}

        create(remote, "ali-rr", "rerank", host, "ops-bge-reranker-larger")
        ranked = await remote.infer("ali-rr", ["long doc", "a"], query="q", return_documents=True)
        assert [(r.index, r.text) for r in ranked.results] == [(1, "a"), (0, "long doc")]
        assert server.requests[-1].body == {"query": "q", "docs": ["long doc", "a"]}

        create(remote, "ali-c", "completion", host, "ops-qwen-turbo")
        done = await remote.infer("ali-c", ["hi", "hello", "how are you"])
        assert [r.result for r in done.results] == ["user:hi assistant:hello user:how are you"]


async def test_throttling_is_retried_then_reported(remote: InferenceService) -> None:
    with fake_provider(lambda rec: (429, THROTTLED, {})) as server:
        create(remote, "ali", "text_embedding", server.url.removeprefix("http://"), "ops-text-embedding-001")
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("ali", ["x"])
        assert err.value.status == 429 and err.value.retriable and len(server.requests) == 3
        assert err.value.reason.endswith("Error message: [Request was denied due to user flow control.]")
