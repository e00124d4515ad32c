"""Elasticsearch's `custom` service against providers of several shapes: text-embeddings-inference,
OpenAI, Cohere v2 (the specification's examples), and the sidecar itself over HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from sidecar.errors import RemoteServiceError, SettingsValidationError, StatusError
from sidecar.inference.service import InferenceService
from sidecar.inference.types import InputType

from .remote_fakes import Recorded, fake_provider, tei_answer


def custom(url: str, request: str, json_parser: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "service": "custom",
        "service_settings": {
            "url": url,
            "request": request,
            "response": {"json_parser": json_parser},
            **extra,
        },
    }


# --- text-embeddings-inference ------------------------------------------------------------------
async def test_tei_sparse_in_batches_with_secret_header_and_query_parameters(
    remote: InferenceService,
) -> None:
    with fake_provider(tei_answer) as tei:
        body = custom(
            f"{tei.url}/embed_sparse",
            '{"inputs": ${input}, "truncate": ${truncate}}',
            {"token_path": "$[*][*].index", "weight_path": "$[*][*].value"},
            headers={"Authorization": "Bearer ${api_key}"},
            query_parameters=[["tenant", "${tenant}"], ["tenant", "b"]],
            secret_parameters={"api_key": "tei-secret"},
            batch_size=2,
        )
        body["task_settings"] = {"parameters": {"truncate": True, "tenant": "a"}}
        endpoint = remote.registry.create("tei-sparse", "sparse_embedding", body)
        assert "secret_parameters" not in endpoint.public_dict()["service_settings"]

        out = await remote.infer("tei-sparse", ["one", "three", "fifteen"])
        assert [r.embedding for r in out.results] == [
            {"103": 0.5, "7": 1.25},
            {"105": 0.5, "7": 1.25},
            {"107": 0.5, "7": 1.25},
        ]
        assert [r.body for r in tei.requests] == [
            {"inputs": ["one", "three"], "truncate": True},
            {"inputs": ["fifteen"], "truncate": True},
        ]
        sent = tei.requests[0]
        assert sent.path == "/embed_sparse?tenant=a&tenant=b"
        assert sent.headers["authorization"] == "Bearer tei-secret"
        assert sent.headers["content-type"] == "application/json"


async def test_tei_dense_from_a_top_level_array(remote: InferenceService) -> None:
    with fake_provider(tei_answer) as tei:
        remote.registry.create(
            "tei-dense",
            "text_embedding",
            custom(f"{tei.url}/embed", '{"inputs": ${input}}', {"text_embeddings": "$[*]"}, dimensions=3),
        )
        out = await remote.infer("tei-dense", ["ab", "abcd"])
        assert [r.embedding for r in out.results] == [[2.0, 1.0, -1.0], [4.0, 1.0, -1.0]]
        assert out.embedding_type == "float"


async def test_tei_rerank_with_query_top_n_and_document_text(remote: InferenceService) -> None:
    with fake_provider(tei_answer) as tei:
        remote.registry.create(
            "tei-rerank",
            "rerank",
            custom(
                f"{tei.url}/rerank",
                '{"query": ${query}, "texts": ${input}, "return_text": ${return_documents}}',
                {
                    "reranked_index": "$[*].index",
                    "relevance_score": "$[*].score",
                    "document_text": "$[*].text",
                },
            ),
        )
        docs = ["a", "a much longer text", 'quote " and ünïcode']
        out = await remote.infer(
            "tei-rerank", docs, query='quote " and ünïcode', top_n=2, return_documents=True
        )
        assert [(r.index, r.text) for r in out.results] == [(2, docs[2]), (1, docs[1])]
        assert tei.requests[0].body == {"query": docs[2], "texts": docs, "return_text": True}


# --- OpenAI -------------------------------------------------------------------------------------
def openai_answer(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    if rec.path == "/v1/embeddings":
        data = [
            {"object": "embedding", "index": i, "embedding": [0.5, float(i)]}
            for i in range(len(rec.body["input"]))
        ]
        return 200, {"object": "list", "data": data, "model": rec.body["model"]}, {}
    content = rec.body["messages"][0]["content"]
    message = {"role": "assistant", "content": f"echo: {content}", "refusal": None}
    return (
        200,
        {"object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]},
        {},
    )


OPENAI_429 = {
    "error": {
        "message": "Rate limit reached",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


async def test_openai_embeddings_as_in_the_specification_example_retrying_429(
    remote: InferenceService,
) -> None:
    with fake_provider(openai_answer) as openai:
        openai.script.append((429, OPENAI_429, {"retry-after": "0"}))
        remote.registry.create(
            "oa-custom",
            "text_embedding",
            custom(
                f"{openai.url}/v1/embeddings",
                '{"input": ${input}, "model": "text-embedding-3-small"}',
                {"text_embeddings": "$.data[*].embedding[*]"},
                headers={
                    "Authorization": "Bearer ${api_key}",
                    "Content-Type": "application/json;charset=utf-8",
                },
                secret_parameters={"api_key": "sk-x"},
            ),
        )
        out = await remote.infer("oa-custom", ["x", "y"])
        assert [r.embedding for r in out.results] == [[0.5, 0.0], [0.5, 1.0]]
        assert len(openai.requests) == 2
        sent = openai.requests[-1]
        assert sent.body == {"input": ["x", "y"], "model": "text-embedding-3-small"}
        assert sent.headers["content-type"] == "application/json;charset=utf-8"
        assert sent.headers["authorization"] == "Bearer sk-x"


async def test_openai_completion_one_request_per_input(remote: InferenceService) -> None:
    with fake_provider(openai_answer) as openai:
        remote.registry.create(
            "oa-complete",
            "completion",
            custom(
                f"{openai.url}/v1/chat/completions",
                '{"model": "gpt-4o", "messages": [{"role": "user", "content": ${input}}]}',
                {"completion_result": "$.choices[*].message.content"},
            ),
        )
        out = await remote.infer("oa-complete", ["hi", "there"])
        assert [r.result for r in out.results] == ["echo: hi", "echo: there"]
        assert openai.requests[0].body["messages"] == [{"role": "user", "content": "hi"}]


async def test_provider_error_and_unreadable_answer(remote: InferenceService) -> None:
    bad_key = {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
    with fake_provider(lambda rec: (200, {"object": "list", "items": []}, {})) as openai:
        openai.script.append((401, bad_key, {}))
        remote.registry.create(
            "oa-bad",
            "text_embedding",
            custom(openai.url, '{"input": ${input}}', {"text_embeddings": "$.data[*].embedding"}),
        )
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("oa-bad", ["x"])
        assert err.value.status == 401
        assert err.value.reason.endswith("Error message: [Incorrect API key provided]")
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("oa-bad", ["x"])
        assert err.value.reason == (
            "Failed to parse the [custom] response for inference entity id [oa-bad]: "
            "Unable to find field [data] in map"
        )


# --- Cohere v2 (the specification's input_type example) -----------------------------------------
async def test_input_type_translation_and_default(remote: InferenceService) -> None:
    def cohere(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
        return 200, {"id": "1", "embeddings": {"int8": [[1, -2] for _ in rec.body["texts"]]}}, {}

    with fake_provider(cohere) as server:
        remote.registry.create(
            "cohere-v2",
            "text_embedding",
            custom(
                f"{server.url}/v2/embed",
                '{"texts": ${input}, "model": "embed-v4.0", "input_type": ${input_type}}',
                {"text_embeddings": "$.embeddings.int8[*]", "embedding_type": "byte"},
                input_type={
                    "translation": {"ingest": "search_document", "search": "search_query"},
                    "default": "x",
                },
            ),
        )
        out = await remote.infer("cohere-v2", ["a"], input_type=InputType.SEARCH)
        assert out.embedding_type == "byte" and out.results[0].embedding == [1, -2]
        await remote.infer("cohere-v2", ["a"], input_type=InputType.CLUSTERING)
        await remote.infer("cohere-v2", ["a"])
        assert [r.body["input_type"] for r in server.requests] == ["search_query", "x", "x"]


# --- validation at PUT --------------------------------------------------------------------------
def put(remote: InferenceService, task: str, body: dict[str, Any]) -> None:
    remote.registry.create("bad", task, body)


@pytest.mark.parametrize(
    ("task", "settings", "message"),
    [
        (
            "text_embedding",
            {"request": "{}", "response": {"json_parser": {"text_embeddings": "$.a"}}},
            "Validation Failed: 1: [service_settings] does not contain the required setting [url];",
        ),
        (
            "sparse_embedding",
            {"url": "http://x", "request": "{}", "response": {"json_parser": {"token_path": "$.t"}}},
            "Validation Failed: 1: [service_settings.response.json_parser] does not contain the required "
            "setting [weight_path];",
        ),
        (
            "rerank",
            {"url": "http://x", "request": "{}", "response": {}},
            "Validation Failed: 1: [service_settings.response] does not contain the required setting [json_parser];",
        ),
        (
            "text_embedding",
            {
                "url": "http://x",
                "request": '{"a": ${nope}}',
                "response": {"json_parser": {"text_embeddings": "$"}},
            },
            "Validation Failed: 1: Failed to validate model configuration: Found placeholder [${nope}] in "
            "field [request] after replacement call;",
        ),
        (
            "completion",
            {
                "url": "http://x/${region}",
                "request": "{}",
                "response": {"json_parser": {"completion_result": "$.c"}},
            },
            "Validation Failed: 1: Failed to validate model configuration: Found placeholder [${region}] in "
            "field [url] after replacement call;",
        ),
        (
            "text_embedding",
            {
                "url": "http://x",
                "request": "{}",
                "batch_size": 0,
                "response": {"json_parser": {"text_embeddings": "$", "embedding_type": "half"}},
            },
            "Validation Failed: 1: [service_settings.response.json_parser] Invalid value [half] received. "
            "[embedding_type] must be one of [float, byte, binary, bit];",
        ),
    ],
)
def test_settings_errors_name_the_setting(
    remote: InferenceService, task: str, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsValidationError) as err:
        put(remote, task, {"service": "custom", "service_settings": settings})
    assert err.value.reason == message


def test_unknown_parser_keys_and_dense_only_settings_are_refused(remote: InferenceService) -> None:
    base = {"url": "http://x", "request": '{"q": ${query}, "d": ${input}}'}
    with pytest.raises(StatusError) as err:
        put(
            remote,
            "rerank",
            {
                "service": "custom",
                "service_settings": {
                    **base,
                    "response": {"json_parser": {"relevance_score": "$.s", "text": "$.t"}},
                },
            },
        )
    assert err.value.reason == (
        "Configuration contains unknown settings [{text=$.t}] while parsing field [json_parser] "
        "for settings [custom_service_settings]"
    )
    with pytest.raises(StatusError) as err:
        put(
            remote,
            "rerank",
            {
                "service": "custom",
                "service_settings": {
                    **base,
                    "dimensions": 3,
                    "response": {"json_parser": {"relevance_score": "$"}},
                },
            },
        )
    assert (
        err.value.reason
        == "Model configuration contains settings {dimensions=3} unknown to the [custom] service"
    )
    with pytest.raises(StatusError) as err:
        put(remote, "chat_completion", custom("http://x", "{}", {}))
    assert err.value.reason == "The [custom] service does not support task type [chat_completion]"


def test_secret_and_task_parameters_fill_templates_at_put(remote: InferenceService) -> None:
    body = custom(
        "http://x/${path}",
        '{"key": ${api_key}, "n": ${n}, "in": ${input}}',
        {"text_embeddings": "$.e"},
        secret_parameters={"api_key": "k", "path": "embed"},
    )
    body["task_settings"] = {"parameters": {"n": 3}}
    endpoint = remote.registry.create("ok", "text_embedding", body)
    assert endpoint.secrets == {"secret_parameters": {"api_key": "k", "path": "embed"}}
    assert endpoint.task_settings == {"parameters": {"n": 3}}


# --- the sidecar itself as the provider ----------------------------------------------------------
@pytest.fixture(scope="module")
def sidecar_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This project's own API on a local port, in a thread (its packaged models load on first use)."""
    from sidecar.api.app import create_app
    from sidecar.settings import load_settings

    path: Path = tmp_path_factory.mktemp("self") / "endpoints.sqlite3"
    # Models load at startup, so that no request of the test waits on a model load.
    preload = [".splade-tiny", ".minilm-l6", ".minilm-l6-rerank"]
    app = create_app(load_settings(registry_path=path, preload_endpoints=preload))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the sidecar did not start")
        threading.Event().wait(0.05)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    while httpx.get(f"{url}/_sidecar/health/ready", timeout=60).status_code != 200:
        if not thread.is_alive():
            raise RuntimeError("the sidecar stopped while loading its models")
        threading.Event().wait(0.1)
    yield url
    server.should_exit = True
    thread.join()


