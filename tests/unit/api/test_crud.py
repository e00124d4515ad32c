"""Managing endpoints over HTTP: create, get, update, delete, and the services listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from syrupy.assertion import SnapshotAssertion

from tests.unit.api.conftest import SPARSE_ID
from tests.unit.inference.remote_fakes import Recorded, fake_provider

LOCAL_SPLADE = {
    "service": "elasticsearch",
    "service_settings": {"model_id": ".splade_tiny"},
    "chunking_settings": {"strategy": "word", "max_chunk_size": 100, "overlap": 20},
}
REMOTE_DENSE: dict[str, Any] = {
    "service": "hugging_face",
    "service_settings": {"url": "http://tei.internal:8080/embed", "api_key": "hf-secret"},
}


async def test_endpoint_lifecycle(client: httpx.AsyncClient, snapshot: SnapshotAssertion) -> None:
    created = await client.put("/_inference/sparse_embedding/crud-splade", json=LOCAL_SPLADE)
    assert created.status_code == 200, created.text
    assert created.json() == snapshot(name="put")

    fetched = await client.get("/_inference/crud-splade")
    typed = await client.get("/_inference/sparse_embedding/crud-splade")
    assert fetched.json() == typed.json() == {"endpoints": [created.json()]}

    inferred = await client.post("/_inference/crud-splade", json={"input": "hello world"})
    assert inferred.status_code == 200
    assert inferred.json()["sparse_embedding"][0]["embedding"]

    updated = await client.put(
        "/_inference/crud-splade/_update", json={"task_settings": {"pruning": {"top_k": 3}}}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json() == snapshot(name="update")
    pruned = await client.post("/_inference/crud-splade", json={"input": "hello world"})
    assert len(pruned.json()["sparse_embedding"][0]["embedding"]) == 3

    dry = await client.delete("/_inference/crud-splade?dry_run=true")
    assert dry.json() == snapshot(name="delete_dry_run")
    assert (await client.get("/_inference/crud-splade")).status_code == 200

    deleted = await client.delete("/_inference/sparse_embedding/crud-splade")
    assert deleted.json() == snapshot(name="delete")
    assert (await client.get("/_inference/crud-splade")).status_code == 404


def _tei_vectors(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    """text-embeddings-inference's `/embed` answer: one vector per input."""
    return 200, [[0.6, 0.8, 0.0] for _ in rec.body["inputs"]], {}


async def test_untyped_put_takes_the_task_type_from_the_body(client: httpx.AsyncClient) -> None:
    with fake_provider(_tei_vectors) as tei:
        settings = {**REMOTE_DENSE["service_settings"], "url": f"{tei.url}/embed"}
        body = {**REMOTE_DENSE, "service_settings": settings, "task_type": "text_embedding"}
        created = await client.put("/_inference/crud-remote", json=body)
        assert len(tei.requests) == 1  # the probe: one call, as Elasticsearch's validation
        assert created.status_code == 200, created.text
        assert created.json()["task_type"] == "text_embedding"
        assert created.json()["service_settings"]["dimensions"] == 3  # measured by the probe
        assert "api_key" not in created.json()["service_settings"]
        # 8.17 clients update with POST; a changed endpoint is validated with one call too.
        updated = await client.post(
            "/_inference/text_embedding/crud-remote/_update",
            json={"service_settings": {"api_key": "rotated"}},
        )
        assert updated.status_code == 200, updated.text
        assert "rotated" not in updated.text
        assert len(tei.requests) == 2 and tei.requests[-1].headers["authorization"] == "Bearer rotated"
    # The provider is gone: an update that changes the endpoint is refused, nothing is stored.
    refused = await client.put(
        "/_inference/crud-remote/_update", json={"service_settings": {"api_key": "third"}}
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["reason"].startswith("Could not complete inference endpoint creation")
    assert (await client.delete("/_inference/crud-remote")).json()["acknowledged"] is True


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/_inference", {".minilm-l6", ".minilm-l6-rerank", SPARSE_ID}),
        ("/_inference/_all", {".minilm-l6", ".minilm-l6-rerank", SPARSE_ID}),
        ("/_inference/*", {".minilm-l6", ".minilm-l6-rerank", SPARSE_ID}),
        ("/_inference/sparse_embedding/_all", {SPARSE_ID}),
        ("/_inference/rerank/_all", {".minilm-l6-rerank"}),
        ("/_inference/completion/_all", set()),
    ],
)
async def test_listing(client: httpx.AsyncClient, path: str, expected: set[str]) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    ids = {e["inference_id"] for e in response.json()["endpoints"]}
    assert expected <= ids
    assert not {i for i in ids if i.startswith("crud-")}  # only the built-ins exist between tests


