"""The OpenAI-compatible providers (Mistral, DeepSeek, Groq, Fireworks AI, AI21, NVIDIA, Llama Stack,
OpenShift AI) against a local server that answers in each one's documented format."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.errors import RemoteServiceError, SettingsValidationError, StatusError
from sidecar.inference.service import InferenceService
from sidecar.inference.types import InputType

from .remote_fakes import EventStream, Recorded, fake_provider


def provider_answer(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    """OpenAI formats, plus Llama Stack embeddings, NVIDIA reranking and Cohere-style rerank."""
    path = rec.path
    if path.endswith("/inference/embeddings"):  # Llama Stack: Hugging Face answer format
        return 200, {"embeddings": [[float(len(t)), 0.0] for t in rec.body["contents"]]}, {}
    if path.endswith("/embeddings"):
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0]}
            for i, t in enumerate(rec.body["input"])
        ]
        return 200, {"object": "list", "data": data[::-1], "model": rec.body["model"]}, {}
    if path.endswith("/reranking"):  # NVIDIA retrieval: logits, best first
        passages = [p["text"] for p in rec.body["passages"]]
        ranked = sorted(range(len(passages)), key=lambda i: -len(passages[i]))
        return 200, {"rankings": [{"index": i, "logit": float(len(passages[i]))} for i in ranked]}, {}
    if path.endswith("/rerank"):  # Cohere format
        docs = rec.body["documents"]
        results = [{"index": i, "relevance_score": 1.0 / (1 + i)} for i in range(len(docs))]
        return 200, {"id": "r", "results": results[: rec.body.get("top_n") or len(docs)]}, {}
    messages = rec.body["messages"]
    text = " | ".join(str(m["content"]) for m in messages)
    if rec.body.get("stream"):
        chunks = [
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": "m",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "echo: "}}],
            },
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}],
            },
        ]
        return 200, EventStream(chunks), {}
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": f"echo: {text}"},
        "finish_reason": "stop",
    }
    return 200, {"id": "c1", "object": "chat.completion", "choices": [choice]}, {}


def create(remote: InferenceService, inference_id: str, task: str, service: str, **settings: Any) -> None:
    body: dict[str, Any] = {"service": service, "service_settings": settings}
    remote.registry.create(inference_id, task, body)


@pytest.mark.parametrize(
    ("service", "settings", "expected_body"),
    [
        (
            "mistral",
            {"model": "mistral-embed"},
            {"model": "mistral-embed", "input": ["a", "bbb"], "encoding_format": "float"},
        ),
        (
            "fireworksai",
            {"model_id": "fireworks/qwen3-embedding-8b", "dimensions": 2},
            {
                "input": ["a", "bbb"],
                "model": "fireworks/qwen3-embedding-8b",
                "encoding_format": "float",
                "dimensions": 2,
            },
        ),
        (
            "openshift_ai",
            {"model_id": "gritlm-7b"},
            {"input": ["a", "bbb"], "model": "gritlm-7b", "encoding_format": "float"},
        ),
        (
            "nvidia",
            {"model_id": "nvidia/llama-3.2-nv-embedqa-1b-v2"},
            {"input": ["a", "bbb"], "model": "nvidia/llama-3.2-nv-embedqa-1b-v2", "input_type": "query"},
        ),
    ],
)
async def test_embeddings_in_each_providers_format(
    remote: InferenceService, service: str, settings: dict[str, Any], expected_body: dict[str, Any]
) -> None:
    with fake_provider(provider_answer) as server:
        create(
            remote,
            "emb",
            "text_embedding",
            service,
            api_key="key-1",
            url=f"{server.url}/v1/embeddings",
            **settings,
        )
        out = await remote.infer("emb", ["a", "bbb"], input_type=InputType.SEARCH)
        assert [r.embedding for r in out.results] == [[1.0, 1.0], [3.0, 1.0]]
        sent = server.requests[0]
        assert sent.body == expected_body
        assert sent.headers["authorization"] == "Bearer key-1"


async def test_llama_stack_embeddings_and_nvidia_input_type_from_task_settings(
    remote: InferenceService,
) -> None:
    with fake_provider(provider_answer) as server:
        create(
            remote,
            "llama",
            "text_embedding",
            "llama",
            url=f"{server.url}/v1/inference/embeddings",
            model_id="all-MiniLM-L6-v2",
        )
        out = await remote.infer("llama", ["ab", "c"])
        assert [r.embedding for r in out.results] == [[2.0, 0.0], [1.0, 0.0]]
        assert server.requests[0].body == {"model_id": "all-MiniLM-L6-v2", "contents": ["ab", "c"]}
        assert "authorization" not in server.requests[0].headers  # Llama Stack needs no key

        remote.registry.create(
            "nv",
            "text_embedding",
            {
                "service": "nvidia",
                "service_settings": {"api_key": "k", "model_id": "m", "url": f"{server.url}/v1/embeddings"},
                "task_settings": {"input_type": "ingest", "truncate": "END"},
            },
        )
        await remote.infer("nv", ["x"])
        assert server.requests[-1].body == {
            "input": ["x"],
            "model": "m",
            "input_type": "passage",
            "truncate": "END",
        }


@pytest.mark.parametrize(
    ("service", "model_key", "task"),
    [
        ("mistral", "model", "completion"),
        ("deepseek", "model_id", "completion"),
        ("fireworksai", "model_id", "completion"),
        ("ai21", "model_id", "completion"),
        ("nvidia", "model_id", "completion"),
        ("llama", "model_id", "completion"),
        ("openshift_ai", "model_id", "completion"),
    ],
)
async def test_completion_in_openai_format(
    remote: InferenceService, service: str, model_key: str, task: str
) -> None:
    with fake_provider(provider_answer) as server:
        create(
            remote,
            "chat",
            task,
            service,
            api_key="k",
            url=f"{server.url}/v1/chat/completions",
            **{model_key: "m-1"},
        )
        out = await remote.infer("chat", ["hello"])
        assert [r.result for r in out.results] == ["echo: hello"]
        assert server.requests[0].body == {
            "messages": [{"role": "user", "content": "hello"}],
            "n": 1,
            "model": "m-1",
        }
        deltas = [d async for d in remote.stream_completion("chat", ["hi"])]
        assert deltas == ["echo: ", "hi"]
        assert server.requests[1].body["stream"] is True


async def test_groq_chat_completion_stream_in_unified_chunks(remote: InferenceService) -> None:
    with fake_provider(provider_answer) as server:
        create(
            remote,
            "groq",
            "chat_completion",
            "groq",
            api_key="gsk",
            model_id="llama-3.3-70b-versatile",
            url=f"{server.url}/openai/v1/chat/completions",
        )
        request = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0.5}
        chunks = [c async for c in remote.stream_chat("groq", request)]
        assert chunks[0] == {
            "id": "c1",
            "model": "m",
            "object": "chat.completion.chunk",
            "choices": [{"delta": {"content": "echo: ", "role": "assistant"}, "index": 0}],
        }
        assert chunks[1]["choices"][0] == {"delta": {"content": "hi"}, "index": 0, "finish_reason": "stop"}
        sent = server.requests[0]
        assert sent.body["model"] == "llama-3.3-70b-versatile" and sent.body["temperature"] == 0.5
        assert sent.headers["authorization"] == "Bearer gsk"


async def test_nvidia_and_openshift_rerank(remote: InferenceService) -> None:
    docs = ["short", "a much longer passage", "mid length"]
    with fake_provider(provider_answer) as server:
        create(
            remote,
            "nv-rr",
            "rerank",
            "nvidia",
            api_key="k",
            model_id="nv-rerank-qa-mistral-4b:1",
            url=f"{server.url}/v1/retrieval/nvidia/reranking",
        )
        out = await remote.infer("nv-rr", docs, query="q", top_n=2, return_documents=True)
        assert [(r.index, r.text) for r in out.results] == [(1, docs[1]), (2, docs[2])]
        assert server.requests[0].body == {
            "model": "nv-rerank-qa-mistral-4b:1",
            "query": {"text": "q"},
            "passages": [{"text": d} for d in docs],
        }
        create(
            remote,
            "os-rr",
            "rerank",
            "openshift_ai",
            api_key="k",
            url=f"{server.url}/v1/rerank",
            model_id="bge-reranker-v2-m3",
        )
        out = await remote.infer("os-rr", docs, query="q", top_n=2)
        assert [(r.index, r.text) for r in out.results] == [(0, None), (1, None)]
        assert server.requests[1].body == {
            "query": "q",
            "documents": docs,
            "model": "bge-reranker-v2-m3",
            "top_n": 2,
            "return_documents": False,
        }


MISTRAL_429 = {"message": "Requests rate limit exceeded"}
MISTRAL_401 = {
    "object": "error",
    "message": "Unauthorized",
    "type": "invalid_request_error",
    "param": None,
    "code": None,
}


async def test_429_is_retried_and_error_bodies_become_the_reason(remote: InferenceService) -> None:
    with fake_provider(provider_answer) as server:
        server.script.append((429, MISTRAL_429, {"retry-after": "0"}))
        create(
            remote,
            "mi",
            "text_embedding",
            "mistral",
            api_key="k",
            model="mistral-embed",
            url=f"{server.url}/v1/embeddings",
        )
        out = await remote.infer("mi", ["a"])
        assert len(out.results) == 1 and len(server.requests) == 2
        server.script.append((401, MISTRAL_401, {}))
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("mi", ["a"])
        assert err.value.status == 401 and not err.value.retriable
        assert err.value.reason == (
            "Received an unsuccessful status code for request from inference entity id [mi] status [401]. "
            "Error message: [Unauthorized]"
        )
    with fake_provider(lambda rec: (429, MISTRAL_429, {})) as server:
        create(remote, "mi2", "completion", "mistral", api_key="k", model="m", url=server.url)
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("mi2", ["a"])
        assert err.value.status == 429 and err.value.retriable


def test_settings_are_checked_with_elasticsearchs_messages(remote: InferenceService) -> None:
    with pytest.raises(SettingsValidationError) as err:
        create(remote, "x", "text_embedding", "mistral", api_key="k", model_id="wrong-key")
    assert err.value.reason.startswith(
        "Validation Failed: 1: [service_settings] does not contain the required setting [model];"
    )
    with pytest.raises(StatusError) as status:
        create(remote, "x", "text_embedding", "groq", model_id="m")
    assert status.value.reason == "The [groq] service does not support task type [text_embedding]"
    with pytest.raises(SettingsValidationError) as err:
        create(
            remote,
            "x",
            "text_embedding",
            "nvidia",
            api_key="k",
            model_id="m",
            similarity="manhattan",
            dimensions=0,
        )
    assert err.value.reason == (
        "Validation Failed: 1: [service_settings] Invalid value [manhattan] received. [similarity] must be one of "
        "[cosine, dot_product, l2_norm];2: [service_settings] Invalid value [0]. [dimensions] must be a positive integer;"
    )
    with pytest.raises(SettingsValidationError) as err:
        remote.registry.create(
            "x",
            "text_embedding",
            {
                "service": "nvidia",
                "service_settings": {"api_key": "k", "model_id": "m"},
                "task_settings": {"input_type": "query"},
            },
        )
    assert err.value.reason == (
        "Validation Failed: 1: [task_settings] Invalid value [query] received. [input_type] must be one of [ingest, search];"
    )
    endpoint = remote.registry.create(
        "ok",
        "completion",
        {"service": "deepseek", "service_settings": {"api_key": "sk", "model_id": "deepseek-chat"}},
    )
    assert "api_key" not in endpoint.public_dict()["service_settings"] and endpoint.secrets == {
        "api_key": "sk"
    }