async def test_the_sidecar_serves_its_own_custom_endpoints(
    remote: InferenceService, sidecar_url: str
) -> None:
    remote.registry.create(
        "self-sparse",
        "sparse_embedding",
        custom(
            f"{sidecar_url}/_sidecar/custom/.splade-tiny",
            '{"input": ${input}}',
            {
                "token_path": "$.sparse_embedding[*].embedding[*].token",
                "weight_path": "$.sparse_embedding[*].embedding[*].weight",
            },
        ),
    )
    remote.registry.create(
        "self-dense",
        "text_embedding",
        custom(
            f"{sidecar_url}/_inference/text_embedding/.minilm-l6",
            '{"input": ${input}}',
            {"text_embeddings": "$.text_embedding[*].embedding"},
        ),
    )
    remote.registry.create(
        "self-rerank",
        "rerank",
        custom(
            f"{sidecar_url}/_inference/rerank/.minilm-l6-rerank",
            '{"input": ${input}, "query": ${query}}',
            {"reranked_index": "$.rerank[*].index", "relevance_score": "$.rerank[*].relevance_score"},
        ),
    )
    texts = ["The sky above the port was the color of television.", "Bread is baked in an oven."]
    sparse, direct_sparse = await asyncio.gather(
        remote.infer("self-sparse", texts), remote.infer(".splade-tiny", texts)
    )
    for got, want in zip(sparse.results, direct_sparse.results, strict=True):
        assert got.embedding.keys() == want.embedding.keys()
        assert all(abs(got.embedding[k] - want.embedding[k]) < 1e-4 for k in want.embedding)
    assert "sky" in sparse.results[0].embedding

    dense = await remote.infer("self-dense", texts)
    direct = await remote.infer(".minilm-l6", texts)
    assert [len(r.embedding) for r in dense.results] == [384, 384]
    for got, want in zip(dense.results, direct.results, strict=True):
        assert max(abs(a - b) for a, b in zip(got.embedding, want.embedding, strict=True)) < 1e-4

    ranked = await remote.infer("self-rerank", texts, query="What colour was the sky?")
    assert ranked.results[0].index == 0