async def test_builtin_endpoints(client: httpx.AsyncClient, snapshot: SnapshotAssertion) -> None:
    response = await client.get("/_inference")
    builtins = [e for e in response.json()["endpoints"] if e["inference_id"].startswith(".")]
    assert builtins == snapshot


async def test_services_listing(client: httpx.AsyncClient, snapshot: SnapshotAssertion) -> None:
    everything = (await client.get("/_inference/_services")).json()
    assert {s["service"] for s in everything} >= {"elasticsearch", "hugging_face"}
    sparse = (await client.get("/_inference/_services/sparse_embedding")).json()
    assert all("sparse_embedding" in s["task_types"] for s in sparse)
    assert [s["service"] for s in sparse] == snapshot(name="sparse")
    assert everything == snapshot(name="all")
    # Every service carries Elasticsearch's display name, not its id.
    names = {s["service"]: s["name"] for s in everything}
    assert all(name != service for service, name in names.items())
    assert names["watsonxai"] == "IBM watsonx"
    assert names["alibabacloud-ai-search"] == "AlibabaCloud AI Search"
    custom = next(s for s in everything if s["service"] == "custom")["configurations"]
    assert (custom["batch_size"]["type"], custom["headers"]["type"], custom["url"]["type"]) == (
        "int",
        "map",
        "str",
    )


async def test_elser_service_example(client: httpx.AsyncClient) -> None:
    # Elasticsearch's documented example, verbatim.
    body = {"service": "elser", "service_settings": {"num_allocations": 1, "num_threads": 1}}
    created = await client.put("/_inference/sparse_embedding/crud-elser", json=body)
    assert created.status_code == 200, created.text
    assert created.json()["service"] == "elasticsearch"
    assert created.json()["service_settings"]["model_id"] == ".elser_model_2"
    warnings = created.headers.get_list("warning")
    assert any(
        w.startswith("299 Elasticsearch-") and '"The [elser] service is deprecated' in w for w in warnings
    )
    assert any("stand-in [.splade_tiny]" in w for w in warnings)
    inferred = await client.post("/_inference/crud-elser", json={"input": "the sky above the port"})
    assert inferred.json()["sparse_embedding"][0]["embedding"]["port"] > 0
    assert "stand-in" in inferred.headers["warning"]
    assert (await client.delete("/_inference/crud-elser")).status_code == 200


