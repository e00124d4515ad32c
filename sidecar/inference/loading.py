"""Model loading for people at a terminal: load before any request's time limit starts, and say so.

The command-line entry points (`infer`, `search`, `eval`, `demo`) load the models they need
through `load_models` (or wrap a start-up in `with_progress`): quick loads print nothing, a load
that takes over a second prints what is loading on stderr, then how long it took.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from sidecar.inference.service import InferenceService

NOTICE_AFTER_S = 1.0
T = TypeVar("T")


async def with_progress(work: Awaitable[T], label: str, *, notice_after_s: float | None = None) -> T:
    """Await `work`; when it takes longer than `notice_after_s`, say so on stderr, then how long."""
    task = asyncio.ensure_future(work)
    began = time.monotonic()
    wait = NOTICE_AFTER_S if notice_after_s is None else notice_after_s
    done, _ = await asyncio.wait({task}, timeout=wait)
    if done:
        return task.result()
    print(f"{label} ...", file=sys.stderr, flush=True)
    result = await task
    print(f"{label}: done in {time.monotonic() - began:.1f}s", file=sys.stderr, flush=True)
    return result


def model_names(service: InferenceService, endpoints: Sequence[str]) -> str:
    """`a, b`: the models behind the endpoints (the endpoint id where none is named)."""
    names = [str(service.registry.get(e).service_settings.get("model_id", e)) for e in endpoints]
    return ", ".join(dict.fromkeys(names))


async def load_models(
    service: InferenceService, endpoints: Sequence[str], *, notice_after_s: float | None = None
) -> None:
    """Load the endpoints' local models now (remote endpoints and loaded models cost nothing).

    `start(preload=...)` loads only what is not loaded yet, so calling it again is safe."""
    if not endpoints:
        return
    label = f"loading model {model_names(service, endpoints)}"
    await with_progress(service.start(preload=list(endpoints)), label, notice_after_s=notice_after_s)
