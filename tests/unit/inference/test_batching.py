"""The batching engine around a deterministic fake backend (no model)."""

import asyncio
import threading
from typing import Any

import pytest

from sidecar.errors import InferenceFailedError, OverloadedError
from sidecar.inference.batching import BatchingEngine, BatchLimits, Encoded


class FakeBackend:
    """Tokens = words; result = the text's words reversed. 'boom' fails; a gate can hold a batch."""

    name = "fake"

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()

    def tokenize(self, texts: list[str]) -> list[Encoded]:
        return [Encoded([hash(w) for w in t.split()] or [0], truncated=len(t.split()) > 8) for t in texts]

    def warmup(self) -> None:
        self.forward(self.tokenize(["warm"]))

    def forward(self, batch: list[Encoded]) -> list[Any]:
        self.gate.wait(5)
        self.threads.add(threading.current_thread().name)
        self.batches.append([len(e.ids) for e in batch])
        if any(e.ids[0] == hash("boom") for e in batch):
            raise RuntimeError("kaboom")
        return [(len(e.ids), e.truncated) for e in batch]


def make(limits: BatchLimits) -> tuple[BatchingEngine, FakeBackend]:
    backend = FakeBackend()
    engine = BatchingEngine(backend, limits)
    engine.start(warmup=True)
    backend.batches.clear()
    backend.threads.clear()
    return engine, backend


async def test_concurrent_callers_are_coalesced_off_the_event_loop() -> None:
    engine, backend = make(BatchLimits(max_batch_tokens=1000, max_batch_requests=64, max_wait_s=0.02))
    try:
        results = await asyncio.gather(*(engine.encode([f"text {i}"]) for i in range(40)))
        assert results == [[(2, False)]] * 40
        assert max(len(b) for b in backend.batches) > 1
        assert backend.threads == {"model-fake-0"}
    finally:
        engine.close()


async def test_batches_respect_token_budget_and_count_and_sort_by_length() -> None:
    engine, backend = make(BatchLimits(max_batch_tokens=12, max_batch_requests=3, max_wait_s=0.05))
    backend.gate.clear()  # hold the model so everything queues up
    try:
        texts = ["a " * n for n in (1, 6, 2, 6, 1, 2)]
        task = asyncio.ensure_future(engine.encode(texts))
        await asyncio.sleep(0.1)
        backend.gate.set()
        out = await task
        assert [n for n, _ in out] == [1, 6, 2, 6, 1, 2]  # input order preserved
        for batch in backend.batches:
            assert len(batch) <= 3 and len(batch) * max(batch) <= 12
        # Built around the oldest text from its length neighbours: little padding.
        assert backend.batches == [[1, 1, 2], [6, 6], [2]]
    finally:
        engine.close()


async def test_truncation_flag_comes_from_the_tokenizer() -> None:
    engine, _ = make(BatchLimits())
    try:
        assert await engine.encode(["one two", "w " * 9]) == [(2, False), (9, True)]
    finally:
        engine.close()


async def test_full_queue_raises_overloaded() -> None:
    engine, backend = make(BatchLimits(max_queue=4, max_wait_s=0.001))
    backend.gate.clear()
    try:
        first = asyncio.ensure_future(engine.encode(["a", "b", "c"]))
        await asyncio.sleep(0.05)
        with pytest.raises(OverloadedError, match=r"queue .* is full"):
            await engine.encode(["d", "e"])
        backend.gate.set()
        assert len(await first) == 3
        assert len(await engine.encode(["d", "e"])) == 2  # capacity is released afterwards
    finally:
        engine.close()


async def test_one_failing_text_does_not_fail_its_batch_and_engine_stays_healthy() -> None:
    engine, backend = make(BatchLimits(max_wait_s=0.05))
    backend.gate.clear()
    try:
        good = asyncio.ensure_future(engine.encode(["fine one", "fine two three"]))
        bad = asyncio.ensure_future(engine.encode(["boom here"]))
        await asyncio.sleep(0.05)
        backend.gate.set()
        assert await good == [(2, False), (3, False)]
        with pytest.raises(InferenceFailedError, match="kaboom") as err:
            await bad
        assert isinstance(err.value.__cause__, RuntimeError)
        assert await engine.encode(["still alive"]) == [(2, False)]
    finally:
        engine.close()


async def test_cancelled_callers_are_dropped_before_the_model() -> None:
    engine, backend = make(BatchLimits(max_wait_s=0.001, max_batch_requests=1))
    backend.gate.clear()
    try:
        blocker = asyncio.ensure_future(engine.encode(["x"]))
        await asyncio.sleep(0.05)  # the model thread now holds "x"
        doomed = asyncio.ensure_future(engine.encode(["gone " * 5]))
        await asyncio.sleep(0.05)
        doomed.cancel()
        await asyncio.sleep(0.01)
        backend.gate.set()
        await blocker
        assert await engine.encode(["after"]) == [(1, False)]
        assert [5] not in backend.batches
        assert engine.queue_depth == 0
    finally:
        engine.close()


async def test_timeout_is_typed_and_close_fails_pending_callers() -> None:
    from sidecar.errors import TimeoutError_

    engine, backend = make(BatchLimits(max_wait_s=0.001))
    backend.gate.clear()
    try:
        with pytest.raises(TimeoutError_):
            await engine.encode(["slow"], time_limit=0.05)
    finally:
        backend.gate.set()
        engine.close()
    with pytest.raises(OverloadedError, match="shutting down"):
        await engine.encode(["late"])


async def test_lone_caller_is_not_held_waiting_for_company() -> None:
    # A 2 s wait would only ever fill a batch under concurrent traffic; serial callers skip it.
    engine, backend = make(BatchLimits(max_wait_s=2.0))
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(3):
            assert await engine.encode([f"serial call {i}"]) == [(3, False)]
        assert loop.time() - start < 1.0
        assert backend.batches == [[3], [3], [3]]
    finally:
        engine.close()


async def test_concurrent_traffic_waits_to_fill_batches() -> None:
    engine, backend = make(BatchLimits(max_wait_s=0.2, max_batch_requests=8))
    try:
        backend.gate.clear()
        held = asyncio.ensure_future(engine.encode(["held"]))
        await asyncio.sleep(0.05)  # the model thread holds "held"; the pair queues up meanwhile
        pair = [asyncio.ensure_future(engine.encode(["pair of words"])) for _ in range(2)]
        await asyncio.sleep(0.01)
        backend.gate.set()
        await asyncio.gather(held, *pair)
        assert backend.batches == [[1], [3, 3]]
        backend.batches.clear()
        # Traffic was concurrent a batch ago: later arrivals within max_wait join one batch.
        first = asyncio.ensure_future(engine.encode(["early text"]))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(engine.encode(["late text"])) for _ in range(3)]
        await asyncio.gather(first, *rest)
        assert backend.batches == [[2, 2, 2, 2]]
    finally:
        engine.close()


async def test_model_work_runs_on_the_thread_call_chooses() -> None:
    from sidecar.inference.torch_thread import run_on_torch_thread

    backend = FakeBackend()
    engine = BatchingEngine(backend, BatchLimits(), call=run_on_torch_thread)
    engine.start(warmup=True)
    try:
        assert await engine.encode(["one two"]) == [(2, False)]
        assert {name.split("_")[0] for name in backend.threads} == {"torch-cpu"}
    finally:
        engine.close()


def test_mmap_threshold_is_pinned_unless_the_operator_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    from sidecar.inference.torch_thread import fix_mmap_threshold

    assert fix_mmap_threshold() is True  # glibc (Debian) here
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert fix_mmap_threshold() is False