@pytest.mark.parametrize(
    ("task_type", "model_id"),
    [
        ("sparse_embedding", ".elser_model_1"),
        ("sparse_embedding", ".elser_model_2"),
        ("sparse_embedding", ".elser_model_2_linux-x86_64"),
        ("text_embedding", ".multilingual-e5-small"),
        ("text_embedding", ".multilingual-e5-small_linux-x86_64"),
        ("rerank", ".rerank-v1"),
    ],
)
async def test_built_in_model_ids(client: httpx.AsyncClient, task_type: str, model_id: str) -> None:
    settings = {"num_allocations": 1, "num_threads": 1, "model_id": model_id}
    body = {"service": "elasticsearch", "service_settings": settings}
    created = await client.put(f"/_inference/{task_type}/crud-builtin", json=body)
    assert created.status_code == 200, created.text
    assert f"[{model_id}] is served by the stand-in" in created.headers["warning"]
    fetched = await client.get("/_inference/crud-builtin")
    assert fetched.json()["endpoints"][0]["service_settings"]["model_id"] == model_id  # the id given
    assert "stand-in" in fetched.headers["warning"]
    request: dict[str, Any] = {"input": ["The sky above the port", "a recipe for bread"]}
    if task_type == "rerank":
        request["query"] = "harbour sky"
    answer = await client.post(f"/_inference/{task_type}/crud-builtin", json=request)
    assert answer.status_code == 200, answer.text
    if task_type == "text_embedding":
        assert created.json()["service_settings"]["dimensions"] == 384
        assert len(answer.json()["text_embedding"][0]["embedding"]) == 384
    assert (await client.delete("/_inference/crud-builtin")).status_code == 200


