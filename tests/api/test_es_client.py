"""The official `elasticsearch` Python client, unchanged, against a running `sidecar serve`.

Runs with whichever client major is installed: 9.x in the project's environment, 8.x in
`.venv-es8` (tests/api/run_es8.sh). Needs only the client, pytest and pytest-asyncio.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import elasticsearch
import pytest
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError, Elasticsearch, NotFoundError

from tests.api.sidecar_process import SidecarProcess, run_sidecar
from tests.unit.inference.remote_fakes import Recorded, fake_provider

MAJOR = int(elasticsearch.__versionstr__.split(".")[0])
SPARSE, DENSE, RERANK = ".splade-tiny", ".minilm-l6", ".minilm-l6-rerank"
LOCAL_SPLADE = {"service": "elasticsearch", "service_settings": {"model_id": ".splade_tiny"}}
TEXTS = ["The sky above the port was the color of television", "tuned to a dead channel"]


@pytest.fixture(scope="module")
def es(sidecar: SidecarProcess) -> Iterator[Elasticsearch]:
    client = Elasticsearch(sidecar.url, request_timeout=60)
    yield client
    client.close()


def test_info_and_ping(es: Elasticsearch) -> None:
    info = es.info()
    assert info["version"]["number"].startswith(f"{MAJOR}.")
    assert info["tagline"] == "You Know, for Search"
    assert es.ping() is True


def test_get(es: Elasticsearch) -> None:
    everything = {e["inference_id"] for e in es.inference.get()["endpoints"]}
    assert {SPARSE, DENSE, RERANK} <= everything
    one = es.inference.get(inference_id=SPARSE)["endpoints"]
    assert [e["task_type"] for e in one] == ["sparse_embedding"]
    typed = es.inference.get(task_type="sparse_embedding", inference_id=SPARSE)
    assert typed["endpoints"] == one
    filtered = es.inference.get(task_type="rerank", inference_id="_all", filter_path="endpoints.inference_id")
    assert filtered.body == {
        "endpoints": [{"inference_id": RERANK}, {"inference_id": ".rerank-v1-elasticsearch"}]
    }


def test_generic_inference(es: Elasticsearch) -> None:
    untyped = es.inference.inference(inference_id=SPARSE, input=TEXTS)
    typed = es.inference.inference(inference_id=SPARSE, task_type="sparse_embedding", input=TEXTS)
    assert untyped.body == typed.body
    assert [set(e) for e in untyped["sparse_embedding"]] == [{"is_truncated", "embedding"}] * 2
    assert untyped["sparse_embedding"][0]["embedding"]["port"] > 0


def _check_sparse(body: Any) -> None:
    assert all(e["embedding"] and not e["is_truncated"] for e in body["sparse_embedding"])


def _check_dense(body: Any) -> None:
    assert [len(e["embedding"]) for e in body["text_embedding"]] == [384, 384]


def _check_rerank(body: Any) -> None:
    ranked = body["rerank"]
    # The `elasticsearch` service returns the documents by default, as Elasticsearch's does.
    assert [set(r) for r in ranked] == [{"index", "relevance_score", "text"}] * 2
    assert ranked[0]["index"] == 0
    assert ranked[0]["relevance_score"] >= ranked[-1]["relevance_score"]


PER_TASK = [
    pytest.param(
        "sparse_embedding", {"inference_id": SPARSE, "input": TEXTS}, _check_sparse, id="sparse_embedding"
    ),
    pytest.param(
        "text_embedding",
        {"inference_id": DENSE, "input": TEXTS, "input_type": "search"},
        _check_dense,
        id="text_embedding",
    ),
    pytest.param(
        "rerank",
        {"inference_id": RERANK, "input": TEXTS, "query": "sky over the port"},
        _check_rerank,
        id="rerank",
    ),
]


@pytest.mark.parametrize(("method", "arguments", "check"), PER_TASK)
def test_per_task_methods(es: Elasticsearch, method: str, arguments: dict[str, Any], check: Any) -> None:
    check(getattr(es.inference, method)(**arguments).body)


def test_completion_method_reaches_the_completion_route(es: Elasticsearch) -> None:
    # No packaged model completes text: the route answers as Elasticsearch does for a mismatch.
    with pytest.raises(BadRequestError) as caught:
        es.inference.completion(inference_id=SPARSE, input="Say hello")
    assert caught.value.message == "status_exception"
    assert "Incompatible task_type" in str(caught.value.body)


def _openai_chat(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    """OpenAI's `chat.completion` answer, echoing the last user message."""
    message = {"role": "assistant", "content": f"echo: {rec.body['messages'][-1]['content']}"}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    return 200, {"id": "c1", "object": "chat.completion", "model": rec.body["model"], "choices": [choice]}, {}


