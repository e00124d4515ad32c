"""Amazon Bedrock against a local server that checks AWS Signature V4 and answers as the Bedrock
runtime API does (InvokeModel for Titan / Cohere embeddings, Converse for completions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sidecar.errors import RemoteServiceError, StatusError
from sidecar.inference.service import InferenceService
from sidecar.inference.services.aws_sigv4 import SigV4
from sidecar.inference.types import InputType

from .remote_fakes import Recorded, fake_provider, sigv4_valid

ACCESS, SECRET, REGION = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1"
THROTTLED = {"message": "Too many requests, please wait before trying again."}


def bedrock(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    if not sigv4_valid(rec, SECRET, REGION, "bedrock"):
        return (
            403,
            {"message": "The request signature we calculated does not match the signature you provided."},
            {
                "x-amzn-ErrorType": "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/"
            },
        )
    if rec.path.endswith("/converse"):
        blocks = [block for message in rec.body["messages"] for block in message["content"]]
        if rec.body.get("toolConfig") and not any("toolResult" in b for b in blocks):
            use = {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}
            message = {"role": "assistant", "content": [{"toolUse": use}]}
            usage = {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13}
            return 200, {"output": {"message": message}, "stopReason": "tool_use", "usage": usage}, {}
        texts = [
            b["text"] if "text" in b else b["toolResult"]["content"][0]["text"]
            for b in blocks
            if "toolUse" not in b
        ]
        message = {"role": "assistant", "content": [{"text": "Bedrock says: "}, {"text": " / ".join(texts)}]}
        return (
            200,
            {"output": {"message": message}, "stopReason": "end_turn", "usage": {"inputTokens": 3}},
            {},
        )
    if "texts" in rec.body:  # Cohere on Bedrock
        return (
            200,
            {
                "id": "e",
                "embeddings": [[float(len(t)), -1.0] for t in rec.body["texts"]],
                "texts": rec.body["texts"],
            },
            {},
        )
    return 200, {"embedding": [float(len(rec.body["inputText"])), 0.5], "inputTextTokenCount": 2}, {}


def create(
    remote: InferenceService, inference_id: str, task: str, url: str, model: str, **extra: Any
) -> None:
    settings = {"access_key": ACCESS, "secret_key": SECRET, "region": REGION, "model": model, "url": url}
    task_settings = extra.pop("task_settings", {})
    remote.registry.create(
        inference_id,
        task,
        {
            "service": "amazonbedrock",
            "service_settings": {**settings, **extra},
            "task_settings": task_settings,
        },
    )


async def test_titan_embeddings_one_signed_request_per_text_with_throttling_retried(
    remote: InferenceService,
) -> None:
    with fake_provider(bedrock) as server:
        server.script.append((429, THROTTLED, {"x-amzn-ErrorType": "ThrottlingException"}))
        create(
            remote,
            "titan",
            "text_embedding",
            server.url,
            "amazon.titan-embed-text-v2:0",
            provider="amazontitan",
        )
        out = await remote.infer("titan", ["ab", "abcd"])
        assert [r.embedding for r in out.results] == [[2.0, 0.5], [4.0, 0.5]]
        assert [r.body for r in server.requests[1:]] == [{"inputText": "ab"}, {"inputText": "abcd"}]
        assert server.requests[1].path == "/model/amazon.titan-embed-text-v2%3A0/invoke"
        assert all(sigv4_valid(r, SECRET, REGION, "bedrock") for r in server.requests)


async def test_cohere_embeddings_with_input_type_and_provider_from_the_model_id(
    remote: InferenceService,
) -> None:
    with fake_provider(bedrock) as server:
        create(
            remote,
            "co",
            "text_embedding",
            server.url,
            "cohere.embed-english-v3",
            task_settings={"truncate": "end"},
        )
        out = await remote.infer("co", ["a", "bbb"], input_type=InputType.SEARCH)
        assert [r.embedding for r in out.results] == [[1.0, -1.0], [3.0, -1.0]]
        assert server.requests[0].body == {
            "texts": ["a", "bbb"],
            "input_type": "search_query",
            "truncate": "END",
        }


async def test_completion_through_converse(remote: InferenceService) -> None:
    with fake_provider(bedrock) as server:
        create(
            remote,
            "claude",
            "completion",
            server.url,
            "anthropic.claude-3-haiku-20240307-v1:0",
            provider="anthropic",
            task_settings={"temperature": 0.2, "max_new_tokens": 64, "top_k": 5},
        )
        out = await remote.infer("claude", ["hello"])
        assert [r.result for r in out.results] == ["Bedrock says: hello"]
        assert server.requests[0].path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        assert server.requests[0].body == {
            "messages": [{"role": "user", "content": [{"text": "hello"}]}],
            "inferenceConfig": {"temperature": 0.2, "maxTokens": 64},
            "additionalModelRequestFields": {"top_k": 5},
        }


async def test_a_wrong_secret_is_refused_by_the_signature_check(remote: InferenceService) -> None:
    with fake_provider(bedrock) as server:
        remote.registry.create(
            "bad",
            "completion",
            {
                "service": "amazonbedrock",
                "service_settings": {
                    "access_key": ACCESS,
                    "secret_key": "not-the-secret",
                    "region": REGION,
                    "model": "meta.llama3-8b-instruct-v1:0",
                    "url": server.url,
                },
            },
        )
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("bad", ["x"])
        assert err.value.status == 403
        assert err.value.reason.endswith(
            "Error message: [The request signature we calculated does not match the signature you provided.]"
        )


def test_provider_and_task_type_checks(remote: InferenceService) -> None:
    with pytest.raises(StatusError) as err:
        create(remote, "x", "text_embedding", "http://x", "anthropic.claude-v2", provider="anthropic")
    assert err.value.reason == "The [text_embedding] task type for provider [anthropic] is not available"
    with pytest.raises(StatusError) as err:
        create(remote, "x", "completion", "http://x", "m", provider="openai")
    assert err.value.reason.startswith(
        "[service_settings] Invalid value [openai] received. [provider] must be one of"
    )
    endpoint = remote.registry.create(
        "ok",
        "text_embedding",
        {
            "service": "amazonbedrock",
            "service_settings": {
                "access_key": "a",
                "secret_key": "s",
                "region": "us-east-1",
                "model": "amazon.titan-embed-text-v2:0",
            },
        },
    )
    assert endpoint.secrets == {"access_key": "a", "secret_key": "s"}
    assert set(endpoint.public_dict()["service_settings"]) == {"region", "model"}


def test_signer_reproduces_awss_published_example() -> None:
    """AWS's documentation signs IAM `ListUsers` on 2015-08-30T12:36:00Z with these example keys."""
    request = httpx.Request(
        "GET",
        "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    clock = lambda: datetime(2015, 8, 30, 12, 36, tzinfo=UTC)  # noqa: E731
    SigV4("AKIDEXAMPLE", SECRET, "us-east-1", "iam", clock=clock).sign(request)
    assert request.headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )


async def test_chat_completion_through_one_converse_call(remote: InferenceService) -> None:
    from sidecar.api.results import chat_completion_body

    with fake_provider(bedrock) as server:
        create(
            remote,
            "claude-chat",
            "chat_completion",
            server.url,
            "anthropic.claude-3-haiku-20240307-v1:0",
            task_settings={"max_new_tokens": 100},
        )
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
        ask: dict[str, Any] = {
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}],
            "tools": tools,
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        }
        chunks = [c async for c in remote.stream_chat("claude-chat", ask)]
        assert server.requests[-1].path.endswith("/converse")
        assert sigv4_valid(server.requests[-1], SECRET, REGION, "bedrock")
        assert server.requests[-1].body == {
            "messages": [{"role": "user", "content": [{"text": "Weather?"}]}],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 100},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}],
                "toolChoice": {"tool": {"name": "get_weather"}},
            },
        }
        answer = chat_completion_body(chunks)
        assert answer["choices"][0]["finish_reason"] == "tool_calls"
        assert answer["choices"][0]["message"]["tool_calls"] == [
            {
                "function": {"arguments": '{"city": "Paris"}', "name": "get_weather"},
                "id": "tooluse_1",
                "type": "function",
            }
        ]
        assert answer["usage"] == {"completion_tokens": 4, "prompt_tokens": 9, "total_tokens": 13}

        ask["messages"] += [
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "tooluse_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "sunny"},
        ]
        chunks = [c async for c in remote.stream_chat("claude-chat", ask)]
        assert server.requests[-1].body["messages"][1:] == [
            {
                "role": "assistant",
                "content": [
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}
                ],
            },
            {
                "role": "user",
                "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "sunny"}]}}],
            },
        ]
        assert chunks[0]["choices"][0]["delta"]["content"] == "Bedrock says: Weather? / sunny"
        assert chunks[0]["choices"][0]["finish_reason"] == "stop"


async def test_streamed_completion_is_one_delta(remote: InferenceService) -> None:
    with fake_provider(bedrock) as server:
        create(remote, "claude-s", "completion", server.url, "anthropic.claude-3-haiku-20240307-v1:0")
        assert [d async for d in remote.stream_completion("claude-s", ["hi"])] == ["Bedrock says: hi"]
