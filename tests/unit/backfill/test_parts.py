"""A backfill batch in parts: each part is written while the next one is inferred; the batch is still
acknowledged (dead letters, checkpoint) as a whole."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sidecar.backfill import runner
from sidecar.backfill.checkpoint import FileCheckpointStore
from sidecar.backfill.progress import Stats
from sidecar.backfill.runner import Backfill, BackfillOptions
from sidecar.inference.types import InferenceOutput
from tests.unit.backfill.memory_engine import MemoryIndex, MemoryScanner, MemorySink
from tests.unit.backfill.test_runner import CONFIG, Letters, StopAfter, corpus
from tests.unit.worker.fakes import FakeService


class WaitsForTheFirstWrite(FakeService):
    """Holds every inference after the first until the sink has written something: only a backfill
    that writes a part while the next one is inferred can finish."""

    def __init__(self, written: asyncio.Event) -> None:
        super().__init__()
        self.written = written
        self.started: list[bool] = []  # per call: had a write happened when it was called?

    async def infer(self, inference_id: str, inputs: list[str], **kwargs: Any) -> InferenceOutput:
        self.started.append(self.written.is_set())
        if len(self.started) > 1:
            await self.written.wait()
        return await super().infer(inference_id, inputs, **kwargs)


class SignallingSink(MemorySink):
    def __init__(self, index: MemoryIndex, written: asyncio.Event) -> None:
        super().__init__(index)
        self.written = written
        self.writes: list[list[str]] = []

    async def write(self, items: Any) -> Any:
        self.writes.append([item.doc_id for item in items])
        result = await super().write(items)
        self.written.set()
        return result


def make(index: MemoryIndex, service: FakeService, sink: MemorySink, tmp_path: Any) -> Backfill:
    backfill = Backfill(
        CONFIG, service, sink, FileCheckpointStore(tmp_path / "cp.json"),
        BackfillOptions(batch_size=10), dead_letters=Letters(),  # type: ignore[arg-type]
    )  # fmt: skip
    backfill.scanner = MemoryScanner(index)
    return backfill


@pytest.fixture(autouse=True)
def parts_of_four(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "PART_DOCS", 4)  # batches of 10: parts of 4, 4 and 2


async def test_a_part_is_written_while_the_next_one_is_inferred(tmp_path: Any) -> None:
    written = asyncio.Event()
    index = corpus(10)
    service, sink = WaitsForTheFirstWrite(written), SignallingSink(index, written)
    # Without the overlap the second inference would wait forever: the guard turns that into a failure.
    result = await asyncio.wait_for(make(index, service, sink, tmp_path).run(), 60)
    assert result.finished and result.run == Stats(scanned=10, enriched=10, inferred=10)
    assert sink.writes == [[f"d000{i}" for i in part] for part in ([0, 1, 2, 3], [4, 5, 6, 7], [8, 9])]
    # Two parts queued at once (the second before the first was written), the third after it.
    assert service.started == [False, False, True]


async def test_a_failed_part_is_dead_lettered_and_the_checkpoint_covers_the_whole_batch(
    tmp_path: Any,
) -> None:
    index, service = corpus(40), FakeService()  # titles 0 to 39: only "title 5" has the word
    service.poison_words.add("title 5")  # in the second part of the first batch
    backfill = make(index, service, MemorySink(index), tmp_path)
    stop = asyncio.Event()
    backfill.stop, backfill.progress = stop, StopAfter(stop, 1)
    result = await backfill.run()
    # The stop comes after the first batch; a batch already started is finished.
    scanned = result.run.scanned
    assert not result.finished and scanned in (10, 20, 30)
    assert result.run.enriched == scanned - 1 and result.run.failed == 1
    assert [letter.doc_id for letter in backfill.dead_letters.letters] == ["d0005"]  # type: ignore[attr-defined]
    resumed = await make(index, service, MemorySink(index), tmp_path).run()
    # Whole batches were acknowledged: the rerun reads on after them, from the checkpoint's cursor.
    left = 40 - scanned
    assert resumed.finished and resumed.resumed and resumed.run == Stats(scanned=left, enriched=left, inferred=left)


async def test_parts_hold_texts_of_similar_length(tmp_path: Any) -> None:
    # Titles of 1 to 10 words in a shuffled order: each part (one model batch) is padded to its
    # longest text, so the batch is cut into parts by length.
    lengths = [7, 2, 9, 4, 1, 10, 5, 3, 8, 6]
    index = MemoryIndex({f"d{i:04d}": {"title": " ".join(["word"] * n)} for i, n in enumerate(lengths)})
    service = FakeService()
    result = await make(index, service, MemorySink(index), tmp_path).run()
    assert result.finished and result.run.enriched == 10
    words = [sorted(len(text.split()) for text in inputs) for _, inputs, _ in service.calls]
    assert words == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
