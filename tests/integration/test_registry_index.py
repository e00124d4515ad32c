"""The endpoint registry kept in an index of a real engine (OpenSearch 2.19 and the ES-wire server).

Each test uses its own index (deleted afterwards); two `EndpointRegistry` objects on one index play
two replicas of the API.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from sidecar.errors import (
    AlreadyExistsError,
    NotFoundError,
    StatusError,
    UpstreamUnavailableError,
)
from sidecar.inference.registry import EndpointRegistry
from sidecar.inference.registry_index import IndexEndpointStore
from sidecar.inference.service import InferenceService
from sidecar.inference.types import SparseEmbedding, TaskType
from sidecar.settings import Settings

pytestmark = pytest.mark.integration

OPENAI = {
    "service": "openai",
    "service_settings": {"api_key": "sk-secret-123", "model_id": "text-embedding-3-small"},
}
COHERE_RERANK = {"service": "cohere", "service_settings": {"api_key": "co-secret-456"}}
MakeRegistry = Callable[..., EndpointRegistry]

# This project's built-in endpoints and Elasticsearch's preconfigured ones, as listed (sorted by id).
BUILT_IN = [
    ".elser-2-elasticsearch",
    ".minilm-l6",
    ".minilm-l6-rerank",
    ".multilingual-e5-small-elasticsearch",
    ".rerank-v1-elasticsearch",
    ".splade-tiny",
]
DENSE_BUILT_IN = [".minilm-l6", ".multilingual-e5-small-elasticsearch"]


def openai() -> dict[str, Any]:
    return {**OPENAI, "service_settings": dict(OPENAI["service_settings"])}


@pytest.fixture(params=["opensearch_url", "es_url"])
def engine_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


@pytest.fixture
def index(engine_url: str) -> Iterator[str]:
    name = f".test-registry-{uuid.uuid4().hex[:12]}"
    yield name
    deleted = httpx.delete(f"{engine_url}/{name}", timeout=30)
    assert deleted.status_code in (200, 404), deleted.text  # 404: the test never reached the engine


@pytest.fixture
def make_registry(engine_url: str, index: str) -> Iterator[MakeRegistry]:
    made: list[EndpointRegistry] = []

    def make(cache_s: float = 1.0, url: str | None = None) -> EndpointRegistry:
        registry = EndpointRegistry(store=IndexEndpointStore(url or engine_url, index, cache_s=cache_s))
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.close()


def index_exists(engine_url: str, index: str) -> bool:
    return httpx.head(f"{engine_url}/{index}", timeout=10).status_code == 200


def test_missing_index_is_created_with_its_mapping_even_by_two_replicas_at_once(
    engine_url: str, index: str, make_registry: MakeRegistry
) -> None:
    assert not index_exists(engine_url, index)
    first, second = make_registry(), make_registry()
    barrier = threading.Barrier(2)

    def start(registry: EndpointRegistry) -> list[str]:
        barrier.wait()
        return [e.inference_id for e in registry.list()]

    with ThreadPoolExecutor(2) as pool:
        listed = list(pool.map(start, [first, second]))
    assert listed == [BUILT_IN] * 2
    assert index_exists(engine_url, index)
    mapping = httpx.get(f"{engine_url}/{index}/_mapping", timeout=10).json()[index]["mappings"]
    assert str(mapping["dynamic"]).lower() == "false"
    assert mapping["properties"]["kind"] == {"type": "keyword"}
    assert mapping["properties"]["secrets"] == {"type": "object", "enabled": False}
    first.ping()  # the index exists now: nothing to create, no error


def test_elasticsearch_semantics_over_the_index(
    engine_url: str, index: str, make_registry: MakeRegistry
) -> None:
    registry = make_registry()
    created = registry.create("my-openai", "text_embedding", openai())
    assert created.public_dict() == {
        "inference_id": "my-openai",
        "task_type": "text_embedding",
        "service": "openai",
        "service_settings": {"model_id": "text-embedding-3-small"},
        "task_settings": {},
        "chunking_settings": {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1},
    }
    registry.create("my-rerank", None, {**COHERE_RERANK, "task_type": "rerank"})
    with pytest.raises(AlreadyExistsError, match=r"^Inference endpoint \[my-openai\] already exists$"):
        registry.create("my-openai", "text_embedding", openai())
    fresh = make_registry()  # nothing cached: everything below comes from the index
    got = fresh.get("my-openai", "text_embedding")
    assert got.secrets == {"api_key": "sk-secret-123"}
    assert got.public_dict() == created.public_dict()
    assert [e.inference_id for e in fresh.list()] == [*BUILT_IN, "my-openai", "my-rerank"]
    assert [e.inference_id for e in fresh.list("rerank")] == [
        ".minilm-l6-rerank",
        ".rerank-v1-elasticsearch",
        "my-rerank",
    ]
    assert all("secret" not in str(e.public_dict()) for e in fresh.list())
    with pytest.raises(
        StatusError, match=r"requested type \[rerank\] does not match the model type \[text_embedding\]"
    ):
        fresh.get("my-openai", "rerank")
    with pytest.raises(NotFoundError, match=r"^Inference endpoint not found \[missing\]$"):
        fresh.get("missing")
    with pytest.raises(StatusError, match=r"Unknown task_type \[nope\]"):
        fresh.list("nope")

    updated = fresh.update(
        "my-openai", None, {"service_settings": {"dimensions": 256}, "task_settings": {"user": "me"}}
    )
    assert updated.service_settings == {"model_id": "text-embedding-3-small", "dimensions": 256}
    assert updated.secrets == {"api_key": "sk-secret-123"}
    with pytest.raises(
        StatusError, match=r"cannot be updated, remove these fields and try again \{service=cohere\}"
    ):
        fresh.update("my-openai", None, {"service": "cohere"})
    with pytest.raises(StatusError, match=r"^Task type must match the task type of the existing endpoint$"):
        fresh.update("my-openai", "rerank", {"task_settings": {"user": "x"}})
    with pytest.raises(StatusError, match="reserved"):
        fresh.update(".minilm-l6", None, {"task_settings": {}})
    assert make_registry().get("my-openai").task_settings == {"user": "me"}

    # Stored in the document (so every replica can call the provider), never in the public object.
    source = httpx.get(f"{engine_url}/{index}/_doc/my-openai", timeout=10).json()["_source"]
    assert source["secrets"] == {"api_key": "sk-secret-123"}
    assert source["config"]["service_settings"] == {"model_id": "text-embedding-3-small", "dimensions": 256}
    assert "api_key" not in str(fresh.get("my-openai").public_dict())


def test_delete_refuses_an_endpoint_a_pipeline_of_another_replica_uses(make_registry: MakeRegistry) -> None:
    worker, api = make_registry(), make_registry()
    api.create("used", "text_embedding", openai())
    worker.set_pipeline_usage("orders", ["used", ".splade-tiny"])
    worker.set_pipeline_usage("returns", ["used"])
    assert api.delete("used", dry_run=True) == {
        "acknowledged": False,
        "pipelines": ["orders", "returns"],
        "indexes": [],
    }
    with pytest.raises(StatusError, match=r"referenced by pipelines: \['orders', 'returns'\]"):
        api.delete("used")
    worker.set_pipeline_usage("returns", [])
    assert api.pipelines_using("used") == ["orders"]
    assert api.delete("used", force=True) == {"acknowledged": True, "pipelines": ["orders"], "indexes": []}
    with pytest.raises(NotFoundError):
        api.get("used")
    with pytest.raises(NotFoundError):
        worker.get("used")
    with pytest.raises(StatusError, match="reserved"):
        api.delete(".splade-tiny")


def test_two_replicas_see_each_others_writes(make_registry: MakeRegistry) -> None:
    a, b = make_registry(cache_s=0.3), make_registry(cache_s=0.3)
    assert b.list("text_embedding")[-1].inference_id == DENSE_BUILT_IN[-1]  # b has a fresh cache now
    a.create("shared", "text_embedding", openai())
    assert b.get("shared").service == "openai"  # unknown id: looked up at once, not after the TTL

    a.update("shared", None, {"task_settings": {"user": "alice"}})
    time.sleep(0.35)
    assert b.get("shared").task_settings == {"user": "alice"}
    assert [e.inference_id for e in b.list("text_embedding")] == [*DENSE_BUILT_IN, "shared"]

    b.delete("shared")
    with pytest.raises(NotFoundError):
        b.get("shared")  # its own write: no wait
    time.sleep(0.35)
    with pytest.raises(NotFoundError):
        a.get("shared")
    assert [e.inference_id for e in a.list("text_embedding")] == DENSE_BUILT_IN


def test_reads_are_served_from_the_cache_within_the_ttl(make_registry: MakeRegistry) -> None:
    writer, reader = make_registry(), make_registry(cache_s=60.0)
    writer.create("cached", "text_embedding", openai())
    assert reader.get("cached").task_settings == {}
    store = reader.store
    assert isinstance(store, IndexEndpointStore)
    calls: list[str] = []
    send = store._send

    def counting_send(method: str, path: str, *args: Any, **kwargs: Any) -> httpx.Response:
        calls.append(f"{method} {path}")
        return send(method, path, *args, **kwargs)

    store._send = counting_send  # type: ignore[method-assign]
    for _ in range(200):
        reader.get("cached")
        reader.list()
    assert calls == []
    writer.update("cached", None, {"task_settings": {"user": "later"}})
    assert reader.get("cached").task_settings == {}  # another replica's update: after the TTL
    reader.update("cached", None, {"task_settings": {"user": "mine"}})
    assert reader.get("cached").task_settings == {"user": "mine"}  # own write: at once


def test_cached_endpoints_keep_serving_while_the_index_is_unavailable(
    engine_url: str, index: str, make_registry: MakeRegistry
) -> None:
    registry = make_registry(cache_s=0.2)
    registry.create("kept", "text_embedding", openai())
    assert registry.get("kept").service == "openai"
    httpx.post(f"{engine_url}/{index}/_close", timeout=30).raise_for_status()
    time.sleep(0.25)  # the cache is stale: the next read tries the index and fails
    assert registry.get("kept").secrets == {"api_key": "sk-secret-123"}
    assert "kept" in [e.inference_id for e in registry.list()]
    with pytest.raises(UpstreamUnavailableError, match=r"index_closed_exception"):
        registry.get("never-created")  # not cached: must ask the index
    with pytest.raises(UpstreamUnavailableError, match=rf"index \[{index}\] .* index_closed_exception"):
        registry.ping()
    with pytest.raises(UpstreamUnavailableError):
        registry.update("kept", None, {"task_settings": {"user": "x"}})
    with pytest.raises(UpstreamUnavailableError):
        make_registry().get("kept")  # a new process has nothing cached to fall back on
    httpx.post(f"{engine_url}/{index}/_open", timeout=30).raise_for_status()
    assert "kept" in [e.inference_id for e in make_registry().list()]  # first use waits for the shard


def race_create(registry: EndpointRegistry, inference_id: str, user: str, barrier: threading.Barrier) -> str:
    body = {**openai(), "task_settings": {"user": user}}
    barrier.wait()
    try:
        registry.create(inference_id, "text_embedding", body)
    except AlreadyExistsError:
        return "lost"
    return user


def test_concurrent_creates_of_one_id_let_exactly_one_win(make_registry: MakeRegistry) -> None:
    a, b = make_registry(), make_registry()
    for round_ in range(4):
        inference_id, barrier = f"race-{round_}", threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(race_create, r, inference_id, u, barrier) for r, u in ((a, "a"), (b, "b"))]
            outcomes = [f.result() for f in futures]
        assert sorted(outcomes) in (["a", "lost"], ["b", "lost"])
        winner = next(o for o in outcomes if o != "lost")
        assert make_registry().get(inference_id).task_settings == {"user": winner}


def test_concurrent_updates_of_two_replicas_are_both_kept(make_registry: MakeRegistry) -> None:
    a, b = make_registry(), make_registry()
    a.create("busy", "text_embedding", openai())
    barrier = threading.Barrier(2)
    rounds = 4

    def dimensions(registry: EndpointRegistry) -> None:
        barrier.wait()
        for i in range(1, rounds + 1):
            registry.update("busy", None, {"service_settings": {"dimensions": i}})

    def user(registry: EndpointRegistry) -> None:
        barrier.wait()
        for i in range(1, rounds + 1):
            registry.update("busy", None, {"task_settings": {"user": f"u{i}"}})

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(dimensions, a), pool.submit(user, b)]:
            future.result()
    final = make_registry().get("busy")
    assert final.service_settings["dimensions"] == rounds
    assert final.task_settings == {"user": f"u{rounds}"}
    assert final.secrets == {"api_key": "sk-secret-123"}


def test_unreachable_engine_gives_a_typed_error_naming_url_and_index(make_registry: MakeRegistry) -> None:
    down = make_registry(url="http://admin:hunter2@127.0.0.1:9")
    assert down.get(".splade-tiny").task_type == TaskType.SPARSE_EMBEDDING  # built-ins need no store
    for call in (
        lambda: down.get("anything"),
        lambda: down.list(),
        lambda: down.create("new", "text_embedding", openai()),
        down.ping,
    ):
        with pytest.raises(UpstreamUnavailableError) as caught:
            call()
        message = str(caught.value)
        assert "http://127.0.0.1:9" in message and "index [.test-registry-" in message
        assert "hunter2" not in message and "sk-secret" not in message
        assert caught.value.status == 503 and caught.value.retriable


async def test_service_from_settings_serves_an_endpoint_another_replica_created(
    engine_url: str, index: str, make_registry: MakeRegistry
) -> None:
    make_registry().create(
        "shared-splade",
        "sparse_embedding",
        {"service": "elasticsearch", "service_settings": {"model_id": ".splade_tiny"}},
    )
    service = InferenceService.from_settings(
        Settings(registry_index=index, registry_engine_url=engine_url, device="cpu", warmup=False)
    )
    try:
        output = await service.infer("shared-splade", ["protein folding in cells"])
    finally:
        await service.close()
    result = output.results[0]
    assert output.task_type == TaskType.SPARSE_EMBEDDING
    assert isinstance(result, SparseEmbedding) and result.embedding
    assert all(w > 0 for w in result.embedding.values())
