"""Every CPU torch call of the process (model load, warm-up, forward passes) runs on ONE thread.

PyTorch's Linux wheels use GNU OpenMP, which keeps a team of worker threads for each thread that
ever ran a parallel region. Once the process holds more OpenMP threads than cores, libgomp stops
spinning between parallel regions and parks its workers, so each of a forward pass's ~100 small
parallel ops pays a futex wake-up. Measured on 2 cores: a single-sentence SPLADE-tiny forward
takes 4.4 ms on the thread that loaded the model and 7-9 ms on any other thread. One thread for
all CPU models keeps one team; on two cores, running two models at once would not be faster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_local = threading.local()


def _mark() -> None:
    _local.is_torch_thread = True


def run_on_torch_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn` on the process's CPU torch thread and wait for it (inline when already there)."""
    global _executor
    if getattr(_local, "is_torch_thread", False):
        return fn(*args, **kwargs)
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(1, thread_name_prefix="torch-cpu", initializer=_mark)
        executor = _executor
    return executor.submit(fn, *args, **kwargs).result()
