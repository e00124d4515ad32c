"""Amazon SageMaker against a local server that checks AWS Signature V4 (service `sagemaker`) and
answers as an endpoint with the `openai` or the `elastic` API would."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.errors import SettingsValidationError, StatusError
from sidecar.inference.service import InferenceService
from sidecar.inference.types import InputType

from .remote_fakes import Recorded, fake_provider, sigv4_valid

SECRET, REGION = "sm-secret", "us-west-2"


def endpoint(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    if not sigv4_valid(rec, SECRET, REGION, "sagemaker"):
        return (
            403,
            {"message": "The request signature we calculated does not match the signature you provided."},
            {},
        )
    body = rec.body
    if "messages" in body:  # openai chat
        if body.get("tools"):
            call = {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": 1}'},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
            usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
            answer = {
                "id": "c1",
                "object": "chat.completion",
                "model": "m",
                "choices": [choice],
                "usage": usage,
            }
            return 200, answer, {}
        message = {"role": "assistant", "content": "sm: " + body["messages"][0]["content"]}
        return 200, {"object": "chat.completion", "choices": [{"index": 0, "message": message}]}, {}
    if "input" in body and "query" in body:  # elastic rerank
        docs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        ranked = sorted(range(len(docs)), key=lambda i: -len(docs[i]))
        return 200, {"rerank": [{"index": i, "relevance_score": float(len(docs[i]))} for i in ranked]}, {}
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    if rec.path.startswith("/endpoints/sparse"):
        return (
            200,
            {"sparse_embedding": [{"is_truncated": False, "embedding": {t: 1.0, "x": 0.5}} for t in texts]},
            {},
        )
    if rec.path.startswith("/endpoints/elastic"):
        return 200, {"text_embedding_bytes": [{"embedding": [len(t), -1]} for t in texts]}, {}
    data = [{"object": "embedding", "index": i, "embedding": [float(len(t))]} for i, t in enumerate(texts)]
    return 200, {"object": "list", "data": data}, {}


def create(
    remote: InferenceService, inference_id: str, task: str, url: str, name: str, api: str, **extra: Any
) -> None:
    task_settings = extra.pop("task_settings", {})
    settings = {
        "access_key": "AKIAEXAMPLE",
        "secret_key": SECRET,
        "region": REGION,
        "endpoint_name": name,
        "api": api,
        "url": url,
        **extra,
    }
    remote.registry.create(
        inference_id,
        task,
        {"service": "amazon_sagemaker", "service_settings": settings, "task_settings": task_settings},
    )


async def test_openai_api_embeddings_and_completion_with_sagemaker_headers(remote: InferenceService) -> None:
    with fake_provider(endpoint) as server:
        create(
            remote,
            "sm",
            "text_embedding",
            server.url,
            "my-endpoint",
            "openai",
            target_model="model-a.tar.gz",
            batch_size=2,
            task_settings={"custom_attributes": "c=1", "user": "u"},
        )
        out = await remote.infer("sm", ["a", "bb", "ccc"])
        assert [r.embedding for r in out.results] == [[1.0], [2.0], [3.0]]
        assert [r.body for r in server.requests] == [
            {"input": ["a", "bb"], "user": "u"},
            {"input": ["ccc"], "user": "u"},
        ]
        sent = server.requests[0]
        assert sent.path == "/endpoints/my-endpoint/invocations"
        assert sent.headers["x-amzn-sagemaker-target-model"] == "model-a.tar.gz"
        assert sent.headers["x-amzn-sagemaker-custom-attributes"] == "c=1"

        create(remote, "sm-c", "completion", server.url, "my-endpoint", "openai")
        done = await remote.infer("sm-c", ["hello"])
        assert [r.result for r in done.results] == ["sm: hello"]


async def test_elastic_api_bytes_sparse_and_rerank(remote: InferenceService) -> None:
    with fake_provider(endpoint) as server:
        create(
            remote,
            "el",
            "text_embedding",
            server.url,
            "elastic-e5",
            "elastic",
            element_type="byte",
            similarity="cosine",
        )
        out = await remote.infer("el", ["abc"], input_type=InputType.SEARCH)
        assert out.embedding_type == "byte" and out.results[0].embedding == [3, -1]
        assert server.requests[-1].body == {"input": "abc", "input_type": "search"}

        create(remote, "el-s", "sparse_embedding", server.url, "sparse-elser", "elastic")
        sparse = await remote.infer("el-s", ["sky", "port"])
        assert [r.embedding for r in sparse.results] == [{"sky": 1.0, "x": 0.5}, {"port": 1.0, "x": 0.5}]
        assert server.requests[-1].body == {"input": ["sky", "port"]}

        create(remote, "el-r", "rerank", server.url, "elastic-rerank", "elastic")
        ranked = await remote.infer("el-r", ["a", "ccc"], query="q", top_n=1)
        assert [r.index for r in ranked.results] == [1]
        assert server.requests[-1].body == {
            "input": ["a", "ccc"],
            "query": "q",
            "return_documents": False,
            "top_n": 1,
        }
        assert all(sigv4_valid(r, SECRET, REGION, "sagemaker") for r in server.requests)


def test_api_and_task_checks(remote: InferenceService) -> None:
    with pytest.raises(StatusError) as err:
        create(remote, "x", "sparse_embedding", "http://x", "e", "openai")
    assert (
        err.value.reason
        == "The [openai] api of the [amazon_sagemaker] service does not support task type [sparse_embedding]"
    )
    with pytest.raises(SettingsValidationError) as missing:
        create(remote, "x", "text_embedding", "http://x", "e", "elastic")
    assert missing.value.reason == (
        "Validation Failed: 1: [service_settings] does not contain the required setting [element_type];"
    )
    # similarity is optional (the specification's example names dimensions and element_type only)
    create(
        remote, "el-ok", "text_embedding", "http://x", "e", "elastic", element_type="float", dimensions=384
    )


async def test_openai_api_chat_completion_and_stream_as_one_chunk(remote: InferenceService) -> None:
    from sidecar.api.results import chat_completion_body

    with fake_provider(endpoint) as server:
        create(remote, "sm-chat", "chat_completion", server.url, "my-endpoint", "openai")
        tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
        ask = {"messages": [{"role": "user", "content": "find"}], "tools": tools}
        chunks = [c async for c in remote.stream_chat("sm-chat", ask)]
        sent = server.requests[-1]
        assert sent.body == {"messages": [{"role": "user", "content": "find"}], "n": 1, "tools": tools}
        assert sigv4_valid(sent, SECRET, REGION, "sagemaker")
        answer = chat_completion_body(chunks)
        assert answer["id"] == "c1" and answer["usage"] == {
            "prompt_tokens": 5,
            "completion_tokens": 2,
            "total_tokens": 7,
        }
        assert answer["choices"] == [
            {
                "finish_reason": "tool_calls",
                "index": 0,
                "message": {
                    "content": None,
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "function": {"arguments": '{"q": 1}', "name": "lookup"},
                            "id": "call_1",
                            "type": "function",
                        }
                    ],
                },
            }
        ]

        create(remote, "sm-s", "completion", server.url, "my-endpoint", "openai")
        assert [d async for d in remote.stream_completion("sm-s", ["hello"])] == ["sm: hello"]


async def test_elastic_api_passes_other_task_settings_on(remote: InferenceService) -> None:
    # Elasticsearch's elastic api takes free-form task settings, stored and per request (a request's
    # map replacing the stored one per key as for other services), and sends them as `task_settings`;
    # the service's own (custom_attributes, ...) stay headers.
    with fake_provider(endpoint) as server:
        create(
            remote,
            "el-t",
            "sparse_embedding",
            server.url,
            "sparse-elser",
            "elastic",
            task_settings={"threshold": {"min_weight": 0.1}, "session_id": "s-1"},
        )
        await remote.infer("el-t", ["sky"])
        sent = server.requests[-1]
        assert sent.body == {"input": "sky", "task_settings": {"threshold": {"min_weight": 0.1}}}
        assert sent.headers["x-amzn-sagemaker-session-id"] == "s-1"
        await remote.infer("el-t", ["sky"], task_settings={"expand": True})
        assert server.requests[-1].body["task_settings"] == {"threshold": {"min_weight": 0.1}, "expand": True}
    with pytest.raises(StatusError):  # the openai api still refuses what it does not know
        create(remote, "oa-t", "text_embedding", "http://x", "e", "openai", task_settings={"expand": True})
