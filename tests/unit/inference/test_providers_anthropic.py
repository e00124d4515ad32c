"""Anthropic's Messages API against a local server in its documented format."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.errors import RemoteServiceError, SettingsValidationError
from sidecar.inference.service import InferenceService

from .remote_fakes import EventStream, Recorded, fake_provider

OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def messages(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    if rec.headers.get("x-api-key") != "sk-ant" or rec.headers.get("anthropic-version") != "2023-06-01":
        return (
            401,
            {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
            {},
        )
    text = " / ".join(m["content"] for m in rec.body["messages"])
    content = [{"type": "text", "text": "Claude: "}, {"type": "text", "text": text}]
    return (
        200,
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": content,
            "stop_reason": "end_turn",
        },
        {},
    )


def create(remote: InferenceService, url: str, api_key: str = "sk-ant", **task_settings: Any) -> None:
    remote.registry.create(
        "claude",
        "completion",
        {
            "service": "anthropic",
            "service_settings": {"api_key": api_key, "model_id": "claude-3-5-haiku-latest", "url": url},
            "task_settings": task_settings,
        },
    )


async def test_completion_with_overload_retried(remote: InferenceService) -> None:
    with fake_provider(messages) as server:
        server.script.append((529, OVERLOADED, {}))
        create(remote, f"{server.url}/v1/messages", max_tokens=128, temperature=0.3)
        out = await remote.infer("claude", ["hi"])
        assert [r.result for r in out.results] == ["Claude: hi"]
        assert len(server.requests) == 2
        assert server.requests[-1].body == {
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 128,
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.3,
        }


async def test_authentication_error_is_the_reason(remote: InferenceService) -> None:
    with fake_provider(messages) as server:
        create(remote, server.url, api_key="wrong", max_tokens=8)
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("claude", ["hi"])
        assert err.value.status == 401
        assert err.value.reason.endswith("Error message: [invalid x-api-key]")


def test_max_tokens_is_required(remote: InferenceService) -> None:
    with pytest.raises(SettingsValidationError) as err:
        create(remote, "http://x")
    assert (
        err.value.reason
        == "Validation Failed: 1: [task_settings] does not contain the required setting [max_tokens];"
    )


def stream_events(*texts: str, error: str | None = None) -> EventStream:
    """Anthropic's streamed message: start, one text block in deltas, stop (or an error event)."""
    events: list[Any] = [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": []},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}} for t in texts
    ]
    if error:
        events.append({"type": "error", "error": {"type": "overloaded_error", "message": error}})
    events += [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    ]
    return EventStream(events)


async def test_streamed_completion_ends_at_message_stop(remote: InferenceService) -> None:
    with fake_provider(lambda rec: (200, stream_events("Hel", "lo"), {})) as server:
        create(remote, server.url, max_tokens=16)
        deltas = [d async for d in remote.stream_completion("claude", ["hi"])]
        assert deltas == ["Hel", "lo"]
        assert server.requests[0].body["stream"] is True


async def test_an_error_event_mid_stream_fails_the_stream(remote: InferenceService) -> None:
    with fake_provider(lambda rec: (200, stream_events("Hel", error="Overloaded"), {})) as server:
        create(remote, server.url, max_tokens=16)
        seen: list[str] = []
        with pytest.raises(RemoteServiceError) as err:
            async for delta in remote.stream_completion("claude", ["hi"]):
                seen.append(delta)
        assert seen == ["Hel"]
        assert err.value.reason == (
            "Received an error response for request from inference entity id [claude]. Error message: [Overloaded]"
        )


TOOL_STREAM = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_2",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-3-5-haiku-20241022",
            "usage": {"input_tokens": 12, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"city": "Par'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": 'is"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {"type": "ping"},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 20},
    },
    {"type": "message_stop"},
]


async def test_chat_completion_translates_messages_and_tool_use_stream(remote: InferenceService) -> None:
    from sidecar.api.results import chat_completion_body

    with fake_provider(lambda rec: (200, EventStream(TOOL_STREAM, done=False), {})) as server:
        remote.registry.create(
            "claude-chat",
            "chat_completion",
            {
                "service": "anthropic",
                "service_settings": {
                    "api_key": "sk-ant",
                    "model_id": "claude-3-5-haiku-latest",
                    "url": server.url,
                },
                "task_settings": {"max_tokens": 256, "top_k": 5},
            },
        )
        ask = {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "toolu_0",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_0", "content": "rain"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Weather",
                        "parameters": {"type": "object"},
                    },
                }
            ],
            "tool_choice": "required",
            "temperature": 0.1,
        }
        chunks = [c async for c in remote.stream_chat("claude-chat", ask)]
        sent = server.requests[0]
        assert sent.headers["x-api-key"] == "sk-ant" and sent.headers["anthropic-version"] == "2023-06-01"
        assert sent.body == {
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 256,
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "toolu_0",
                            "name": "get_weather",
                            "input": {"city": "Oslo"},
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "rain"}],
                },
            ],
            "stream": True,
            "system": "Be brief.",
            "temperature": 0.1,
            "top_k": 5,
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}, "description": "Weather"}],
            "tool_choice": {"type": "any"},
        }
    assert {c["id"] for c in chunks} == {"msg_2"} and {c["model"] for c in chunks} == {
        "claude-3-5-haiku-20241022"
    }
    answer = chat_completion_body(chunks)
    assert answer["choices"] == [
        {
            "finish_reason": "tool_calls",
            "index": 0,
            "message": {
                "content": "Checking.",
                "role": "assistant",
                "tool_calls": [
                    {
                        "function": {"arguments": '{"city": "Paris"}', "name": "get_weather"},
                        "id": "toolu_1",
                        "type": "function",
                    }
                ],
            },
        }
    ]
    assert answer["usage"] == {"completion_tokens": 20, "prompt_tokens": 12, "total_tokens": 32}


async def test_chat_completion_error_event_fails_the_stream(remote: InferenceService) -> None:
    with fake_provider(lambda rec: (200, stream_events("Hel", error="Overloaded"), {})) as server:
        remote.registry.create(
            "claude-chat-err",
            "chat_completion",
            {
                "service": "anthropic",
                "service_settings": {"api_key": "sk-ant", "model_id": "m", "url": server.url},
                "task_settings": {"max_tokens": 16},
            },
        )
        seen: list[Any] = []
        with pytest.raises(RemoteServiceError, match=r"Error message: \[Overloaded\]"):
            async for chunk in remote.stream_chat(
                "claude-chat-err", {"messages": [{"role": "user", "content": "hi"}]}
            ):
                seen.append(chunk)
        assert [c["choices"][0]["delta"].get("content") for c in seen] == [None, "Hel"]
