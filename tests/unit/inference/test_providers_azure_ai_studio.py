"""Azure AI Studio (Foundry) deployments against a local server answering in their formats: OpenAI's
embeddings and chat formats on `token` endpoints, `{"output"}` on `realtime` ones, Cohere's rerank."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.errors import SettingsValidationError, StatusError
from sidecar.inference.service import InferenceService
from sidecar.inference.types import InputType

from .remote_fakes import EventStream, Recorded, fake_provider


def studio(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    if rec.path.startswith("/embed"):
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0]}
            for i, t in enumerate(rec.body["input"])
        ]
        return 200, {"object": "list", "data": data}, {}
    if rec.path.startswith("/realtime"):
        said = " | ".join(m["content"] for m in rec.body["input_data"]["input_string"])
        return 200, {"output": f"realtime: {said}"}, {}
    if rec.path.startswith("/rerank"):
        docs = rec.body["documents"]
        order = sorted(range(len(docs)), key=lambda i: -len(docs[i]))[: rec.body.get("top_n") or len(docs)]
        return (
            200,
            {"id": "r", "results": [{"index": i, "relevance_score": float(len(docs[i]))} for i in order]},
            {},
        )
    said = " | ".join(m["content"] for m in rec.body["messages"])
    if rec.body.get("stream"):
        chunks = [{"choices": [{"index": 0, "delta": {"content": piece}}]} for piece in ("tok", "en")]
        return 200, EventStream(chunks), {}
    message = {"role": "assistant", "content": f"token: {said}"}
    return (
        200,
        {"object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]},
        {},
    )


def create(
    remote: InferenceService,
    inference_id: str,
    task: str,
    target: str,
    provider: str,
    endpoint_type: str,
    **task_settings: Any,
) -> None:
    remote.registry.create(
        inference_id,
        task,
        {
            "service": "azureaistudio",
            "service_settings": {
                "api_key": "az-key",
                "target": target,
                "provider": provider,
                "endpoint_type": endpoint_type,
            },
            "task_settings": task_settings,
        },
    )


async def test_embeddings_and_completion_with_each_auth_header(remote: InferenceService) -> None:
    with fake_provider(studio) as server:
        create(remote, "st-e", "text_embedding", f"{server.url}/embed", "openai", "token", user="u1")
        out = await remote.infer("st-e", ["abc"], input_type=InputType.INGEST)
        assert [r.embedding for r in out.results] == [[3.0, 1.0]]
        sent = server.requests[-1]
        assert sent.headers["api-key"] == "az-key" and "authorization" not in sent.headers
        assert sent.body == {"input": ["abc"], "user": "u1", "input_type": "document"}

        create(
            remote,
            "st-c",
            "completion",
            f"{server.url}/chat",
            "meta",
            "token",
            temperature=0.5,
            max_new_tokens=20,
        )
        out = await remote.infer("st-c", ["hi"])
        assert [r.result for r in out.results] == ["token: hi"]
        sent = server.requests[-1]
        assert sent.headers["authorization"] == "az-key"  # token endpoints of other providers: the key as is
        assert sent.body == {
            "messages": [{"content": "hi", "role": "user"}],
            "parameters": {"temperature": 0.5, "max_new_tokens": 20},
        }
        assert [d async for d in remote.stream_completion("st-c", ["hi"])] == ["tok", "en"]
        assert server.requests[-1].body["stream"] is True

        create(remote, "st-rt", "completion", f"{server.url}/realtime", "mistral", "realtime", do_sample=True)
        out = await remote.infer("st-rt", ["hello"])
        assert [r.result for r in out.results] == ["realtime: hello"]
        sent = server.requests[-1]
        assert sent.headers["authorization"] == "Bearer az-key"
        assert sent.body == {
            "input_data": {
                "input_string": [{"content": "hello", "role": "user"}],
                "parameters": {"do_sample": True},
            }
        }
        with pytest.raises(StatusError):
            _ = [d async for d in remote.stream_completion("st-rt", ["hello"])]


async def test_cohere_rerank(remote: InferenceService) -> None:
    with fake_provider(studio) as server:
        create(remote, "st-r", "rerank", f"{server.url}/rerank", "cohere", "token", top_n=2)
        out = await remote.infer("st-r", ["a", "ccc", "bb"], query="q", return_documents=True)
        assert [(r.index, r.text) for r in out.results] == [(1, "ccc"), (2, "bb")]
        assert server.requests[-1].body == {
            "documents": ["a", "ccc", "bb"],
            "query": "q",
            "return_documents": True,
            "top_n": 2,
        }


@pytest.mark.parametrize(
    ("task", "provider", "endpoint_type", "message"),
    [
        (
            "text_embedding",
            "meta",
            "token",
            "The [text_embedding] task type for provider [meta] is not available",
        ),
        (
            "completion",
            "mistral",
            "token",
            "The [token] endpoint type with [completion] task type for provider [mistral] is not available",
        ),
        (
            "text_embedding",
            "openai",
            "realtime",
            "The [realtime] endpoint type with [text_embedding] task type for provider [openai] is not available",
        ),
    ],
)
def test_provider_and_endpoint_type_follow_elasticsearchs_table(
    remote: InferenceService, task: str, provider: str, endpoint_type: str, message: str
) -> None:
    with pytest.raises(StatusError) as err:
        create(remote, "st-x", task, "https://x.example/score", provider, endpoint_type)
    assert err.value.reason == message


def test_settings_are_checked(remote: InferenceService) -> None:
    with pytest.raises(SettingsValidationError) as err:
        create(remote, "st-y", "completion", "file:///etc/passwd", "nobody", "token")
    assert (
        "[provider] must be one of [openai, mistral, meta, microsoft_phi, cohere, databricks]"
        in err.value.reason
    )
    assert "[target]" in err.value.reason
