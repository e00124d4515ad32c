"""Google Vertex AI (service-account tokens) and Google AI Studio against a local server that plays
Google's OAuth token endpoint (checking the signed JWT assertion) and the documented APIs."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sidecar.errors import RemoteServiceError, SettingsValidationError, StatusError
from sidecar.inference.service import InferenceService
from sidecar.inference.services.google import GoogleAIStudioRuntime, GoogleVertexAIRuntime
from sidecar.inference.types import InputType

from .remote_fakes import EventStream, FakeProvider, Recorded, fake_provider

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
EMAIL = "sidecar@my-project.iam.gserviceaccount.com"
TOKEN = "ya29.test-token"
UNAUTHENTICATED = {
    "error": {
        "code": 401,
        "message": "Request had invalid authentication credentials.",
        "status": "UNAUTHENTICATED",
    }
}
EXHAUSTED = {
    "error": {
        "code": 429,
        "message": "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model",
        "status": "RESOURCE_EXHAUSTED",
    }
}


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jwt_claims(assertion: str) -> dict[str, Any] | None:
    """The claims of an RS256 JWT signed by KEY, or None when the signature does not verify."""
    header, claims, signature = assertion.split(".")
    try:
        KEY.public_key().verify(
            _b64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except Exception:
        return None
    return dict(json.loads(_b64(claims)))


def google(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    if rec.path == "/token":
        claims = jwt_claims(rec.body.get("assertion", ""))
        ok = (
            rec.body.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer"
            and claims is not None
            and claims["iss"] == EMAIL
            and claims["aud"] == "https://oauth2.googleapis.com/token"  # Google's documented audience
            and claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
        )
        if not ok:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, {}
        return 200, {"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}, {}
    if (
        rec.headers.get("authorization") != f"Bearer {TOKEN}"
        and rec.headers.get("x-goog-api-key") != "ai-key"
    ):
        return 401, UNAUTHENTICATED, {}
    if rec.path.endswith(":predict"):
        predictions = [
            {"embeddings": {"values": [float(len(i["content"])), 0.5], "statistics": {"token_count": 1}}}
            for i in rec.body["instances"]
        ]
        return 200, {"predictions": predictions}, {}
    if rec.path.endswith(":batchEmbedContents"):
        return (
            200,
            {
                "embeddings": [
                    {"values": [float(len(r["content"]["parts"][0]["text"]))]} for r in rec.body["requests"]
                ]
            },
            {},
        )
    if rec.path.startswith("/garden/"):
        return garden(rec)
    if rec.path.endswith(":streamGenerateContent?alt=sse"):
        return 200, EventStream(gemini_stream(rec.body), done=False), {}
    if rec.path.endswith(":generateContent"):
        text = " / ".join(c["parts"][0]["text"] for c in rec.body["contents"])
        candidate = {
            "content": {"role": "model", "parts": [{"text": "Gemini: "}, {"text": text}]},
            "finishReason": "STOP",
        }
        return 200, {"candidates": [candidate], "usageMetadata": {"totalTokenCount": 5}}, {}
    if rec.path.endswith(":rank"):
        records = [{"id": r["id"], "score": 1.0 / (1 + len(r["content"]))} for r in rec.body["records"]]
        return 200, {"records": sorted(records, key=lambda r: -float(r["score"]))[: rec.body.get("topN")]}, {}
    return 404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}, {}


def garden(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    """Model Garden publishers on Vertex AI: Claude through (stream)rawPredict in Anthropic's format,
    the others through an OpenAI-compatible chat completions URL."""
    if rec.path.endswith(":rawPredict"):
        said = " / ".join(m["content"] for m in rec.body["messages"])
        return (
            200,
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": f"claude: {said}"}],
            },
            {},
        )
    if rec.path.endswith(":streamRawPredict"):
        events = [
            {
                "type": "message_start",
                "message": {"id": "msg_v", "model": "claude-on-vertex", "usage": {"input_tokens": 3}},
            },
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "from "}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "vertex"}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
            {"type": "message_stop"},
        ]
        return 200, EventStream(events, done=False), {}
    said = " / ".join(str(m["content"]) for m in rec.body["messages"])
    if rec.body.get("stream"):
        chunks = [
            {"id": "c", "model": rec.body.get("model"), "choices": [{"index": 0, "delta": {"content": said}}]}
        ]
        return 200, EventStream(chunks), {}
    message = {"role": "assistant", "content": f"{rec.body.get('model')}: {said}"}
    return (
        200,
        {"object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]},
        {},
    )


def gemini_stream(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Gemini's streamed answer: text in pieces (or a function call when tools are offered and no
    function has answered yet), the last response with the finish reason and usage; no [DONE]."""

    def response(parts: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        event: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.0-flash-001"}
        event["responseId"] = "resp-1"
        if finish:
            candidate["finishReason"] = finish
            event["usageMetadata"] = {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}
        return event

    parts = [p for c in body["contents"] for p in c["parts"]]
    if body.get("tools") and not any("functionResponse" in p for p in parts):
        return [response([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}], "STOP")]
    said = " / ".join(str(p.get("text") or p.get("functionResponse", {}).get("response")) for p in parts)
    return [response([{"text": "Gemini: "}]), response([{"text": said}]), response([{"text": ""}], "STOP")]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    with fake_provider(google) as fake:
        monkeypatch.setattr(GoogleVertexAIRuntime, "vertex_host", fake.url)
        monkeypatch.setattr(GoogleVertexAIRuntime, "ranking_host", fake.url)
        monkeypatch.setattr(GoogleAIStudioRuntime, "host", fake.url)
        yield fake


