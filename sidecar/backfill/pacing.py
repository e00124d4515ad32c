"""Small helpers of the backfill loop: a docs-per-second throttle and an inference call counter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sidecar.inference.types import InferenceOutput, InferenceServiceProtocol, InputType, TaskType


class Throttle:
    """Spaces batches so that documents flow at `rate` per second on average (None: no limit)."""

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("the rate must be positive")
        self.rate = rate
        self._next = time.monotonic()

    async def wait(self, docs: int) -> None:
        if self.rate is None or docs <= 0:
            return
        now = time.monotonic()
        start = max(self._next, now)
        self._next = start + docs / self.rate
        if start > now:
            await asyncio.sleep(start - now)


@dataclass
class Tally:
    texts: int = 0


_TALLY: ContextVar[Tally | None] = ContextVar("sidecar_backfill_tally", default=None)


class CountingService:
    """Counts the texts sent to inference (the summary's `inferred`), delegating everything else:
    in all, and per task (`tally`), as parts of different pages infer at the same time."""

    def __init__(self, service: InferenceServiceProtocol) -> None:
        self.service = service
        self.texts = 0

    @staticmethod
    def tally() -> Tally:
        """From now on, count this task's texts (its child tasks' too) in the returned `Tally`."""
        tally = Tally()
        _TALLY.set(tally)
        return tally

    async def infer(
        self,
        inference_id: str,
        inputs: list[str],
        *,
        task_type: TaskType | None = None,
        query: str | None = None,
        input_type: InputType | None = None,
        task_settings: dict[str, Any] | None = None,
        top_n: int | None = None,
        return_documents: bool | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the protocol's signature
    ) -> InferenceOutput:
        self.texts += len(inputs)
        tally = _TALLY.get()
        if tally is not None:
            tally.texts += len(inputs)
        return await self.service.infer(
            inference_id,
            inputs,
            task_type=task_type,
            query=query,
            input_type=input_type,
            task_settings=task_settings,
            top_n=top_n,
            return_documents=return_documents,
            timeout=timeout,
        )

    def stream_completion(self, inference_id: str, inputs: list[str], **kwargs: Any) -> AsyncIterator[str]:
        return self.service.stream_completion(inference_id, inputs, **kwargs)
