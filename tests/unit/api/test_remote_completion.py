"""`completion` and `chat_completion` through the HTTP API with the real service and an OpenAI
endpoint served by a local server that speaks OpenAI's documented formats."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.unit.api.conftest import ClientFactory
from tests.unit.api.test_stream import _events
from tests.unit.inference.remote_fakes import EventStream, FakeProvider, fake_provider
from tests.unit.inference.test_openai_completion import STREAM, chat_answer


async def _put(client: httpx.AsyncClient, server: FakeProvider, task: str, inference_id: str) -> None:
    body = {
        "service": "openai",
        "service_settings": {
            "api_key": "sk-secret",
            "model_id": "gpt-4o-mini",
            "url": f"{server.url}/v1/chat/completions",
        },
    }
    created = await client.put(f"/_inference/{task}/{inference_id}", json=body)
    assert created.status_code == 200, created.text
    assert "api_key" not in created.json()["service_settings"]


async def test_completion_and_its_stream(open_client: ClientFactory) -> None:
    with fake_provider(chat_answer) as server:
        async with open_client() as client:
            await _put(client, server, "completion", "gpt")
            answer = await client.post("/_inference/completion/gpt", json={"input": "What is SPLADE?"})
            assert answer.status_code == 200
            assert answer.json() == {"completion": [{"result": "echo: What is SPLADE?"}]}

            server.script.append((200, EventStream(STREAM), {}))
            streamed = await client.post("/_inference/gpt/_stream", json={"input": "Say hello"})
            assert streamed.status_code == 200
            assert streamed.headers["content-type"].startswith("text/event-stream")
            assert _events(streamed.text) == [
                ("message", json.dumps({"completion": [{"delta": "Hel"}]})),
                ("message", json.dumps({"completion": [{"delta": "lo"}]})),
                ("message", "[DONE]"),
            ]
        assert server.requests[-1].body["stream"] is True


async def test_provider_failures_keep_their_status_or_become_error_events(open_client: ClientFactory) -> None:
    denied = {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    with fake_provider(lambda rec: (401, denied, {})) as server:
        async with open_client() as client:
            await _put(client, server, "completion", "gpt")
            before = await client.post("/_inference/completion/gpt/_stream", json={"input": "x"})
            assert before.status_code == 401
            assert "Incorrect API key provided" in before.json()["error"]["reason"]

            server.script.append((200, EventStream(STREAM, break_after=2), {}))
            cut = await client.post("/_inference/completion/gpt/_stream", json={"input": "x"})
            assert cut.status_code == 200
            events = _events(cut.text)
            assert [name for name, _ in events] == ["message", "error"]
            error = json.loads(events[-1][1])
            assert error["status"] == 502 and "ended before [DONE]" in error["error"]["reason"]


async def test_chat_completion_stream_in_unified_format(open_client: ClientFactory) -> None:
    with fake_provider() as server:
        async with open_client() as client:
            await _put(client, server, "chat_completion", "chat")
            server.script.append((200, EventStream(STREAM), {}))
            request: dict[str, Any] = {
                "messages": [{"role": "user", "content": "Say hello"}],
                "max_completion_tokens": 16,
            }
            streamed = await client.post("/_inference/chat_completion/chat/_stream", json=request)
            assert streamed.status_code == 200
            events = _events(streamed.text)
            assert events[-1] == ("message", "[DONE]")
            chunks = [json.loads(data) for _, data in events[:-1]]
            assert all(c["object"] == "chat.completion.chunk" for c in chunks)
            text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
            assert text == "Hello"
            assert chunks[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
            assert server.requests[0].body["max_completion_tokens"] == 16

            # Elasticsearch's rules: chat_completion takes `messages` (streamed or not), never `input`.
            plain = await client.post("/_inference/chat_completion/chat", json={"input": "hi"})
            assert plain.status_code == 400 and "unknown field [input]" in plain.text
            wrong = await client.post("/_inference/chat/_stream", json={"input": "hi"})
            assert wrong.status_code == 400
            assert wrong.json()["error"]["type"] == "x_content_parse_exception"
            empty = await client.post("/_inference/chat_completion/chat/_stream", json={"messages": []})
            assert empty.status_code == 400
            missing = await client.post("/_inference/chat_completion/nope/_stream", json=request)
            assert missing.status_code == 404
        assert len(server.requests) == 1