def account(token_uri: str) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "my-project",
            "private_key_id": "k1",
            "private_key": PEM,
            "client_email": EMAIL,
            "client_id": "1",
            "token_uri": token_uri,
        }
    )


def vertex(server: FakeProvider, **settings: Any) -> dict[str, Any]:
    return {
        "service": "googlevertexai",
        "service_settings": {
            "service_account_json": account(f"{server.url}/token"),
            "project_id": "my-project",
            **settings,
        },
    }


async def test_vertex_embeddings_with_one_token_for_many_calls_and_quota_retry(
    remote: InferenceService, server: FakeProvider
) -> None:
    body = vertex(server, location="us-central1", model_id="text-embedding-005")
    body["task_settings"] = {"auto_truncate": True}
    remote.registry.create("vx", "text_embedding", body)
    out = await remote.infer("vx", ["ab", "c"], input_type=InputType.INGEST)
    assert [r.embedding for r in out.results] == [[2.0, 0.5], [1.0, 0.5]]
    server.script.append((429, EXHAUSTED, {}))
    await remote.infer("vx", ["x"])
    paths = [r.path for r in server.requests]
    predict = (
        "/v1/projects/my-project/locations/us-central1/publishers/google/models/text-embedding-005:predict"
    )
    assert paths == ["/token", predict, predict, predict]  # one token; the 429 retried
    assert server.requests[1].body == {
        "instances": [
            {"content": "ab", "task_type": "RETRIEVAL_DOCUMENT"},
            {"content": "c", "task_type": "RETRIEVAL_DOCUMENT"},
        ],
        "parameters": {"autoTruncate": True},
    }


async def test_vertex_completion_and_rerank(remote: InferenceService, server: FakeProvider) -> None:
    remote.registry.create(
        "vx-c", "completion", vertex(server, location="europe-west4", model_id="gemini-2.0-flash")
    )
    out = await remote.infer("vx-c", ["hi"])
    assert [r.result for r in out.results] == ["Gemini: hi"]
    assert server.requests[-1].body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert server.requests[-1].path.endswith(
        "/locations/europe-west4/publishers/google/models/gemini-2.0-flash:generateContent"
    )

    remote.registry.create("vx-r", "rerank", vertex(server, model_id="semantic-ranker-512@latest"))
    docs = ["a long document", "short", "mid doc"]
    ranked = await remote.infer("vx-r", docs, query="q", top_n=2, return_documents=True)
    assert [(r.index, r.text) for r in ranked.results] == [(1, "short"), (2, "mid doc")]
    sent = server.requests[-1]
    assert sent.path == "/v1/projects/my-project/locations/global/rankingConfigs/default_ranking_config:rank"
    assert sent.body == {
        "model": "semantic-ranker-512@latest",
        "query": "q",
        "records": [
            {"id": "0", "content": docs[0]},
            {"id": "1", "content": docs[1]},
            {"id": "2", "content": docs[2]},
        ],
        "topN": 2,
        "ignoreRecordDetailsInResponse": False,
    }


