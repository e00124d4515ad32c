"""Token-budget dynamic batching: many concurrent callers, few large, well-packed model batches.

    caller --encode(texts)--> tokenizer thread --items--> pending queue --batch--> model thread(s)
                                                                                    |
    caller <----- futures resolved on the caller's event loop <---------------------+

- Texts are tokenized on a dedicated tokenizer thread while the model thread runs the previous
  batch, so tokenization overlaps the forward pass and never blocks the event loop. Small requests
  (a few sentences: tens of microseconds of Rust) are tokenized in place: a thread hop costs more.
- A batch is cut by a token budget (padded tokens = texts x longest) and a text count. It is
  built around the oldest waiting text (no starvation) from its neighbours in length order, so
  padding stays small under load.
- The model thread waits at most `max_wait_s` for a batch to fill, and only while traffic is
  concurrent (the last batch held several texts, or more texts are being tokenized): a lone
  caller's text runs at once instead of waiting for company that is not coming.
- The queue is bounded by text count: past it `encode` raises `OverloadedError` (HTTP 429).
- Texts whose caller went away (cancelled future) are dropped before they reach the model.
- A failing batch is split in halves until the failing text is isolated, so one bad text never
  fails the others, and the model thread keeps serving.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from sidecar.errors import InferenceFailedError, OverloadedError, SidecarError, TimeoutError_
from sidecar.observability import metrics


@dataclass(frozen=True)
class Encoded:
    """One tokenized text: model input ids (already cut to the model's limit)."""

    ids: Sequence[int]
    truncated: bool = False


class Backend(Protocol):
    """What the engine needs from a model: tokenize, run one batch, warm up."""

    name: str

    def tokenize(self, texts: list[str]) -> list[Encoded]: ...

    def forward(self, batch: list[Encoded]) -> list[Any]: ...

    def warmup(self) -> None: ...


# Requests up to this many characters are tokenized on the caller's event loop (well under 1 ms).
INLINE_TOKENIZE_CHARS = 2048


@dataclass(frozen=True)
class BatchLimits:
    max_batch_tokens: int = 8192
    max_batch_requests: int = 64
    max_wait_s: float = 0.002
    max_queue: int = 4096


@dataclass(eq=False)
class _Item:
    encoded: Encoded
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    seq: int
    enqueued: float = field(default_factory=time.perf_counter)

    @property
    def length(self) -> int:
        return len(self.encoded.ids)


def call_here(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


class BatchingEngine:
    """`call` runs the backend's model work (warm-up and forward); the default runs it on the
    model thread itself, CPU engines pass `run_on_torch_thread` to share one OpenMP team."""

    def __init__(
        self,
        backend: Backend,
        limits: BatchLimits,
        *,
        replicas: int = 1,
        call: Callable[..., Any] = call_here,
    ) -> None:
        self.backend = backend
        self._call = call
        self.limits = limits
        self.replicas = max(1, replicas)
        self._cond = threading.Condition()
        self._pending: list[_Item] = []
        self._reserved = 0  # texts admitted (tokenizing, queued or running), guarded by _cond
        self._running = 0  # texts inside a forward pass, guarded by _cond
        self._last_batch = 0  # size of the batch cut last: >1 means callers arrive concurrently
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._tokenizer = ThreadPoolExecutor(1, thread_name_prefix=f"tok-{backend.name}")
        self._closed = False
        self._label = backend.name

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self, *, warmup: bool = True) -> None:
        """Warm up (synchronously: call from a worker thread) and start the model threads."""
        if warmup:
            self._call(self.backend.warmup)
        for i in range(self.replicas):
            thread = threading.Thread(target=self._run, name=f"model-{self._label}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop the model threads; texts still queued fail with a retriable error."""
        with self._cond:
            self._closed = True
            leftovers, self._pending = self._pending, []
            self._cond.notify_all()
        for item in leftovers:
            _resolve(item, error=OverloadedError("inference engine is shutting down"))
        for thread in self._threads:
            thread.join(timeout=10)
        self._tokenizer.shutdown(wait=False, cancel_futures=True)

    @property
    def queue_depth(self) -> int:
        return self._reserved

    # --- caller side -------------------------------------------------------------------------------
    async def encode(self, texts: list[str], *, time_limit: float | None = None) -> list[Any]:
        """Run `texts` through the model; results in input order."""
        if not texts:
            return []
        self._admit(len(texts))
        admitted = len(texts)
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = []
        try:
            if sum(map(len, texts)) <= INLINE_TOKENIZE_CHARS:
                encoded = self.backend.tokenize(texts)
            else:
                encoded = await loop.run_in_executor(self._tokenizer, self.backend.tokenize, texts)
            futures = [loop.create_future() for _ in encoded]
            items = [_Item(e, f, loop, next(self._seq)) for e, f in zip(encoded, futures, strict=True)]
            with self._cond:
                if self._closed:
                    raise OverloadedError("inference engine is shutting down")
                self._pending.extend(items)
                admitted = 0  # from now on the model thread releases each item
                self._cond.notify()
            gathered = asyncio.gather(*futures)
            return await (asyncio.wait_for(gathered, time_limit) if time_limit else gathered)
        except TimeoutError as exc:
            raise TimeoutError_(f"inference did not finish within [{time_limit}s]") from exc
        except SidecarError:
            raise
        except Exception as exc:  # tokenizer crash: keep the cause
            raise InferenceFailedError(f"tokenization failed: {exc}") from exc
        finally:
            for fut in futures:  # caller gone or failed: let the model thread drop the rest
                if not fut.done():
                    fut.cancel()
            if admitted:
                self._release(admitted)

    def _admit(self, count: int) -> None:
        with self._cond:
            if self._closed:
                raise OverloadedError("inference engine is shutting down")
            if self._reserved + count > self.limits.max_queue:
                raise OverloadedError(
                    f"inference queue for [{self._label}] is full "
                    f"({self._reserved} queued, limit {self.limits.max_queue})"
                )
            self._reserved += count
        metrics.INFERENCE_QUEUE_DEPTH.labels(self._label).set(self._reserved)

    def _release(self, count: int, *, ran: bool = False) -> None:
        with self._cond:
            self._reserved -= count
            if ran:
                self._running -= count
        metrics.INFERENCE_QUEUE_DEPTH.labels(self._label).set(self._reserved)

    # --- model thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            now = time.perf_counter()
            for item in batch:
                metrics.INFERENCE_QUEUE_SECONDS.labels(self._label).observe(now - item.enqueued)
            metrics.INFERENCE_BATCH_SIZE.labels(self._label).observe(len(batch))
            metrics.INFERENCE_BATCH_TOKENS.labels(self._label).observe(
                len(batch) * max(i.length for i in batch)
            )
            self._run_batch(batch)
            metrics.INFERENCE_BATCH_SECONDS.labels(self._label).observe(time.perf_counter() - now)

    def _next_batch(self) -> list[_Item] | None:
        limits = self.limits
        with self._cond:
            while True:
                if self._closed:
                    return None
                self._drop_cancelled()
                if self._pending:
                    oldest = self._pending[0]
                    waited = time.perf_counter() - oldest.enqueued
                    full = (
                        len(self._pending) >= limits.max_batch_requests
                        or sum(i.length for i in self._pending) >= limits.max_batch_tokens
                    )
                    if full or waited >= limits.max_wait_s or not self._company_expected():
                        return self._take_batch()
                    self._cond.wait(limits.max_wait_s - waited)
                else:
                    self._cond.wait()

    def _company_expected(self) -> bool:
        """Whether waiting can fill the batch: traffic was concurrent a batch ago, or admitted texts
        are still on their way through the tokenizer (caller holds `_cond`)."""
        tokenizing = self._reserved - self._running - len(self._pending)
        return self._last_batch > 1 or tokenizing > 0

    def _drop_cancelled(self) -> None:
        kept = [i for i in self._pending if not i.future.done()]
        dropped = len(self._pending) - len(kept)
        if dropped:
            self._pending = kept
            self._reserved -= dropped

    def _take_batch(self) -> list[_Item]:
        """The oldest item plus its nearest neighbours by length, within the budget."""
        limits = self.limits
        order = sorted(self._pending, key=lambda i: (i.length, i.seq))
        pos = order.index(self._pending[0])
        lo, hi = pos, pos + 1
        longest = order[pos].length
        anchor = order[pos].length
        big = 1 << 62  # "no neighbour" length: never fits
        while hi - lo < limits.max_batch_requests:
            left = order[lo - 1].length if lo > 0 else -big
            right = order[hi].length if hi < len(order) else big
            size = hi - lo + 1
            left_ok = left >= 0 and size * longest <= limits.max_batch_tokens
            right_ok = right < big and size * right <= limits.max_batch_tokens
            if left_ok and (not right_ok or anchor - left <= right - anchor):
                lo -= 1
            elif right_ok:
                hi += 1
                longest = right
            else:
                break
        batch = order[lo:hi]
        taken = set(map(id, batch))
        self._pending = [i for i in self._pending if id(i) not in taken]
        self._last_batch = len(batch)
        self._running += len(batch)
        return batch

    def _run_batch(self, batch: list[_Item]) -> None:
        try:
            results = self._call(self.backend.forward, [i.encoded for i in batch])
        except Exception as exc:
            if len(batch) == 1:
                self._release(1, ran=True)
                _resolve(batch[0], error=_wrap(exc))
                return
            half = len(batch) // 2  # isolate the failing text; the others still succeed
            self._run_batch(batch[:half])
            self._run_batch(batch[half:])
            return
        self._release(len(batch), ran=True)  # before callers wake, so their next call finds the capacity
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Item, Any]]] = {}
        for item, result in zip(batch, results, strict=True):
            by_loop.setdefault(item.loop, []).append((item, result))
        for loop, pairs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_set_results, pairs)
            except RuntimeError:  # the caller's loop is closed: nobody is waiting
                pass


def _wrap(exc: Exception) -> SidecarError:
    if isinstance(exc, SidecarError):
        return exc
    err = InferenceFailedError(f"model failed on this input: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


def _set_results(pairs: list[tuple[_Item, Any]]) -> None:
    for item, result in pairs:
        if not item.future.done():
            item.future.set_result(result)


def _resolve(item: _Item, *, error: BaseException) -> None:
    def _set() -> None:
        if not item.future.done():
            item.future.set_exception(error)

    try:
        item.loop.call_soon_threadsafe(_set)
    except RuntimeError:
        pass
