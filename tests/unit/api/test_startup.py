"""`serve` listens while the preloaded models load: readiness answers 503 until they are loaded, and
a failed start stays not ready with the cause's type."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from tests.unit.api.conftest import ClientFactory
from tests.unit.api.fake_service import FakeInferenceService


class _SlowStart(FakeInferenceService):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.loading: list[str] = []
        self.fail = fail

    async def start(self, preload: Iterable[str] = ()) -> None:
        self.loading = list(preload)
        await self.release.wait()
        if self.fail:
            raise FileNotFoundError("no such model")


async def _ready(client: object) -> tuple[int, dict[str, object]]:
    response = await client.get("/_sidecar/health/ready")  # type: ignore[attr-defined]
    return response.status_code, response.json()


async def test_not_ready_until_the_preloaded_models_are_loaded(open_client: ClientFactory) -> None:
    service = _SlowStart()
    async with open_client(service=service, preload_endpoints=["fake-sparse"]) as client:
        assert (await client.get("/_sidecar/health/live")).status_code == 200
        assert await _ready(client) == (503, {"status": "starting"})
        for _ in range(100):  # the start task begins on a later turn of the event loop
            if service.loading:
                break
            await asyncio.sleep(0)
        assert service.loading == ["fake-sparse"]
        assert await _ready(client) == (503, {"status": "starting"})
        service.release.set()
        for _ in range(100):  # the start task runs on the next turns of the event loop
            if (await _ready(client))[0] == 200:
                break
            await asyncio.sleep(0)
        assert (await _ready(client))[1]["status"] == "ready"


async def test_a_failed_start_stays_not_ready_and_says_why(open_client: ClientFactory) -> None:
    service = _SlowStart(fail=True)
    service.release.set()
    async with open_client(service=service, preload_endpoints=["fake-sparse"]) as client:
        for _ in range(100):
            if (await _ready(client))[1]["status"] != "starting":
                break
            await asyncio.sleep(0)
        assert await _ready(client) == (503, {"status": "start_failed", "reason": "FileNotFoundError"})
