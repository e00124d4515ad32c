"""OpenAI chat completions behind the `completion` and `chat_completion` tasks, against a local
server speaking OpenAI's documented formats (JSON answers, `text/event-stream` chunks, errors)."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sidecar.errors import RemoteServiceError, StatusError
from sidecar.inference.service import InferenceService
from sidecar.inference.types import CompletionResult, TaskType

from .remote_fakes import EventStream, FakeProvider, Recorded, fake_provider

OPENAI_429 = {
    "error": {
        "message": "Rate limit reached",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


def chat_answer(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    """`chat.completion`: echoes the user messages, so the test sees what was sent."""
    said = " | ".join(m["content"] for m in rec.body["messages"])
    return (
        200,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": rec.body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"echo: {said}", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        },
        {},
    )


def chunk(content: str | None, *, role: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {} if content is None else {"content": content}
    if role:
        delta["role"] = role
    return {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "created": 1700000001,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


USAGE_CHUNK = {
    "id": "chatcmpl-2",
    "object": "chat.completion.chunk",
    "created": 1700000001,
    "model": "gpt-4o-mini",
    "choices": [],
    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
}
STREAM = [chunk("", role="assistant"), chunk("Hel"), chunk("lo"), chunk(None, finish="stop"), USAGE_CHUNK]


def create(svc: InferenceService, server: FakeProvider, task: str, inference_id: str = "gpt") -> None:
    svc.registry.create(
        inference_id,
        task,
        {
            "service": "openai",
            "service_settings": {
                "api_key": "sk-test",
                "model_id": "gpt-4o-mini",
                "url": f"{server.url}/v1/chat/completions",
            },
        },
    )


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


async def test_completion_sends_inputs_as_user_messages_and_retries_429(remote: InferenceService) -> None:
    with fake_provider(chat_answer) as server:
        server.script.append((429, OPENAI_429, {"retry-after": "0"}))
        create(remote, server, "completion")
        out = await remote.infer("gpt", ["What is SPLADE?", "Be brief."], task_settings={"user": "u7"})
        assert out.task_type == TaskType.COMPLETION
        assert out.results == [CompletionResult("echo: What is SPLADE? | Be brief.")]
        assert len(server.requests) == 2
        sent = server.requests[-1]
        assert sent.path == "/v1/chat/completions"
        assert sent.headers["authorization"] == "Bearer sk-test"
        assert sent.body == {
            "messages": [
                {"role": "user", "content": "What is SPLADE?"},
                {"role": "user", "content": "Be brief."},
            ],
            "model": "gpt-4o-mini",
            "n": 1,
            "user": "u7",
        }


async def test_completion_error_body_is_the_reason(remote: InferenceService) -> None:
    error = {
        "error": {
            "message": "The model `gpt-9` does not exist",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
    with fake_provider(lambda rec: (404, error, {})) as server:
        create(remote, server, "completion")
        with pytest.raises(
            RemoteServiceError, match=r"status \[404\]. Error message: \[The model `gpt-9` does not exist\]"
        ):
            await remote.infer("gpt", ["hi"])
        assert len(server.requests) == 1


async def test_streamed_completion_yields_deltas_in_order(remote: InferenceService) -> None:
    with fake_provider() as server:
        server.script.append((200, EventStream(STREAM), {}))
        create(remote, server, "completion")
        deltas = await collect(remote.stream_completion("gpt", ["Say hello"]))
        assert deltas == ["Hel", "lo"]
        assert server.requests[0].body["stream"] is True
        assert server.requests[0].body["messages"] == [{"role": "user", "content": "Say hello"}]


async def test_stream_retries_before_the_first_byte_and_fails_typed_when_cut(
    remote: InferenceService,
) -> None:
    with fake_provider() as server:
        server.script.append((503, {"error": {"message": "overloaded", "type": "server_error"}}, {}))
        server.script.append((200, EventStream(STREAM, break_after=2), {}))
        create(remote, server, "completion")
        got: list[str] = []
        with pytest.raises(RemoteServiceError) as err:
            async for delta in remote.stream_completion("gpt", ["Say hello"]):
                got.append(delta)
        assert got == ["Hel"]  # what arrived before the cut was delivered
        assert err.value.retriable and "[gpt]" in err.value.reason
        assert len(server.requests) == 2


async def test_chat_completion_streams_unified_chunks(remote: InferenceService) -> None:
    with fake_provider() as server:
        server.script.append((200, EventStream(STREAM), {}))
        create(remote, server, "chat_completion", "chat")
        request = {
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Say hello"},
            ],
            "temperature": 0.2,
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
            "tool_choice": "auto",
        }
        chunks = await collect(remote.stream_chat("chat", request))
        sent = server.requests[0].body
        assert sent == {
            "messages": request["messages"],
            "model": "gpt-4o-mini",
            "n": 1,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.2,
            "tools": request["tools"],
            "tool_choice": "auto",
        }
        assert chunks[0] == {
            "id": "chatcmpl-2",
            "model": "gpt-4o-mini",
            "object": "chat.completion.chunk",
            "choices": [{"delta": {"content": "", "role": "assistant"}, "index": 0}],
        }
        assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["Hel", "lo"]
        assert chunks[3]["choices"] == [{"delta": {}, "index": 0, "finish_reason": "stop"}]
        assert chunks[4]["choices"] == [] and chunks[4]["usage"]["total_tokens"] == 9


async def test_task_types_are_kept_apart(remote: InferenceService) -> None:
    with fake_provider(chat_answer) as server:
        create(remote, server, "chat_completion", "chat")
        create(remote, server, "completion", "plain")
        with pytest.raises(StatusError, match=r"takes a \[messages\] request"):
            await remote.infer("chat", ["hi"])
        with pytest.raises(StatusError, match=r"needs a \[chat_completion\] endpoint"):
            await collect(remote.stream_chat("plain", {"messages": [{"role": "user", "content": "x"}]}))
        with pytest.raises(StatusError, match=r"needs a \[completion\] endpoint"):
            await collect(remote.stream_completion("chat", ["hi"]))
        assert server.requests == []
    with pytest.raises(StatusError, match=r"does not support task type \[completion\]"):
        remote.registry.create(
            "voyage-c",
            "completion",
            {"service": "voyageai", "service_settings": {"api_key": "k", "model_id": "m"}},
        )


async def test_task_settings_headers_are_sent_and_default_rate_limits_are_elasticsearchs(
    remote: InferenceService,
) -> None:
    # Elasticsearch's openai task settings take extra `headers` (stored, or per request replacing
    # the stored map); its default rate limits are 500 a minute for completions, 3000 for embeddings.
    with fake_provider(chat_answer) as server:
        remote.registry.create(
            "gpt-h",
            "completion",
            {
                "service": "openai",
                "service_settings": {"api_key": "sk-test", "model_id": "m", "url": f"{server.url}/v1/c"},
                "task_settings": {"headers": {"X-Team": "search"}},
            },
        )
        await remote.infer("gpt-h", ["hi"])
        assert server.requests[-1].headers["x-team"] == "search"
        await remote.infer("gpt-h", ["hi"], task_settings={"headers": {"X-Other": "1"}})
        assert server.requests[-1].headers["x-other"] == "1" and "x-team" not in server.requests[-1].headers
        assert server.requests[-1].headers["authorization"] == "Bearer sk-test"

        completion = remote._build_runtime(remote.registry.get("gpt-h"))
        assert completion.caller.limiter.interval == pytest.approx(60 / 500)  # type: ignore[attr-defined]
        await completion.aclose()
        embeddings = remote.registry.create(
            "gpt-e",
            "text_embedding",
            {"service": "openai", "service_settings": {"api_key": "k", "model_id": "m", "url": server.url}},
        )
        runtime = remote._build_runtime(embeddings)
        assert runtime.caller.limiter.interval == pytest.approx(60 / 3000)  # type: ignore[attr-defined]
        await runtime.aclose()


def oauth_openai(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    """An OAuth 2.0 token endpoint (client credentials) in front of an OpenAI-compatible API that
    accepts only the tokens it issued."""
    if rec.path == "/token":
        if rec.body.get("client_secret") != "secret" or rec.body.get("grant_type") != "client_credentials":
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}, {}
        return 200, {"access_token": "oauth-token", "token_type": "Bearer", "expires_in": 3600}, {}
    if rec.headers.get("authorization") != "Bearer oauth-token":
        return 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, {}
    return chat_answer(rec)


async def test_oauth2_client_credentials_instead_of_an_api_key(remote: InferenceService) -> None:
    # The specification's OAuth2 example: client_id, client_secret, scopes and token_url, no api_key.
    with fake_provider(oauth_openai) as server:
        settings = {
            "model_id": "gpt-4o-mini",
            "client_id": "test_client_id",
            "scopes": ["scope1", "scope2"],
            "client_secret": "secret",
            "token_url": f"{server.url}/token",
            "url": f"{server.url}/v1/chat/completions",
        }
        endpoint = remote.registry.create(
            "gpt-oauth", "completion", {"service": "openai", "service_settings": settings}
        )
        assert endpoint.secrets == {"client_secret": "secret"}
        for _ in range(2):
            out = await remote.infer("gpt-oauth", ["hi"])
            assert out.results == [CompletionResult("echo: hi")]
        tokens = [r for r in server.requests if r.path == "/token"]
        assert len(tokens) == 1
        assert tokens[0].body == {
            "grant_type": "client_credentials",
            "client_id": "test_client_id",
            "client_secret": "secret",
            "scope": "scope1 scope2",
        }


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "[service_settings] does not contain the required setting [api_key]"),
        (
            {"client_id": "c", "client_secret": "s"},
            "[service_settings] all OpenAI OAuth2 fields must be provided together; missing: [scopes, token_url]",
        ),
        (
            {
                "api_key": "k",
                "client_id": "c",
                "client_secret": "s",
                "scopes": ["a"],
                "token_url": "http://t",
            },
            "[secret_settings] must have only one of the [api_key] or the OAuth2 settings "
            "([client_id], [client_secret], [scopes], [token_url]) set",
        ),
    ],
)
def test_one_way_to_authenticate(remote: InferenceService, settings: dict[str, Any], message: str) -> None:
    from sidecar.errors import SettingsValidationError

    with pytest.raises(SettingsValidationError) as err:
        remote.registry.create(
            "gpt-x", "completion", {"service": "openai", "service_settings": {"model_id": "m", **settings}}
        )
    assert err.value.reason == f"Validation Failed: 1: {message};"
