"""The batching engine around a deterministic fake backend (no model)."""

import asyncio
import threading
from typing import Any

import pytest

from sidecar.errors import InferenceFailedError, OverloadedError
from sidecar.inference.batching import BatchingEngine, BatchLimits, Encoded


class FakeBackend:
    """Tokens = words; result = (word count, truncated). 'boom' fails; a gate can hold a batch.
    Records the threads of the model work (`threads`), of decoding and of tokenizing."""

    name = "fake"

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.decode_threads: set[str] = set()
        self.tokenized: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.in_model = threading.Event()  # set while a batch is inside `infer`

    def tokenize(self, texts: list[str]) -> list[Encoded]:
        self.tokenized.extend(texts)
        return [Encoded([hash(w) for w in t.split()] or [0], truncated=len(t.split()) > 8) for t in texts]

    def warmup(self) -> None:
        self.decode([], self.infer([]))

    def infer(self, batch: list[Encoded]) -> list[Any]:
        self.in_model.set()
        try:
            self.gate.wait(30)  # a safety net only: tests open the gate themselves
        finally:
            self.in_model.clear()
        self.threads.add(threading.current_thread().name)
        self.batches.append([len(e.ids) for e in batch])
        if any(e.ids[0] == hash("boom") for e in batch):
            raise RuntimeError("kaboom")
        return [(len(e.ids), e.truncated) for e in batch]

    def decode(self, batch: list[Encoded], raw: list[Any]) -> list[Any]:
        self.decode_threads.add(threading.current_thread().name)
        return raw


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


# --- the pipeline: the model thread only runs the model -------------------------------------------
async def wait_in_model(backend: FakeBackend) -> None:
    assert await asyncio.to_thread(backend.in_model.wait, 5), "no batch reached the model"


async def test_next_requests_are_tokenized_while_the_model_runs() -> None:
    engine, backend = make(BatchLimits(max_wait_s=0.001))
    backend.gate.clear()
    try:
        first = asyncio.ensure_future(engine.encode(["first"]))
        await wait_in_model(backend)
        long_text = "word " * 1000  # over the in-place limit: the tokenizer thread takes it
        later = [asyncio.ensure_future(engine.encode([t])) for t in ("short one", long_text)]
        for _ in range(3000):  # both get tokenized while "first" still holds the model
            if len(backend.tokenized) == 3:
                break
            await asyncio.sleep(0.01)
        assert sorted(backend.tokenized) == sorted(["first", "short one", long_text])
        assert backend.in_model.is_set() and backend.batches == []
        backend.gate.set()
        assert await first == [(1, False)]
        assert [await t for t in later] == [[(2, False)], [(1000, True)]]
    finally:
        backend.gate.set()
        engine.close()


async def test_a_full_batch_is_cut_ahead_while_the_model_runs() -> None:
    engine, backend = make(BatchLimits(max_batch_requests=2, max_wait_s=0.001))
    backend.gate.clear()
    try:
        first = asyncio.ensure_future(engine.encode(["first"]))
        await wait_in_model(backend)
        second = asyncio.ensure_future(engine.encode(["two words", "two more", "three more words"]))

        def cut_ahead() -> bool:
            with engine._cond:
                return engine._cond.wait_for(lambda: bool(engine._ready), timeout=5)

        assert await asyncio.to_thread(cut_ahead)
        with engine._cond:  # the full pair is ready while the model still runs; the rest waits
            assert [[i.length for i in b] for b in engine._ready] == [[2, 2]]
            assert [i.length for i in engine._pending] == [3]
        assert backend.in_model.is_set() and backend.batches == []
        backend.gate.set()
        await asyncio.gather(first, second)
        assert backend.batches == [[1], [2, 2], [3]]
    finally:
        backend.gate.set()
        engine.close()


async def test_decoding_runs_off_the_model_thread() -> None:
    from sidecar.inference.torch_thread import run_on_torch_thread

    backend = FakeBackend()
    engine = BatchingEngine(backend, BatchLimits(), call=run_on_torch_thread)
    engine.start(warmup=True)
    backend.threads.clear()
    backend.decode_threads.clear()
    try:
        assert await engine.encode(["one two", "three"]) == [(2, False), (1, False)]
        assert {name.split("_")[0] for name in backend.threads} == {"torch-cpu"}
        assert {name.split("_")[0] for name in backend.decode_threads} == {"post-fake"}
    finally:
        engine.close()


async def test_a_failing_decoder_fails_its_batch_with_a_typed_error_and_the_engine_keeps_serving() -> None:
    engine, backend = make(BatchLimits(max_wait_s=0.001))
    real_decode = backend.decode

    def broken(batch: list[Encoded], raw: list[Any]) -> list[Any]:
        raise ValueError("bad output")

    backend.decode = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(InferenceFailedError, match="bad output"):
            await engine.encode(["one", "two three"])
        backend.decode = real_decode  # type: ignore[method-assign]
        assert await engine.encode(["again"]) == [(1, False)]
        assert engine.queue_depth == 0
    finally:
        engine.close()


async def test_each_request_records_tokenize_queue_and_inference_times() -> None:
    from prometheus_client import REGISTRY, generate_latest

    backend = FakeBackend()
    backend.name = "fake-stages"
    engine = BatchingEngine(backend, BatchLimits(max_wait_s=0.001))
    engine.start(warmup=False)
    stages = ("tokenize", "queue", "inference")

    def counts() -> list[float]:
        return [
            REGISTRY.get_sample_value(
                f"sidecar_inference_request_{s}_seconds_count", {"model": "fake-stages"}
            )
            or 0
            for s in stages
        ]

    try:
        before = counts()
        await engine.encode(["one", "two words", "long " * 600])  # three texts, one request
        assert counts() == [n + 1 for n in before]
        with pytest.raises(OverloadedError):
            await engine.encode(["x"] * 5000)  # refused at admission: no stage ran
        assert counts() == [n + 1 for n in before]
        exposed = generate_latest(REGISTRY).decode()
        for stage in stages:
            assert f'sidecar_inference_request_{stage}_seconds_count{{model="fake-stages"}}' in exposed
    finally:
        engine.close()