def test_completion_through_a_remote_openai_endpoint(es: Elasticsearch) -> None:
    with fake_provider(_openai_chat) as openai:
        created = es.inference.put_openai(
            task_type="completion",
            openai_inference_id="client-gpt",
            service="openai",
            service_settings={
                "api_key": "sk-client-secret",
                "model_id": "gpt-4o-mini",
                "url": f"{openai.url}/v1/chat/completions",
            },
        )
        assert created["task_type"] == "completion" and "api_key" not in created["service_settings"]
        answer = es.inference.completion(inference_id="client-gpt", input="Say hello")
        assert answer.body == {"completion": [{"result": "echo: Say hello"}]}
        assert openai.requests[-1].headers["authorization"] == "Bearer sk-client-secret"
        es.inference.delete(inference_id="client-gpt")


def test_put_get_update_delete(es: Elasticsearch) -> None:
    created = es.inference.put(
        inference_id="client-splade", task_type="sparse_embedding", inference_config=LOCAL_SPLADE
    )
    assert created["inference_id"] == "client-splade"
    assert created["chunking_settings"]["strategy"] == "sentence"
    assert es.inference.get(inference_id="client-splade")["endpoints"] == [created.body]
    assert es.inference.sparse_embedding(inference_id="client-splade", input="hello")["sparse_embedding"]

    updated = es.inference.update(
        inference_id="client-splade", inference_config={"task_settings": {"pruning": {"top_k": 4}}}
    )
    assert updated["task_settings"] == {"pruning": {"top_k": 4}}
    pruned = es.inference.sparse_embedding(inference_id="client-splade", input=TEXTS[0])
    assert len(pruned["sparse_embedding"][0]["embedding"]) == 4

    assert es.inference.delete(inference_id="client-splade", dry_run=True)["acknowledged"] is False
    deleted = es.inference.delete(inference_id="client-splade", task_type="sparse_embedding")
    assert deleted.body == {"acknowledged": True, "pipelines": [], "indexes": []}
    with pytest.raises(NotFoundError):
        es.inference.get(inference_id="client-splade")