@pytest.mark.parametrize(
    ("inference_id", "key"),
    [
        (".elser-2-elasticsearch", "sparse_embedding"),
        (".multilingual-e5-small-elasticsearch", "text_embedding"),
        (".rerank-v1-elasticsearch", "rerank"),
    ],
)
async def test_preconfigured_elasticsearch_endpoints(
    client: httpx.AsyncClient, inference_id: str, key: str
) -> None:
    body: dict[str, Any] = {"input": ["The sky above the port"]}
    if key == "rerank":
        body["query"] = "sky"
    answer = await client.post(f"/_inference/{inference_id}", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()[key]
    assert "stand-in" in answer.headers["warning"]
    refused = await client.delete(f"/_inference/{inference_id}")
    assert refused.status_code == 400
    assert refused.json()["error"]["reason"] == (
        f"[{inference_id}] is a reserved inference endpoint. Cannot delete a reserved inference endpoint."
    )


async def test_put_refuses_a_model_that_cannot_load(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client.app.state.settings, "model_dirs", [tmp_path])  # type: ignore[attr-defined]
    empty = tmp_path / "no-weights"
    empty.mkdir()
    body = {"service": "elasticsearch", "service_settings": {"model_id": str(empty)}}
    refused = await client.put("/_inference/sparse_embedding/crud-broken", json=body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["type"] == "status_exception"
    assert refused.json()["error"]["reason"].startswith(f"Could not load model [{empty}]")
    assert (await client.get("/_inference/crud-broken")).status_code == 404  # nothing stored


async def test_put_refuses_a_provider_that_fails_the_test_call(client: httpx.AsyncClient) -> None:
    with fake_provider(lambda rec: (401, {"error": "Authorization header is invalid"}, {})) as tei:
        settings = {**REMOTE_DENSE["service_settings"], "url": f"{tei.url}/embed"}
        refused = await client.put(
            "/_inference/text_embedding/crud-denied", json={**REMOTE_DENSE, "service_settings": settings}
        )
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["reason"] == (
        "Could not complete inference endpoint creation as validation call to service threw an exception."
    )
    assert "hf-secret" not in refused.text
    assert error["caused_by"]["reason"]  # the provider's answer, named
    assert (await client.get("/_inference/crud-denied")).status_code == 404


async def test_task_type_mismatch_messages(client: httpx.AsyncClient) -> None:
    expected = (
        "Requested task type [text_embedding] does not match the inference endpoint's task type "
        "[sparse_embedding]"
    )
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"/_inference/text_embedding/{SPARSE_ID}")
        assert response.status_code == 400
        assert response.json()["error"] == {
            "root_cause": [{"type": "status_exception", "reason": expected}],
            "type": "status_exception",
            "reason": expected,
        }


async def test_update_refuses_what_cannot_change(client: httpx.AsyncClient) -> None:
    assert (await client.put("/_inference/sparse_embedding/crud-upd", json=LOCAL_SPLADE)).status_code == 200
    try:
        cases = [
            (
                "/_inference/crud-upd/_update",
                {"service": "openai", "task_settings": {}},
                "Request contained fields which cannot be updated, remove these fields and try again "
                "{service=openai}",
            ),
            ("/_inference/crud-upd/_update", {}, "Request body is empty"),
            (
                "/_inference/text_embedding/crud-upd/_update",
                {"task_settings": {}},
                "Task type must match the task type of the existing endpoint",
            ),
            (
                "/_inference/crud-upd/_update",
                {"task_type": "rerank", "task_settings": {}},
                "Task type must match the task type of the existing endpoint",
            ),
        ]
        for path, body, reason in cases:
            response = await client.put(path, json=body)
            assert response.status_code == 400, (path, body, response.text)
            assert (response.json()["error"]["type"], response.json()["error"]["reason"]) == (
                "status_exception",
                reason,
            )
    finally:
        await client.delete("/_inference/crud-upd")


async def test_region_policy_routes_when_none_is_configured(client: httpx.AsyncClient) -> None:
    for method in ("GET", "DELETE"):
        response = await client.request(method, "/_inference/_region_policy")
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "resource_not_found_exception"
        assert response.json()["error"]["reason"] == "No region policy is configured for this deployment"
    refused = await client.put(
        "/_inference/_region_policy", json={"region_policy": {"allowed_geos": ["us", "eu"]}}
    )
    assert refused.status_code == 400
    assert "Elastic Inference Service" in refused.json()["error"]["reason"]


async def test_trailing_slash_lists_like_without(client: httpx.AsyncClient) -> None:
    slash = await client.get("/_inference/")
    assert slash.status_code == 200
    assert slash.json() == (await client.get("/_inference")).json()


async def test_recursive_chunking_endpoint(client: httpx.AsyncClient) -> None:
    chunking = {"strategy": "recursive", "max_chunk_size": 20, "separators": ["\n\n", "\n"]}
    body = {**LOCAL_SPLADE, "chunking_settings": chunking}
    created = await client.put("/_inference/sparse_embedding/crud-recursive", json=body)
    assert created.status_code == 200, created.text
    assert created.json()["chunking_settings"] == {**chunking, "strategy": "recursive"}
    long_text = "\n\n".join(f"The port section {i} " + "sky " * 15 for i in range(4))
    answer = await client.post("/_inference/crud-recursive", json={"input": long_text})
    assert answer.json()["sparse_embedding"][0]["embedding"]["port"] > 0
    assert (await client.delete("/_inference/crud-recursive")).status_code == 200


# Every route of Elasticsearch's `inference.*` API specification with its query parameters (9.4):
# each is served (a missing endpoint is a 404 resource_not_found_exception, never an unknown route
# or an unrecognised parameter).
SPEC_ROUTES = [
    (
        "PUT",
        "/_inference/spec-missing?timeout=30s",
        {"service": "nope", "service_settings": {}, "task_type": "rerank"},
    ),
    (
        "PUT",
        "/_inference/sparse_embedding/spec-missing?timeout=30s",
        {"service": "nope", "service_settings": {}},
    ),
    ("GET", "/_inference", None),
    ("GET", "/_inference/spec-missing", None),
    ("GET", "/_inference/sparse_embedding/spec-missing", None),
    ("GET", "/_inference/sparse_embedding/_all", None),
    ("DELETE", "/_inference/spec-missing?dry_run=true&force=false", None),
    ("DELETE", "/_inference/sparse_embedding/spec-missing?dry_run=true&force=false", None),
    ("POST", "/_inference/spec-missing?timeout=30s", {"input": "x"}),
    ("POST", "/_inference/sparse_embedding/spec-missing?timeout=30s", {"input": "x"}),
    ("POST", "/_inference/text_embedding/spec-missing?timeout=30s", {"input": "x"}),
    ("POST", "/_inference/embedding/spec-missing?timeout=30s", {"input": "x"}),
    ("POST", "/_inference/rerank/spec-missing?timeout=30s", {"input": "x", "query": "q"}),
    ("POST", "/_inference/completion/spec-missing?timeout=30s", {"input": "x"}),
    ("POST", "/_inference/completion/spec-missing/_stream?timeout=30s", {"input": "x"}),
    (
        "POST",
        "/_inference/chat_completion/spec-missing/_stream?timeout=30s",
        {"messages": [{"role": "user", "content": "x"}]},
    ),
    ("PUT", "/_inference/spec-missing/_update?timeout=30s", {"task_settings": {}}),
    ("PUT", "/_inference/sparse_embedding/spec-missing/_update?timeout=30s", {"task_settings": {}}),
    ("GET", "/_inference/_region_policy", None),
    ("DELETE", "/_inference/_region_policy", None),
]


@pytest.mark.parametrize(("method", "path", "body"), SPEC_ROUTES)
async def test_every_spec_route_is_served(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code != 405, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["type"] in {"resource_not_found_exception", "status_exception"}, response.text
        if error["type"] == "status_exception":  # PUT with an unknown service: the route parsed it
            assert "Unknown service [nope]" in error["reason"]


# Elasticsearch specification examples (put_elasticsearch 1-3, 5, 6; put_elser 1, 2), verbatim bodies.
_ADAPTIVE = {"enabled": True, "min_number_of_allocations": 1, "max_number_of_allocations": 4}
SPEC_PUT_EXAMPLES = [
    (
        "sparse_embedding",
        {
            "service": "elasticsearch",
            "service_settings": {
                "adaptive_allocations": _ADAPTIVE,
                "num_threads": 1,
                "model_id": ".elser_model_2",
            },
        },
    ),
    (
        "rerank",
        {
            "service": "elasticsearch",
            "service_settings": {
                "model_id": ".rerank-v1",
                "num_threads": 1,
                "adaptive_allocations": _ADAPTIVE,
            },
        },
    ),
    (
        "text_embedding",
        {
            "service": "elasticsearch",
            "service_settings": {
                "num_allocations": 1,
                "num_threads": 1,
                "model_id": ".multilingual-e5-small",
            },
        },
    ),
    (
        "text_embedding",
        {
            "service": "elasticsearch",
            "service_settings": {
                "adaptive_allocations": {
                    **_ADAPTIVE,
                    "min_number_of_allocations": 3,
                    "max_number_of_allocations": 10,
                },
                "num_threads": 1,
                "model_id": ".multilingual-e5-small",
            },
        },
    ),
    (
        "sparse_embedding",
        {"service": "elasticsearch", "service_settings": {"deployment_id": ".elser_model_2"}},
    ),
    ("sparse_embedding", {"service": "elser", "service_settings": {"num_allocations": 1, "num_threads": 1}}),
    (
        "sparse_embedding",
        {
            "service": "elser",
            "service_settings": {
                "adaptive_allocations": {
                    **_ADAPTIVE,
                    "min_number_of_allocations": 3,
                    "max_number_of_allocations": 10,
                },
                "num_threads": 1,
            },
        },
    ),
]


@pytest.mark.parametrize(("task_type", "body"), SPEC_PUT_EXAMPLES)
async def test_specification_put_examples(
    client: httpx.AsyncClient, task_type: str, body: dict[str, Any]
) -> None:
    created = await client.put(f"/_inference/{task_type}/spec-example", json=body)
    try:
        assert created.status_code == 200, created.text
        settings = created.json()["service_settings"]
        for key, value in body["service_settings"].items():
            assert settings[key] == value  # stored as given (accepted, ignored where meaningless here)
        assert "stand-in" in created.headers["warning"]
    finally:
        await client.delete("/_inference/spec-example")