async def test_a_key_the_token_endpoint_refuses_is_a_clear_error(
    remote: InferenceService, server: FakeProvider
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = json.loads(account(f"{server.url}/token"))
    info["private_key"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    remote.registry.create(
        "vx",
        "completion",
        {
            "service": "googlevertexai",
            "service_settings": {
                "service_account_json": json.dumps(info),
                "project_id": "p",
                "location": "l",
                "model_id": "m",
            },
        },
    )
    with pytest.raises(RemoteServiceError) as err:
        await remote.infer("vx", ["x"])
    assert err.value.status == 401
    assert (
        "Failed to get an access token for the [googlevertexai] service for inference entity id [vx]"
        in err.value.reason
    )
    assert "invalid_grant" in err.value.reason


def test_vertex_settings_are_checked(remote: InferenceService, server: FakeProvider) -> None:
    with pytest.raises(SettingsValidationError) as err:
        remote.registry.create("x", "text_embedding", vertex(server, model_id="m"))
    assert (
        err.value.reason
        == "Validation Failed: 1: [service_settings] does not contain the required setting [location];"
    )
    with pytest.raises(SettingsValidationError) as err:
        remote.registry.create(
            "x",
            "rerank",
            {
                "service": "googlevertexai",
                "service_settings": {"service_account_json": "{", "project_id": "p"},
            },
        )
    assert err.value.reason.startswith(
        "Validation Failed: 1: [secret_settings] [service_account_json] is not valid JSON"
    )
    endpoint = remote.registry.create("ok", "rerank", vertex(server))
    assert "service_account_json" not in endpoint.public_dict()["service_settings"]


async def test_ai_studio_embeddings_and_completion_with_api_key(
    remote: InferenceService, server: FakeProvider
) -> None:
    remote.registry.create(
        "gs",
        "text_embedding",
        {
            "service": "googleaistudio",
            "service_settings": {"api_key": "ai-key", "model_id": "text-embedding-004"},
        },
    )
    out = await remote.infer("gs", ["abc", "d"], input_type=InputType.SEARCH)
    assert [r.embedding for r in out.results] == [[3.0], [1.0]]
    sent = server.requests[-1]
    assert sent.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == "ai-key"
    assert sent.body["requests"][0] == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "abc"}]},
        "taskType": "RETRIEVAL_QUERY",
    }
    remote.registry.create(
        "gs-c",
        "completion",
        {
            "service": "googleaistudio",
            "service_settings": {"api_key": "wrong", "model_id": "gemini-2.0-flash"},
        },
    )
    with pytest.raises(RemoteServiceError) as err:
        await remote.infer("gs-c", ["x"])
    assert err.value.reason.endswith("Error message: [Request had invalid authentication credentials.]")


async def test_vertex_default_rate_limits_are_elasticsearchs_per_task(
    remote: InferenceService, server: FakeProvider
) -> None:
    """30000 requests a minute for embeddings, 300 for the ranking API, 1000 for Gemini."""
    for task, per_minute in (("text_embedding", 30000), ("rerank", 300), ("completion", 1000)):
        endpoint = remote.registry.create(f"vx-{task}", task, vertex(server, location="l", model_id="m"))
        runtime = remote._build_runtime(endpoint)
        assert runtime.caller.limiter.interval == pytest.approx(60 / per_minute)  # type: ignore[attr-defined]
        await runtime.aclose()


async def test_gemini_completions_stream_until_the_finish_reason(
    remote: InferenceService, server: FakeProvider
) -> None:
    # Gemini's streams end without [DONE]: the response carrying finishReason is the last one.
    remote.registry.create(
        "vx-s", "completion", vertex(server, location="us-central1", model_id="gemini-2.0-flash")
    )
    remote.registry.create(
        "ai-s",
        "completion",
        {
            "service": "googleaistudio",
            "service_settings": {"api_key": "ai-key", "model_id": "gemini-2.0-flash"},
        },
    )
    for inference_id in ("vx-s", "ai-s"):
        deltas = [d async for d in remote.stream_completion(inference_id, ["hi"])]
        assert deltas == ["Gemini: ", "hi"]
        sent = server.requests[-1]
        assert sent.path.endswith("/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
        assert sent.body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert server.requests[-1].headers["x-goog-api-key"] == "ai-key"


async def test_vertex_chat_completion_in_unified_chunks_with_tools(
    remote: InferenceService, server: FakeProvider
) -> None:
    remote.registry.create(
        "vx-chat", "chat_completion", vertex(server, location="us-central1", model_id="gemini-2.0-flash")
    )
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    ask: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        ],
        "tools": tools,
        "tool_choice": "auto",
        "max_completion_tokens": 64,
        "temperature": 0.2,
    }
    chunks = [c async for c in remote.stream_chat("vx-chat", ask)]
    assert server.requests[-1].path.endswith("/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
    assert server.requests[-1].body == {
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [{"functionDeclarations": [tools[0]["function"]]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.2},
    }
    assert chunks == [
        {
            "choices": [
                {
                    "delta": {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "get_weather",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                            }
                        ],
                    },
                    "index": 0,
                    "finish_reason": "tool_calls",
                }
            ],
            "object": "chat.completion.chunk",
            "id": "resp-1",
            "model": "gemini-2.0-flash-001",
            "usage": {"completion_tokens": 2, "prompt_tokens": 4, "total_tokens": 6},
        }
    ]

    # The caller answers the call: the tool message goes back as a functionResponse named after it.
    ask["messages"] += [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call-1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call-1", "content": "sunny"},
    ]
    chunks = [c async for c in remote.stream_chat("vx-chat", ask)]
    assert server.requests[-1].body["contents"][1:] == [
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}}],
        },
    ]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.startswith("Gemini: ") and "sunny" in text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "usage" in chunks[-1] and "usage" not in chunks[0]


