"""Loading a model is the service's start-up, not the request's work: a first request waits for the
load and then has its whole time limit for inference."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sidecar.inference.service import InferenceService
from sidecar.inference.types import SparseEmbedding
from sidecar.settings import load_settings


class _InstantEngine:
    async def encode(self, texts: list[str], *, time_limit: float | None = None) -> list[Any]:
        return [SparseEmbedding({"word": 1.0}, False) for _ in texts]


class _SlowLoadingPool:
    """An engine pool whose one model takes several times the request's time limit to load."""

    def __init__(self, load_s: float) -> None:
        self.load_s = load_s
        self.loads = 0

    async def engine(self, kind: str, model_id: str, max_length: int | None = None) -> _InstantEngine:
        if self.loads == 0:
            await asyncio.sleep(self.load_s)
        self.loads += 1
        return _InstantEngine()

    async def close(self) -> None:
        return None


async def test_a_slow_model_load_does_not_count_against_the_request_timeout(tmp_path: Path) -> None:
    service = InferenceService.from_settings(load_settings(registry_path=tmp_path / "endpoints.sqlite3"))
    service.pool = _SlowLoadingPool(load_s=3.0)  # type: ignore[assignment]
    try:
        output = await service.infer(".splade-tiny", ["hello world"], timeout=1.0)
    finally:
        await service.close()
    assert output.results == [SparseEmbedding({"word": 1.0}, False)]


def test_a_loaded_model_is_frozen_out_of_full_garbage_collections() -> None:
    """A model's long-lived objects are not walked by every full collection: unfrozen, such a pass
    paused all threads for about 0.12 s with SPLADE-tiny loaded."""
    import gc

    from sidecar.inference.executor import build_engine
    from sidecar.settings import Settings

    gc.unfreeze()
    try:
        engine = build_engine(Settings(device="cpu", warmup=False), "sparse", ".splade_tiny", 128)
        try:
            frozen, walked = gc.get_freeze_count(), len(gc.get_objects())
            assert frozen > 50_000  # the model, its tokenizer and everything imported for them
            assert walked < frozen // 10  # what a full collection still walks
        finally:
            engine.close()
    finally:
        gc.unfreeze()