def _tei_vectors(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    return 200, [[0.6, 0.8] for _ in rec.body["inputs"]], {}


def test_put_service_helper_and_secrets(es: Elasticsearch) -> None:
    with fake_provider(_tei_vectors) as tei:  # PUT makes one test call to the provider
        created = es.inference.put_hugging_face(
            task_type="text_embedding",
            huggingface_inference_id="client-tei",
            service="hugging_face",
            service_settings={"url": f"{tei.url}/embed", "api_key": "hf-client-secret"},
        )
    assert created["service_settings"]["dimensions"] == 2
    assert created["service"] == "hugging_face"
    assert "hf-client-secret" not in str(created.body)
    assert "hf-client-secret" not in str(es.inference.get(inference_id="client-tei").body)
    assert es.inference.delete(inference_id="client-tei")["acknowledged"] is True


@pytest.mark.parametrize(
    ("call", "error_class", "error_type"),
    [
        pytest.param(
            lambda es: es.inference.get(inference_id="missing"),
            NotFoundError,
            "resource_not_found_exception",
            id="unknown-id",
        ),
        pytest.param(
            lambda es: es.inference.text_embedding(inference_id=SPARSE, input="x"),
            BadRequestError,
            "status_exception",
            id="task-type-mismatch",
        ),
        pytest.param(
            lambda es: es.inference.inference(inference_id=SPARSE, input=[]),
            BadRequestError,
            "action_request_validation_exception",
            id="empty-input",
        ),
        pytest.param(
            lambda es: es.inference.inference(inference_id=RERANK, task_type="rerank", input=["a"]),
            BadRequestError,
            "action_request_validation_exception",
            id="rerank-without-query",
        ),
        pytest.param(
            lambda es: es.inference.put(inference_id="Bad Id", inference_config=LOCAL_SPLADE),
            BadRequestError,
            "action_request_validation_exception",
            id="invalid-id",
        ),
        pytest.param(
            lambda es: es.inference.put(
                inference_id="x-unknown",
                task_type="sparse_embedding",
                inference_config={"service": "magic", "service_settings": {}},
            ),
            BadRequestError,
            "status_exception",
            id="unknown-service",
        ),
        pytest.param(
            lambda es: es.inference.put(
                inference_id="x-field",
                task_type="sparse_embedding",
                inference_config={**LOCAL_SPLADE, "colour": 1},
            ),
            BadRequestError,
            "x_content_parse_exception",
            id="unknown-field",
        ),
        pytest.param(
            lambda es: es.inference.inference(inference_id=SPARSE, task_type="bogus", input="x"),
            BadRequestError,
            "status_exception",
            id="unknown-task-type",
        ),
        pytest.param(
            lambda es: es.inference.delete(inference_id=SPARSE),
            BadRequestError,
            "status_exception",
            id="reserved-endpoint",
        ),
    ],
)
def test_errors_raise_the_clients_exceptions(
    es: Elasticsearch, call: Any, error_class: type[ApiError], error_type: str
) -> None:
    with pytest.raises(error_class) as caught:
        call(es)
    assert caught.value.message == error_type
    assert caught.value.body["error"]["root_cause"][0]["type"] == error_type
    assert caught.value.meta.status == caught.value.body["status"]


def test_overload_raises_api_error_429(tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = {"max_concurrent_requests": "1", "preload_endpoints": f'["{SPARSE}"]'}
    with run_sidecar(tmp_path_factory.mktemp("busy"), settings) as busy:
        outcomes = asyncio.run(_concurrent_sparse(busy.url, 24))
    rejected = [o for o in outcomes if isinstance(o, ApiError)]
    assert rejected and len(rejected) < len(outcomes)
    assert all(e.meta.status == 429 and e.message == "es_rejected_execution_exception" for e in rejected)
    assert all(isinstance(o, dict) and o["sparse_embedding"] for o in outcomes if not isinstance(o, ApiError))


async def _concurrent_sparse(url: str, count: int) -> list[Any]:
    client = AsyncElasticsearch(url, max_retries=0, request_timeout=60)
    try:

        async def one(i: int) -> Any:
            try:
                return (
                    await client.inference.sparse_embedding(inference_id=SPARSE, input=f"{TEXTS[0]} {i}")
                ).body
            except ApiError as err:
                return err

        return await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        await client.close()


def test_request_ids_reach_the_server_log(es: Elasticsearch, sidecar: SidecarProcess) -> None:
    es.options(opaque_id="client-trace-1").inference.get(inference_id=SPARSE)
    deadline = time.monotonic() + 10
    # The access record is written just after the answer is sent: give the server a moment.
    while '"request_id": "client-trace-1"' not in Path(sidecar.log_path).read_text(encoding="utf-8"):
        assert time.monotonic() < deadline, sidecar.log_tail()
        time.sleep(0.05)


# --- Elasticsearch's documentation flows: built-in model ids, the `elser` service ----------------

SKY = "The sky above the port was the color of television tuned to a dead channel."


def test_elser_service_example_warns_like_elasticsearch(es: Elasticsearch) -> None:
    with pytest.warns(elasticsearch.ElasticsearchWarning) as caught:
        created = es.inference.put(
            task_type="sparse_embedding",
            inference_id="my-elser-model",
            inference_config={
                "service": "elser",
                "service_settings": {"num_allocations": 1, "num_threads": 1},
            },
        )
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("The [elser] service is deprecated") for m in messages)
    assert created["service"] == "elasticsearch"
    with pytest.warns(elasticsearch.ElasticsearchWarning, match="stand-in"):
        tokens = es.inference.sparse_embedding(inference_id="my-elser-model", input=SKY)["sparse_embedding"]
    assert tokens[0]["embedding"]["port"] > 0 and tokens[0]["embedding"]["sky"] > 0
    es.inference.delete(inference_id="my-elser-model")


@pytest.mark.parametrize("model_id", [".elser_model_1", ".elser_model_2", ".elser_model_2_linux-x86_64"])
def test_elasticsearch_service_with_elser_ids(es: Elasticsearch, model_id: str) -> None:
    with pytest.warns(elasticsearch.ElasticsearchWarning, match="stand-in"):
        es.inference.put(
            task_type="sparse_embedding",
            inference_id="client-elser",
            inference_config={
                "service": "elasticsearch",
                "service_settings": {"model_id": model_id, "num_allocations": 1, "num_threads": 1},
            },
        )
        got = es.inference.get(inference_id="client-elser")["endpoints"][0]
        embedding = es.inference.sparse_embedding(inference_id="client-elser", input=SKY)["sparse_embedding"]
    assert got["service_settings"]["model_id"] == model_id
    assert {"port", "sky"} <= set(embedding[0]["embedding"])
    es.inference.delete(inference_id="client-elser")


@pytest.mark.parametrize("model_id", [".multilingual-e5-small", ".multilingual-e5-small_linux-x86_64"])
def test_elasticsearch_service_with_e5_ids(es: Elasticsearch, model_id: str) -> None:
    with pytest.warns(elasticsearch.ElasticsearchWarning, match="stand-in"):
        created = es.inference.put(
            task_type="text_embedding",
            inference_id="client-e5",
            inference_config={
                "service": "elasticsearch",
                "service_settings": {"model_id": model_id, "num_allocations": 1, "num_threads": 1},
            },
        )
        vectors = es.inference.text_embedding(inference_id="client-e5", input=[SKY], input_type="SEARCH")
    assert created["service_settings"]["dimensions"] == 384
    assert len(vectors["text_embedding"][0]["embedding"]) == 384
    es.inference.delete(inference_id="client-e5")


def test_elasticsearch_service_with_the_rerank_id(es: Elasticsearch) -> None:
    documents = ["A recipe for lemon cake.", SKY, "Stock markets fell on Tuesday."]
    with pytest.warns(elasticsearch.ElasticsearchWarning, match="stand-in"):
        es.inference.put(
            task_type="rerank",
            inference_id="client-rerank",
            inference_config={
                "service": "elasticsearch",
                "service_settings": {"model_id": ".rerank-v1", "num_allocations": 1, "num_threads": 1},
            },
        )
        ranked = es.inference.rerank(
            inference_id="client-rerank", query="the sky over a port", input=documents
        )
    assert ranked["rerank"][0]["index"] == 1
    assert ranked["rerank"][0]["text"] == SKY
    es.inference.delete(inference_id="client-rerank")


@pytest.mark.parametrize(
    ("inference_id", "method", "extra"),
    [
        (".elser-2-elasticsearch", "sparse_embedding", {}),
        (".multilingual-e5-small-elasticsearch", "text_embedding", {}),
        (".rerank-v1-elasticsearch", "rerank", {"query": "sky"}),
    ],
)
def test_preconfigured_endpoints_answer(
    es: Elasticsearch, inference_id: str, method: str, extra: dict[str, Any]
) -> None:
    with pytest.warns(elasticsearch.ElasticsearchWarning, match="stand-in"):
        answer = getattr(es.inference, method)(inference_id=inference_id, input=[SKY], **extra)
    assert answer[method]
    with pytest.raises(BadRequestError, match="reserved inference endpoint"):
        es.inference.delete(inference_id=inference_id)


def test_embedding_task_type_and_region_policy(es: Elasticsearch) -> None:
    created = es.inference.put(
        task_type="embedding",
        inference_id="client-embedding",
        inference_config={"service": "elasticsearch", "service_settings": {"model_id": ".minilm_l6"}},
    )
    assert created["task_type"] == "embedding"
    answer = es.inference.inference(
        task_type="embedding", inference_id="client-embedding", input=["The first text", "The second text"]
    )
    assert [len(e["embedding"]) for e in answer["embeddings"]] == [384, 384]
    es.inference.delete(inference_id="client-embedding")
    with pytest.raises(NotFoundError) as caught:
        es.perform_request("GET", "/_inference/_region_policy")
    assert caught.value.body["error"]["reason"] == "No region policy is configured for this deployment"
