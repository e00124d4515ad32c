"""Every CPU torch call of the process (model load, warm-up, forward passes) runs on ONE thread.
Only torch work belongs here: backends hand it compact numpy arrays, and turning those into
Python objects (`Backend.decode`) runs on the batching engine's post-processing thread.

PyTorch's Linux wheels use GNU OpenMP, which keeps a team of worker threads for each thread that
ever ran a parallel region. Once the process holds more OpenMP threads than cores, libgomp stops
spinning between parallel regions and parks its workers, so each of a forward pass's ~100 small
parallel ops pays a futex wake-up. Measured on 2 cores: a single-sentence SPLADE-tiny forward
takes 4.4 ms on the thread that loaded the model and 7-9 ms on any other thread. One thread for
all CPU models keeps one team; on two cores, running two models at once would not be faster.

The same start-up fixes glibc's mmap threshold at 4 MiB. By default glibc raises the threshold
each time a large block is freed, so the varying multi-MB tensors of a long run end up on the heap,
fragment it, and peak RSS keeps creeping up with the corpus (SPLADE-tiny over 5,183 SciFact
documents: 1,298 MB, against 1,136 MB with the fixed threshold at the same speed; 1 MiB was 1.6x
slower). `MALLOC_MMAP_THRESHOLD_` in the environment, or another allocator, takes precedence.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD_BYTES = 4 << 20

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_local = threading.local()


def _mark() -> None:
    _local.is_torch_thread = True


def fix_mmap_threshold() -> bool:
    """Pin glibc's mmap threshold (see the module docstring); False where that is not possible."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False  # the operator chose
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        log.debug("mallopt unavailable; glibc's dynamic mmap threshold stays")
        return False


def run_on_torch_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn` on the process's CPU torch thread and wait for it (inline when already there)."""
    global _executor
    if getattr(_local, "is_torch_thread", False):
        return fn(*args, **kwargs)
    with _lock:
        if _executor is None:
            fix_mmap_threshold()
            _executor = ThreadPoolExecutor(1, thread_name_prefix="torch-cpu", initializer=_mark)
        executor = _executor
    return executor.submit(fn, *args, **kwargs).result()
