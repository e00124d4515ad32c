"""In-process clients for the API: the ASGI app with its lifespan, reached through httpx.

`client` is one app with the real inference service and the packaged models, shared by the session
(models load once). `open_client(...)` starts a separate app for tests that need other settings; it
loads no model up front. `fake_client` uses the in-test service where a failure must be provoked.
"""

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

SPARSE_ID = ".splade-tiny"
DENSE_ID = ".minilm-l6"
RERANK_ID = ".minilm-l6-rerank"
# Served by the in-test service only: the packaged models offer no completion task.
COMPLETION_ID = "fake-completion"

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def _started(
    registry: Path, service: Any, overrides: dict[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(registry_path=registry, **overrides)
    app = create_app(settings, service=service)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture(scope="session")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The real service with both packaged models loaded, for the whole session."""
    registry = tmp_path_factory.mktemp("api") / "endpoints.sqlite3"
    async with _started(registry, None, {}) as started:
        yield started


@pytest.fixture
def open_client(tmp_path: Path) -> ClientFactory:
    """`async with open_client(service=..., **settings) as client:` a separately started app."""

    def factory(service: Any = None, **overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        overrides.setdefault("preload_endpoints", [])
        return _started(tmp_path / "endpoints.sqlite3", service, overrides)

    return factory


@pytest.fixture
def fake() -> FakeInferenceService:
    return FakeInferenceService()


@pytest.fixture
async def fake_client(
    open_client: ClientFactory, fake: FakeInferenceService
) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(service=fake) as started:
        yield started


def rounded(value: Any, digits: int = 2) -> Any:
    """Floats rounded so snapshots do not depend on the last bits of a CPU's arithmetic."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    return value


def top_tokens(embedding: dict[str, float], count: int = 3) -> list[str]:
    """The heaviest tokens of a sparse embedding, heaviest first: a stable summary for snapshots.

    Weights move in the last digits with batch composition (padding changes the arithmetic), so
    snapshots hold only the leading tokens, whose margins are far larger than that noise.
    """
    return [token for token, _ in sorted(embedding.items(), key=lambda kv: kv[1], reverse=True)[:count]]
