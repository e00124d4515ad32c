"""Loads local models once per (kind, model, length) and runs each behind its own batching engine.

Loading happens off the event loop (seconds for real models; on CPU on the process's one torch
thread), guarded by one lock per model so concurrent first requests load it once. Sizes and waits come from `Settings`, with defaults per
device: a 2-core CPU wants moderate batches, a GPU wants large ones and two replicas so the
host-side part of one batch's `infer` (padding, copying inputs and results) overlaps the other's
forward pass; decoding already runs on the engine's post-processing thread.
"""

from __future__ import annotations

import asyncio
import gc
from functools import partial
from typing import Any

from sidecar.inference.batching import BatchingEngine, BatchLimits, call_here
from sidecar.inference.models import choose_device
from sidecar.inference.torch_thread import run_on_torch_thread
from sidecar.settings import Settings

CPU_DEFAULTS = {"max_batch_tokens": 8192, "max_batch_requests": 64, "replicas": 1}
GPU_DEFAULTS = {"max_batch_tokens": 65536, "max_batch_requests": 1024, "replicas": 2}


class EnginePool:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engines: dict[tuple[str, str, int], BatchingEngine] = {}
        self._locks: dict[tuple[str, str, int], asyncio.Lock] = {}

    async def engine(self, kind: str, model_id: str, max_length: int | None = None) -> BatchingEngine:
        """The running engine for a `sparse` or `dense` model, loading it on first use."""
        length = max_length or self.settings.max_seq_length
        key = (kind, model_id, length)
        if key in self._engines:
            return self._engines[key]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._engines:
                self._engines[key] = await asyncio.to_thread(
                    build_engine, self.settings, kind, model_id, length
                )
        return self._engines[key]

    async def close(self) -> None:
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            await asyncio.to_thread(engine.close)


def engine_limits(settings: Settings, device: str) -> tuple[BatchLimits, int]:
    """Batch limits and replica count: settings where given, else the device's defaults."""
    defaults = CPU_DEFAULTS if device == "cpu" else GPU_DEFAULTS
    limits = BatchLimits(
        max_batch_tokens=settings.max_batch_tokens or defaults["max_batch_tokens"],
        max_batch_requests=settings.max_batch_requests or defaults["max_batch_requests"],
        max_wait_s=settings.max_wait_ms / 1000.0,
        max_queue=settings.max_queue,
    )
    return limits, defaults["replicas"]


def build_engine(
    settings: Settings, kind: str, model_id: str, length: int, **options: Any
) -> BatchingEngine:
    """Load a `sparse` or `dense` model and start its engine (blocking: call from a thread).
    On CPU the model is loaded, warmed up and run on the process's one torch thread, with the
    runtime `SIDECAR_CPU_RUNTIME` picks (docs/inference.md, "CPU runtime")."""
    device = choose_device(settings.device).device
    from sidecar.inference.services.eland import is_eland_model

    eland = is_eland_model(model_id)  # Eland: TorchScript .pt + vocabulary, torch only
    if kind == "sparse":
        from sidecar.inference.services.eland import ElandSpladeBackend
        from sidecar.inference.services.splade import SpladeBackend

        sparse = ElandSpladeBackend if eland else SpladeBackend
        make: Any = partial(sparse, model_id, device=device, max_length=length, **options)
    else:
        from sidecar.inference.services.dense import DenseBackend
        from sidecar.inference.services.eland import ElandDenseBackend

        dense = ElandDenseBackend if eland else DenseBackend
        length = min(length, _dense_limit(model_id))
        make = partial(dense, model_id, device=device, max_length=length, **options)
    make = partial(make, threads=settings.torch_threads)
    if device == "cpu" and not eland:  # SIDECAR_CPU_RUNTIME: OpenVINO or torch (the fallback)
        from sidecar.inference.services.openvino_runtime import load_cpu_backend

        make = partial(
            load_cpu_backend, settings.cpu_runtime, kind, model_id, make,
            max_length=length, threads=settings.torch_threads, cache_dir=settings.openvino_cache_dir,
        )  # fmt: skip
    # On CPU every model loads on the one torch thread (an OpenVINO export runs torch); torch
    # models also run there, OpenVINO ones on their engine's model thread (own thread pool; the
    # hop cost a single sentence 0.2-1.3 ms).
    call = run_on_torch_thread if device == "cpu" else call_here
    backend = call(make)
    limits, replicas = engine_limits(settings, device)
    runs = call_here if getattr(backend, "runtime", "torch") == "openvino" else call
    engine = BatchingEngine(backend, limits, replicas=replicas, call=runs)
    engine.start(warmup=settings.warmup)
    # A loaded model leaves hundreds of thousands of objects that live as long as the process
    # (modules, the tokenizer's vocabulary): frozen, the collector's full passes skip them instead
    # of pausing every thread to walk them all (0.16 s, measured in the middle of a backfill).
    gc.freeze()
    return engine


def _dense_limit(model_id: str) -> int:
    """The length a sentence-transformers folder declares (all-MiniLM-L6-v2: 256), else 512."""
    from sidecar.inference.models import resolve_model_path
    from sidecar.inference.services.dense import _st_max_length

    try:
        return _st_max_length(resolve_model_path(model_id)) or 512
    except Exception:
        return 512
