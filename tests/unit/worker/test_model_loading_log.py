"""The worker's in-process service loads the pipelines' models before it consumes anything, and
its log says so (a load takes seconds to minutes; readiness stays false meanwhile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.settings import Settings
from sidecar.worker.main import open_local_service


async def test_the_models_load_first_and_the_log_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(registry_path=tmp_path / "r.sqlite3", device="cpu")
    with caplog.at_level("INFO", logger="sidecar.worker.main"):
        service = await open_local_service(settings, [".splade-tiny"])
    try:
        records = [r for r in caplog.records if r.name == "sidecar.worker.main"]
        assert [r.getMessage() for r in records] == [
            "loading the models of endpoints ['.splade-tiny'] ...",
            "models loaded",
        ]
        assert records[1].endpoints == [".splade-tiny"] and records[1].load_s >= 0  # type: ignore[attr-defined]
        assert len(service.pool._engines) == 1  # loaded before any request
    finally:
        await service.close()
