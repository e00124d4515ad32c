"""Task types added to the first services: openai `embedding` (9.x), cohere `completion`,
hugging_face `completion` and `chat_completion`; local servers in each provider's format."""

from __future__ import annotations

from typing import Any

from sidecar.inference.service import InferenceService
from sidecar.inference.types import TaskType

from .remote_fakes import EventStream, Recorded, fake_provider


def openai_format(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    if "input" in rec.body:
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 0.0]}
            for i, t in enumerate(rec.body["input"])
        ]
        return 200, {"object": "list", "data": data, "model": rec.body["model"]}, {}
    text = rec.body["messages"][-1]["content"]
    if rec.body.get("stream"):
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "tgi",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": f"tgi: {text}"},
                    "finish_reason": "stop",
                }
            ],
        }
        return 200, EventStream([chunk]), {}
    return (
        200,
        {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"tgi: {text}"}}],
        },
        {},
    )


async def test_openai_embedding_task(remote: InferenceService) -> None:
    with fake_provider(openai_format) as server:
        remote.registry.create(
            "oa-emb",
            "embedding",
            {
                "service": "openai",
                "service_settings": {
                    "api_key": "sk",
                    "model_id": "text-embedding-3-small",
                    "url": server.url,
                },
            },
        )
        out = await remote.infer("oa-emb", ["abc"], task_type=TaskType.EMBEDDING)
        assert out.task_type == TaskType.EMBEDDING
        assert [r.embedding for r in out.results] == [[3.0, 0.0]]


async def test_cohere_completion_through_v2_chat(remote: InferenceService) -> None:
    def cohere(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
        content = [
            {"type": "text", "text": "Cohere: "},
            {"type": "text", "text": rec.body["messages"][0]["content"]},
        ]
        return (
            200,
            {"id": "c", "finish_reason": "COMPLETE", "message": {"role": "assistant", "content": content}},
            {},
        )

    with fake_provider(cohere) as server:
        remote.registry.create(
            "co-c",
            "completion",
            {
                "service": "cohere",
                "service_settings": {"api_key": "co", "model_id": "command-r-plus", "url": server.url},
            },
        )
        out = await remote.infer("co-c", ["hi"])
        assert [r.result for r in out.results] == ["Cohere: hi"]
        sent = server.requests[0]
        assert sent.path == "/v2/chat" and sent.headers["authorization"] == "Bearer co"
        assert sent.body == {
            "messages": [{"role": "user", "content": "hi"}],
            "stream": False,
            "model": "command-r-plus",
        }


async def test_hugging_face_completion_and_chat_on_an_openai_compatible_endpoint(
    remote: InferenceService,
) -> None:
    with fake_provider(openai_format) as server:
        settings = {"api_key": "hf_x", "url": f"{server.url}/v1/chat/completions", "model_id": "tgi"}
        remote.registry.create(
            "hf-c", "completion", {"service": "hugging_face", "service_settings": settings}
        )
        out = await remote.infer("hf-c", ["hello"])
        assert [r.result for r in out.results] == ["tgi: hello"]
        assert server.requests[0].headers["authorization"] == "Bearer hf_x"
        assert server.requests[0].body == {
            "messages": [{"role": "user", "content": "hello"}],
            "n": 1,
            "model": "tgi",
        }

        remote.registry.create(
            "hf-chat", "chat_completion", {"service": "hugging_face", "service_settings": settings}
        )
        chunks = [
            c async for c in remote.stream_chat("hf-chat", {"messages": [{"role": "user", "content": "yo"}]})
        ]
        assert chunks[0]["choices"][0]["delta"] == {"content": "tgi: yo", "role": "assistant"}


def cohere_stream(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    """Cohere's v2 chat stream: message-start, content deltas, content-end, message-end (no [DONE])."""
    said = rec.body["messages"][0]["content"]
    events: list[Any] = [
        {"type": "message-start", "id": "m1", "delta": {"message": {"role": "assistant"}}},
        {
            "type": "content-start",
            "index": 0,
            "delta": {"message": {"content": {"type": "text", "text": ""}}},
        },
    ]
    events += [
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}}
        for piece in ("Cohere: ", said)
    ]
    events += [
        {"type": "content-end", "index": 0},
        {
            "type": "message-end",
            "delta": {"finish_reason": "COMPLETE", "usage": {"tokens": {"output_tokens": 2}}},
        },
    ]
    return 200, EventStream(events, done=False), {}


async def test_cohere_completion_streams_content_deltas_until_message_end(remote: InferenceService) -> None:
    with fake_provider(cohere_stream) as server:
        remote.registry.create(
            "co-s",
            "completion",
            {
                "service": "cohere",
                "service_settings": {"api_key": "co", "model_id": "command-r", "url": server.url},
            },
        )
        assert [d async for d in remote.stream_completion("co-s", ["hi"])] == ["Cohere: ", "hi"]
        assert server.requests[0].body == {
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "model": "command-r",
        }


async def test_a_service_that_cannot_stream_answers_elasticsearchs_405(remote: InferenceService) -> None:
    import pytest

    from sidecar.errors import StatusError

    remote.registry.create(
        "al-c",
        "completion",
        {
            "service": "alibabacloud-ai-search",
            "service_settings": {
                "api_key": "k",
                "host": "http://x.example",
                "service_id": "s",
                "workspace": "w",
            },
        },
    )
    with pytest.raises(StatusError) as err:
        _ = [d async for d in remote.stream_completion("al-c", ["hi"])]
    assert (err.value.status, err.value.reason) == (
        405,
        "Streaming is not allowed for service [alibabacloud-ai-search].",
    )
