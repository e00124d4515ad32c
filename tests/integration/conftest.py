"""Fixtures shared by the worker integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.worker_harness import Engine


@pytest.fixture(params=["opensearch", "elasticsearch"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str, Engine]]:
    """(engine name, URL, client) for each real engine in turn; a module may define its own."""
    url = str(request.getfixturevalue("opensearch_url" if request.param == "opensearch" else "es_url"))
    client = Engine(url)
    yield str(request.param), url, client
    await client.close()
