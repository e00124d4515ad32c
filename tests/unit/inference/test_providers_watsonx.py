"""IBM watsonx.ai against a local server playing IBM Cloud IAM and the watsonx.ai text APIs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sidecar.errors import RemoteServiceError
from sidecar.inference.service import InferenceService
from sidecar.inference.services.watsonx import WatsonxRuntime

from .remote_fakes import FakeProvider, Recorded, fake_provider

IAM_TOKEN = "eyJraWQiOiJpYW0tdG9rZW4ifQ.test"


def ibm(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    if rec.path == "/identity/token":
        if rec.body != {"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": "ibm-key"}:
            return (
                400,
                {"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."},
                {},
            )
        return (
            200,
            {"access_token": IAM_TOKEN, "token_type": "Bearer", "expires_in": 3600, "expiration": 1},
            {},
        )
    if rec.headers.get("authorization") != f"Bearer {IAM_TOKEN}":
        return (
            401,
            {"errors": [{"code": "authentication_token_not_valid", "message": "Failed to authenticate"}]},
            {},
        )
    if "/ml/v1/text/embeddings" in rec.path:
        return (
            200,
            {
                "model_id": rec.body["model_id"],
                "results": [{"embedding": [float(len(t)), 0.0]} for t in rec.body["inputs"]],
            },
            {},
        )
    if "/ml/v1/text/rerank" in rec.path:
        texts = [i["text"] for i in rec.body["inputs"]]
        results = sorted(
            ({"index": i, "score": float(len(t))} for i, t in enumerate(texts)), key=lambda r: -r["score"]
        )
        top = rec.body["parameters"]["return_options"].get("top_n") or len(texts)
        return 200, {"model_id": rec.body["model_id"], "results": results[:top], "input_token_count": 4}, {}
    message = {"role": "assistant", "content": "watsonx: " + rec.body["messages"][0]["content"]}
    return (
        200,
        {
            "id": "c",
            "model_id": rec.body["model_id"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        },
        {},
    )


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    with fake_provider(ibm) as fake:
        monkeypatch.setattr(WatsonxRuntime, "iam_url", f"{fake.url}/identity/token")
        yield fake


def create(
    remote: InferenceService, inference_id: str, task: str, url: str, api_key: str = "ibm-key"
) -> None:
    settings = {
        "api_key": api_key,
        "url": url,
        "api_version": "2024-05-02",
        "model_id": "ibm/slate-30m-english-rtrvr",
        "project_id": "proj-1",
    }
    remote.registry.create(inference_id, task, {"service": "watsonxai", "service_settings": settings})


async def test_embeddings_rerank_and_completion_share_one_iam_token(
    remote: InferenceService, server: FakeProvider
) -> None:
    create(remote, "wx", "text_embedding", server.url)
    out = await remote.infer("wx", ["ab", "c"])
    assert [r.embedding for r in out.results] == [[2.0, 0.0], [1.0, 0.0]]
    assert server.requests[1].path == "/ml/v1/text/embeddings?version=2024-05-02"
    assert server.requests[1].body == {
        "inputs": ["ab", "c"],
        "model_id": "ibm/slate-30m-english-rtrvr",
        "project_id": "proj-1",
    }
    await remote.infer("wx", ["again"])
    assert [r.path for r in server.requests].count("/identity/token") == 1  # the token is reused

    create(remote, "wx-r", "rerank", server.url)
    ranked = await remote.infer("wx-r", ["a", "ccc", "bb"], query="q", top_n=2, return_documents=True)
    assert [(r.index, r.text) for r in ranked.results] == [(1, "ccc"), (2, "bb")]
    assert server.requests[-1].body == {
        "model_id": "ibm/slate-30m-english-rtrvr",
        "query": "q",
        "inputs": [{"text": "a"}, {"text": "ccc"}, {"text": "bb"}],
        "project_id": "proj-1",
        "parameters": {"return_options": {"inputs": True, "top_n": 2}},
    }

    create(remote, "wx-c", "completion", server.url)
    done = await remote.infer("wx-c", ["hello"])
    assert [r.result for r in done.results] == ["watsonx: hello"]
    assert server.requests[-1].path == "/ml/v1/text/chat?version=2024-05-02"
    assert server.requests[-1].body == {
        "project_id": "proj-1",
        "model_id": "ibm/slate-30m-english-rtrvr",
        "messages": [{"role": "user", "content": "hello"}],
    }


async def test_a_refused_api_key_is_reported(remote: InferenceService, server: FakeProvider) -> None:
    create(remote, "wx", "text_embedding", server.url, api_key="wrong")
    with pytest.raises(RemoteServiceError) as err:
        await remote.infer("wx", ["x"])
    assert err.value.status == 400
    assert err.value.reason == (
        "Failed to generate a Bearer Token for inference entity id [wx]: status [400]. Error message: [Provided API key could not be found.]"
    )
