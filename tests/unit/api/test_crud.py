"""Managing endpoints over HTTP: create, get, update, delete, and the services listing."""

from __future__ import annotations

import httpx
import pytest
from syrupy.assertion import SnapshotAssertion

from tests.unit.api.conftest import SPARSE_ID

LOCAL_SPLADE = {
    "service": "elasticsearch",
    "service_settings": {"model_id": ".splade_tiny"},
    "chunking_settings": {"strategy": "word", "max_chunk_size": 100, "overlap": 20},
}
REMOTE_DENSE = {
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


async def test_untyped_put_takes_the_task_type_from_the_body(client: httpx.AsyncClient) -> None:
    body = {**REMOTE_DENSE, "task_type": "text_embedding"}
    created = await client.put("/_inference/crud-remote", json=body)
    assert created.status_code == 200, created.text
    assert created.json()["task_type"] == "text_embedding"
    assert "api_key" not in created.json()["service_settings"]
    # 8.17 clients update with POST.
    updated = await client.post(
        "/_inference/text_embedding/crud-remote/_update", json={"service_settings": {"api_key": "rotated"}}
    )
    assert updated.status_code == 200, updated.text
    assert "rotated" not in updated.text
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
