"""In-process clients for the API: the ASGI app with its lifespan, reached through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from sidecar.api.app import create_app
from sidecar.settings import load_settings
from tests.unit.api.fake_service import FakeInferenceService

SPARSE_ID = "fake-sparse-embedding"
DENSE_ID = "fake-text-embedding"
RERANK_ID = "fake-rerank"
COMPLETION_ID = "fake-completion"

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def open_client(tmp_path: Path) -> ClientFactory:
    """`async with open_client(service=..., **settings) as client:` a started app."""

    @asynccontextmanager
    async def factory(service: Any = None, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = load_settings(registry_path=tmp_path / "endpoints.sqlite3", log_json=True, **overrides)
        app = create_app(settings, service=service)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
                client.app = app  # type: ignore[attr-defined]
                yield client

    return factory


@pytest.fixture
async def fake() -> FakeInferenceService:
    return FakeInferenceService()


@pytest.fixture
async def client(open_client: ClientFactory, fake: FakeInferenceService) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(service=fake) as started:
        yield started


def rounded(value: Any, digits: int = 3) -> Any:
    """Floats rounded so snapshots do not depend on the last bits of a CPU's arithmetic."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    return value