def test_custom_endpoint_through_the_api_of_the_sidecar_it_calls(sidecar_url: str) -> None:
    """PUT (with its validation call), GET without secrets, POST and a refused template, over HTTP
    against one sidecar whose custom endpoint calls that same sidecar."""
    body = custom(
        f"{sidecar_url}/_inference/text_embedding/.minilm-l6",
        '{"input": ${input}}',
        {"text_embeddings": "$.text_embedding[*].embedding"},
        headers={"X-Trace": "${trace}"},
        secret_parameters={"trace": "t-1"},
    )
    with httpx.Client(base_url=sidecar_url, timeout=60) as client:
        created = client.put("/_inference/text_embedding/self-custom", json=body)
        assert created.status_code == 200, created.text
        # The validation call measured the vector: dimensions and similarity filled in, as Elasticsearch does.
        assert created.json()["service_settings"]["dimensions"] == 384
        shown = client.get("/_inference/text_embedding/self-custom").json()["endpoints"][0]
        assert "secret_parameters" not in shown["service_settings"]
        answer = client.post("/_inference/text_embedding/self-custom", json={"input": ["sky", "port"]})
        assert answer.status_code == 200
        assert [len(e["embedding"]) for e in answer.json()["text_embedding"]] == [384, 384]

        body["service_settings"]["request"] = '{"input": ${input}, "model": ${model}}'
        refused = client.put("/_inference/text_embedding/bad-custom", json=body)
        assert refused.status_code == 400
        assert refused.json()["error"]["type"] == "validation_exception"
        assert refused.json()["error"]["reason"] == (
            "Validation Failed: 1: Failed to validate model configuration: Found placeholder [${model}] in "
            "field [request] after replacement call;"
        )


async def test_task_parameters_merge_per_key_on_request_and_update(remote: InferenceService) -> None:
    # Elasticsearch merges the custom service's `parameters` key by key: a request's (or an
    # update's) value wins for its own keys and the stored ones it does not name remain.
    with fake_provider(tei_answer) as tei:
        body = custom(
            f"{tei.url}/embed",
            '{"inputs": ${input}, "truncate": ${truncate}, "tag": ${tag}}',
            {"text_embeddings": "$[*]"},
        )
        body["task_settings"] = {"parameters": {"truncate": True, "tag": "stored"}}
        remote.registry.create("tei-params", "text_embedding", body)

        await remote.infer("tei-params", ["ab"], task_settings={"parameters": {"tag": "asked"}})
        assert tei.requests[-1].body == {"inputs": ["ab"], "truncate": True, "tag": "asked"}

        updated = remote.registry.update(
            "tei-params", None, {"task_settings": {"parameters": {"truncate": False}}}
        )
        assert updated.task_settings == {"parameters": {"truncate": False, "tag": "stored"}}
        await remote.infer("tei-params", ["ab"])
        assert tei.requests[-1].body == {"inputs": ["ab"], "truncate": False, "tag": "stored"}