async def test_gemini_stream_cut_before_the_finish_reason_is_an_error(
    remote: InferenceService, server: FakeProvider
) -> None:
    remote.registry.create(
        "vx-cut", "completion", vertex(server, location="us-central1", model_id="gemini-2.0-flash")
    )
    await remote.infer("vx-cut", ["x"])  # the token first: the scripted answer is for the stream
    part = {"candidates": [{"content": {"role": "model", "parts": [{"text": "half"}]}, "index": 0}]}
    server.script.append((200, EventStream([part], done=False), {}))
    with pytest.raises(RemoteServiceError):
        _ = [d async for d in remote.stream_completion("vx-cut", ["hi"])]


async def test_vertex_chat_applies_stored_task_settings(
    remote: InferenceService, server: FakeProvider
) -> None:
    body = vertex(server, location="us-central1", model_id="gemini-2.5-flash")
    body["task_settings"] = {"max_tokens": 32, "thinking_config": {"thinking_budget": 0}}
    remote.registry.create("vx-chat-ts", "chat_completion", body)
    _ = [c async for c in remote.stream_chat("vx-chat-ts", {"messages": [{"role": "user", "content": "hi"}]})]
    assert server.requests[-1].body["generationConfig"] == {
        "maxOutputTokens": 32,
        "thinkingConfig": {"thinkingBudget": 0},
    }
    ask = {"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 8}
    _ = [c async for c in remote.stream_chat("vx-chat-ts", ask)]
    assert server.requests[-1].body["generationConfig"]["maxOutputTokens"] == 8


async def test_model_garden_publishers_at_their_urls(remote: InferenceService, server: FakeProvider) -> None:
    # The specification's Model Garden examples: Claude at rawPredict / streamRawPredict (Anthropic's
    # format, no model, Vertex's anthropic_version), Llama at an OpenAI-compatible URL; the service
    # account's token on each request.
    claude = vertex(
        server,
        provider="anthropic",
        url=f"{server.url}/garden/claude:rawPredict",
        streaming_url=f"{server.url}/garden/claude:streamRawPredict",
    )
    del claude["service_settings"]["project_id"]
    claude["task_settings"] = {"max_tokens": 128}
    remote.registry.create("mg-claude", "completion", claude)
    out = await remote.infer("mg-claude", ["hi"])
    assert [r.result for r in out.results] == ["claude: hi"]
    sent = server.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.body == {
        "anthropic_version": "vertex-2023-10-16",
        "max_tokens": 128,
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert [d async for d in remote.stream_completion("mg-claude", ["hi"])] == ["from ", "vertex"]
    assert server.requests[-1].path == "/garden/claude:streamRawPredict"

    chat = {**claude, "service_settings": {k: v for k, v in claude["service_settings"].items() if k != "url"}}
    remote.registry.create("mg-claude-chat", "chat_completion", chat)
    chunks = [
        c
        async for c in remote.stream_chat("mg-claude-chat", {"messages": [{"role": "user", "content": "yo"}]})
    ]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "from vertex"
    assert (
        "model" not in server.requests[-1].body
        and server.requests[-1].body["anthropic_version"] == "vertex-2023-10-16"
    )

    llama = vertex(
        server,
        provider="meta",
        model_id="meta/llama-3.3-70b-instruct-maas",
        url=f"{server.url}/garden/openapi/chat/completions",
    )
    del llama["service_settings"]["project_id"]
    remote.registry.create("mg-llama", "completion", llama)
    out = await remote.infer("mg-llama", ["hello"])
    assert [r.result for r in out.results] == ["meta/llama-3.3-70b-instruct-maas: hello"]
    assert server.requests[-1].body == {
        "messages": [{"role": "user", "content": "hello"}],
        "n": 1,
        "model": "meta/llama-3.3-70b-instruct-maas",
    }
    assert server.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"


def test_model_garden_settings_are_checked(remote: InferenceService, server: FakeProvider) -> None:
    body = vertex(server, provider="anthropic", url="https://x.example/m:rawPredict")
    with pytest.raises(SettingsValidationError) as err:
        remote.registry.create("mg-1", "chat_completion", body)
    assert err.value.reason == (
        "Validation Failed: 1: [service_settings] does not contain the required setting [streaming_url];"
    )
    with pytest.raises(StatusError, match=r"only for task types \[completion, chat_completion\]"):
        remote.registry.create("mg-2", "text_embedding", body)
    with pytest.raises(SettingsValidationError, match=r"\[provider\] must be one of"):
        remote.registry.create(
            "mg-3", "completion", vertex(server, provider="openai", url="https://x.example/c")
        )
    with pytest.raises(SettingsValidationError, match=r"need \[provider\]"):
        remote.registry.create(
            "mg-4", "completion", vertex(server, location="l", model_id="m", url="https://x.example/c")
        )
