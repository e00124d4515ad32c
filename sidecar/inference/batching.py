"""Token-budget dynamic batching: many concurrent callers, few large, well-packed model batches.

    caller --encode(texts)--> tokenize (in place, or tok-* thread) --items--> pending queue
    pending --cut (model thread when idle; batch-* thread ahead while all model threads are busy)-->
    model thread(s): backend.infer only --raw output--> post-* thread: backend.decode
    caller <----- futures resolved on the caller's event loop <------------------+

The model thread only runs the model (`Backend.infer`, through `call`: on CPU the process's one
torch thread). Everything else happens on other threads, overlapping the forward pass:

- Texts are tokenized before they are queued, on a dedicated tokenizer thread (or, for small
  requests of a few sentences, in place on the caller's event loop: tens of microseconds of Rust,
  less than a thread hop), so tokenization overlaps the running batch and never blocks the loop.
- Results are turned into Python objects (`Backend.decode`: tensor -> token map or vector) on a
  post-processing thread, while the model thread already runs the next batch.
- A batch is cut by a token budget (padded tokens = texts x longest) and a text count. It is
  built around the oldest waiting text (no starvation) from its neighbours in length order, so
  padding stays small under load. An idle model thread cuts its own batch. While every model
  thread is busy, the batcher thread cuts the next batch ahead as soon as the queue holds a full
  one (it cannot grow any more), so under load the model goes from one batch straight to the next;
  a batch that could still grow is left to fill until a model thread is free (cutting it early, as
  a fixed one-ahead pipeline does, would only make it smaller).
- The model thread waits at most `max_wait_s` for a batch to fill, and only while traffic is
  concurrent (the last batch held several texts, or more texts are being tokenized): a lone
  caller's text runs at once instead of waiting for company that is not coming.
- The queue is bounded by text count: past it `encode` raises `OverloadedError` (HTTP 429).
- Texts whose caller went away (cancelled future) are dropped before they reach the model, also
  from a batch cut ahead.
- A failing batch is split in halves until the failing text is isolated, so one bad text never
  fails the others, and the model thread keeps serving.
- Each request records its tokenize, queue and inference (model + decode) time in the
  `sidecar_inference_request_*_seconds` histograms.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from sidecar.errors import InferenceFailedError, OverloadedError, SidecarError, TimeoutError_
from sidecar.observability import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    """One tokenized text: model input ids (already cut to the model's limit)."""

    ids: Sequence[int]
    truncated: bool = False


class Backend(Protocol):
    """What the engine needs from a model: tokenize, run one batch, decode its output, warm up."""

    name: str

    def tokenize(self, texts: list[str]) -> list[Encoded]: ...

    def infer(self, batch: list[Encoded]) -> Any:
        """The model work of one batch (runs through the engine's `call`), in a compact raw form."""
        ...

    def decode(self, batch: list[Encoded], raw: Any) -> list[Any]:
        """`infer`'s output as one result per text, in batch order (runs on another thread: no
        torch calls here)."""
        ...

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
    started: float = 0.0  # its batch entered the model
    finished: float = 0.0  # its result was decoded

    @property
    def length(self) -> int:
        return len(self.encoded.ids)


def call_here(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


class BatchingEngine:
    """`call` runs the backend's model work (warm-up and `infer`); the default runs it on the
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
        self._cond = threading.Condition()  # one condition for callers, batcher and model threads
        self._pending: list[_Item] = []
        self._ready: list[list[_Item]] = []  # batches cut ahead, waiting for a model thread
        self._reserved = 0  # texts admitted (tokenizing, queued, cut, running or decoding), guarded by _cond
        self._running = 0  # texts cut into a batch and not yet answered, guarded by _cond
        self._busy = 0  # model threads inside a batch, guarded by _cond
        self._last_batch = 0  # size of the batch cut last: >1 means callers arrive concurrently
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._tokenizer = ThreadPoolExecutor(1, thread_name_prefix=f"tok-{backend.name}")
        self._post = ThreadPoolExecutor(1, thread_name_prefix=f"post-{backend.name}")
        self._closed = False
        self._label = backend.name

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self, *, warmup: bool = True) -> None:
        """Warm up (synchronously: call from a worker thread) and start the model threads."""
        if warmup:
            self._call(self.backend.warmup)
        for i in range(self.replicas):
            self._spawn(self._run, f"model-{self._label}-{i}")
        self._spawn(self._cut_ahead, f"batch-{self._label}")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        """Stop the model threads; texts still queued fail with a retriable error."""
        with self._cond:
            self._closed = True
            leftovers = self._pending + [item for batch in self._ready for item in batch]
            self._pending, self._ready = [], []
            self._cond.notify_all()
        for item in leftovers:
            _resolve(item, error=OverloadedError("inference engine is shutting down"))
        for thread in self._threads:
            thread.join(timeout=10)
        self._tokenizer.shutdown(wait=False, cancel_futures=True)
        self._post.shutdown(wait=False)  # batches already decoding still answer their callers

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
            began = time.perf_counter()
            if sum(map(len, texts)) <= INLINE_TOKENIZE_CHARS:
                encoded = self.backend.tokenize(texts)
            else:
                encoded = await loop.run_in_executor(self._tokenizer, self.backend.tokenize, texts)
            metrics.INFERENCE_REQUEST_TOKENIZE_SECONDS.labels(self._label).observe(
                time.perf_counter() - began
            )
            futures = [loop.create_future() for _ in encoded]
            items = [_Item(e, f, loop, next(self._seq)) for e, f in zip(encoded, futures, strict=True)]
            with self._cond:
                if self._closed:
                    raise OverloadedError("inference engine is shutting down")
                self._pending.extend(items)
                admitted = 0  # from now on the engine's threads release each item
                self._cond.notify_all()  # the batcher and the model threads share the condition
            gathered = asyncio.gather(*futures)
            results = await (asyncio.wait_for(gathered, time_limit) if time_limit else gathered)
            self._observe_stages(items)
            return results
        except TimeoutError as exc:
            raise TimeoutError_(f"inference did not finish within [{time_limit}s]") from exc
        except SidecarError:
            raise
        except Exception as exc:  # tokenizer crash: keep the cause
            raise InferenceFailedError(f"tokenization failed: {exc}") from exc
        finally:
            for fut in futures:  # caller gone or failed: let the engine drop the rest
                if not fut.done():
                    fut.cancel()
            if admitted:
                self._release(admitted)

    def _observe_stages(self, items: list[_Item]) -> None:
        """A request's queue and inference times are its slowest text's (texts may span batches)."""
        label = self._label
        metrics.INFERENCE_REQUEST_QUEUE_SECONDS.labels(label).observe(
            max(i.started - i.enqueued for i in items)
        )
        metrics.INFERENCE_REQUEST_INFERENCE_SECONDS.labels(label).observe(
            max(i.finished - i.started for i in items)
        )

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

    # --- batcher thread: cuts the next batch while the model runs ----------------------------------
    def _cut_ahead(self) -> None:
        with self._cond:
            while not self._closed:
                if self._busy >= self.replicas and not self._ready and self._pending_full():
                    self._drop_cancelled()
                    if self._pending_full():
                        self._ready.append(self._take_batch())
                        self._cond.notify_all()
                        continue
                self._cond.wait()

    def _pending_full(self) -> bool:
        """Whether the queue already holds a full batch (caller holds `_cond`)."""
        limits = self.limits
        return (
            len(self._pending) >= limits.max_batch_requests
            or sum(i.length for i in self._pending) >= limits.max_batch_tokens
        )

    # --- model thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            now = time.perf_counter()
            for item in batch:
                item.started = now
                metrics.INFERENCE_QUEUE_SECONDS.labels(self._label).observe(now - item.enqueued)
            metrics.INFERENCE_BATCH_SIZE.labels(self._label).observe(len(batch))
            metrics.INFERENCE_BATCH_TOKENS.labels(self._label).observe(
                len(batch) * max(i.length for i in batch)
            )
            try:
                self._run_batch(batch)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()
            metrics.INFERENCE_BATCH_SECONDS.labels(self._label).observe(time.perf_counter() - now)

    def _next_batch(self) -> list[_Item] | None:
        limits = self.limits
        with self._cond:
            while True:
                if self._closed:
                    return None
                if self._ready:
                    batch = self._live(self._ready.pop(0))
                    if batch:
                        return self._claim(batch)
                    continue
                self._drop_cancelled()
                if self._pending:
                    waited = time.perf_counter() - self._pending[0].enqueued
                    if self._pending_full() or waited >= limits.max_wait_s or not self._company_expected():
                        return self._claim(self._take_batch())
                    self._cond.wait(limits.max_wait_s - waited)
                else:
                    self._cond.wait()

    def _claim(self, batch: list[_Item]) -> list[_Item]:
        """This model thread is now busy: the batcher may cut the next batch (caller holds `_cond`)."""
        self._busy += 1
        self._cond.notify_all()
        return batch

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

    def _live(self, batch: list[_Item]) -> list[_Item]:
        """A batch cut ahead without the texts whose caller left meanwhile (caller holds `_cond`)."""
        kept = [i for i in batch if not i.future.done()]
        dropped = len(batch) - len(kept)
        self._reserved -= dropped
        self._running -= dropped
        return kept

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
            raw = self._call(self.backend.infer, [i.encoded for i in batch])
        except Exception as exc:
            if len(batch) == 1:
                self._release(1, ran=True)
                _resolve(batch[0], error=_wrap(exc))
                return
            half = len(batch) // 2  # isolate the failing text; the others still succeed
            self._run_batch(batch[:half])
            self._run_batch(batch[half:])
            return
        try:
            self._post.submit(self._finish, batch, raw)
        except RuntimeError:  # closing: the post-processing thread is gone
            self._finish(batch, raw)

    # --- post-processing thread --------------------------------------------------------------------
    def _finish(self, batch: list[_Item], raw: Any) -> None:
        """Decode one batch's raw output and answer its callers."""
        try:
            results = self.backend.decode([i.encoded for i in batch], raw)
            pairs = list(zip(batch, results, strict=True))
        except Exception as exc:  # a decoder bug, not one text's fault: every text gets the cause
            log.exception("decoding a batch of [%s] failed", self._label)
            self._release(len(batch), ran=True)
            for item in batch:
                _resolve(item, error=_wrap(exc))
            return
        done = time.perf_counter()
        for item in batch:
            item.finished = done
        self._release(len(batch), ran=True)  # before callers wake, so their next call finds the capacity
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Item, Any]]] = {}
        for item, result in pairs:
            by_loop.setdefault(item.loop, []).append((item, result))
        for loop, loop_pairs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_set_results, loop_pairs)
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
