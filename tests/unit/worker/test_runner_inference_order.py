"""Batches are inferred one at a time, so each one is written while the next one is inferred (the
engine batches all queued texts by length: batches inferred together would finish together)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sidecar.inference.types import InferenceOutput
from sidecar.sources.kafka import Message
from sidecar.worker.runner import PipelineRunner
from tests.unit.worker.fakes import FakeService, RecordingSink, pipeline


class GatedService(FakeService):
    """Holds the inference of a text until its gate opens; records the order inference started in."""

    def __init__(self) -> None:
        super().__init__()
        self.gates: dict[str, asyncio.Event] = {}
        self.started: list[str] = []

    async def infer(self, inference_id: str, inputs: list[str], **kwargs: Any) -> InferenceOutput:
        self.started += inputs
        for text in inputs:
            if text in self.gates:
                await self.gates[text].wait()
        return await super().infer(inference_id, inputs, **kwargs)


def message(offset: int, title: str) -> Message:
    return Message("docs", 0, offset, title.encode(), json.dumps({"title": title}).encode())


async def settle() -> None:
    """Let every task run as far as it can (nothing here waits on real I/O)."""
    for _ in range(200):
        await asyncio.sleep(0)


async def test_the_next_batch_is_inferred_once_the_previous_one_is_and_while_it_is_written() -> None:
    service = GatedService()
    service.gates = {"first": asyncio.Event(), "second": asyncio.Event()}
    sink = RecordingSink()
    runner = PipelineRunner(pipeline(), service, service, sink=sink)
    runner._start_batch([message(0, "first")])
    runner._start_batch([message(1, "second")])
    await settle()
    assert service.started == ["first"]  # the second batch's texts are not queued yet
    service.gates["first"].set()
    await settle()
    # The first batch is written while the second one is being inferred.
    assert service.started == ["first", "second"] and [a["_id"] for a in sink.actions] == ["first"]
    service.gates["second"].set()
    await asyncio.gather(*runner._tasks)
    assert [a["_id"] for a in sink.actions] == ["first", "second"]
    assert runner._in_flight == 0
