"""The worker's remote-inference client against this project's own `_inference` API (in-process ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sidecar.api.app import create_app
from sidecar.errors import NotFoundError, OverloadedError
from sidecar.inference.api_client import RemoteInference
from sidecar.inference.types import DenseEmbedding, SparseEmbedding, TaskType
from sidecar.pipelines.schema import InferenceConfig
from sidecar.settings import load_settings
from tests.unit.api.fake_service import FakeInferenceService

SPARSE, DENSE = "fake-sparse-embedding", "fake-text-embedding"


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[tuple[RemoteInference, FakeInferenceService]]:
    service = FakeInferenceService()
    settings = load_settings(registry_path=tmp_path / "endpoints.sqlite3", preload_endpoints=[])
    app = create_app(settings, service=service)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sidecar")
        remote = RemoteInference("http://sidecar", client=client)
        yield remote, service
        await remote.close()


async def test_task_types_and_sparse_and_dense_results(
    remote: tuple[RemoteInference, FakeInferenceService],
) -> None:
    client, service = remote
    assert await client.task_type(SPARSE) is TaskType.SPARSE_EMBEDDING
    assert await client.task_type(DENSE) is TaskType.TEXT_EMBEDDING
    assert await client.task_type("missing") is None

    sparse = await client.infer(SPARSE, ["a b", "c"])
    expected = await service.infer(SPARSE, ["a b", "c"])
    assert sparse.task_type is TaskType.SPARSE_EMBEDDING
    assert all(isinstance(r, SparseEmbedding) for r in sparse.results)
    for got, want in zip(sparse.results, expected.results, strict=True):
        assert got.embedding == pytest.approx(want.embedding)

    dense = await client.infer(DENSE, ["x"])
    assert isinstance(dense.results[0], DenseEmbedding)
    assert await client.dimensions(DENSE) == len(dense.results[0].embedding)


async def test_errors_map_to_typed_errors(remote: tuple[RemoteInference, FakeInferenceService]) -> None:
    client, service = remote
    with pytest.raises(NotFoundError):
        await client.infer("missing", ["x"], task_type=TaskType.SPARSE_EMBEDDING)
    service.fail_with = OverloadedError("queue full")
    with pytest.raises(OverloadedError) as caught:
        await client.infer(SPARSE, ["x"])
    assert caught.value.retriable


async def test_unreachable_service_is_retriable() -> None:
    client = InferenceConfig(url="http://127.0.0.1:9", timeout_s=2).open_remote()
    try:
        with pytest.raises(Exception) as caught:
            await client.infer(SPARSE, ["x"], task_type=TaskType.SPARSE_EMBEDDING)
        assert getattr(caught.value, "retriable", False) is True
    finally:
        await client.close()
