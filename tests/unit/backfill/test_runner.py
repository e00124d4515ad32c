"""The backfill loop over an in-memory index: batches, outcomes, stopping and resuming, expiry."""

from __future__ import annotations

import asyncio
from typing import Any

from sidecar.backfill.checkpoint import FileCheckpointStore
from sidecar.backfill.progress import Stats
from sidecar.backfill.runner import Backfill, BackfillOptions
from sidecar.backfill.selection import Mode
from sidecar.deadletter import DeadLetter
from tests.unit.backfill.memory_engine import MemoryIndex, MemoryScanner, MemorySink
from tests.unit.worker.fakes import FakeService, pipeline, sparse_of

CONFIG = pipeline()  # title -> ml.tokens (rank_features)


class Letters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def write(self, letters: list[DeadLetter]) -> None:
        self.letters += letters


class StopAfter:
    """A progress reporter that asks the backfill to stop after N batches."""

    def __init__(self, stop: asyncio.Event, batches: int) -> None:
        self.stop, self.left = stop, batches

    def start(self, total: int | None, done: Stats) -> None:
        self.total = total

    def update(self, stats: Stats) -> None:
        self.left -= 1
        if self.left == 0:
            self.stop.set()

    def close(self) -> None:
        pass


def corpus(n: int) -> MemoryIndex:
    return MemoryIndex({f"d{i:04d}": {"title": f"title {i}"} for i in range(n)})


def make(
    index: MemoryIndex, service: FakeService, tmp_path: Any, *, stable: bool = True, **options: Any
) -> tuple[Backfill, MemoryScanner, MemorySink, Letters]:
    sink = MemorySink(index)
    letters = Letters()
    backfill = Backfill(
        CONFIG, service, sink, FileCheckpointStore(tmp_path / "cp.json"),
        BackfillOptions(batch_size=10, **options), dead_letters=letters,  # type: ignore[arg-type]
    )  # fmt: skip
    scanner = MemoryScanner(index, stable=stable)
    backfill.scanner = scanner
    return backfill, scanner, sink, letters


async def test_every_document_is_enriched_once_and_a_rerun_infers_nothing(tmp_path: Any) -> None:
    index, service = corpus(35), FakeService()
    backfill, _, sink, _ = make(index, service, tmp_path)
    result = await backfill.run()
    assert result.finished and result.run == Stats(scanned=35, enriched=35, inferred=35)
    assert index.docs["d0007"]["ml"]["tokens"] == sparse_of("title 7")
    assert all(a["_op_type"] == "update" and "doc" in a and a["doc_as_upsert"] is False for a in sink.actions)
    again, _, _, _ = make(index, service, tmp_path)
    rerun = await again.run()
    assert rerun.finished and not rerun.resumed and rerun.run == Stats() and len(service.texts) == 35


async def test_a_stopped_run_resumes_without_redoing_acknowledged_batches(tmp_path: Any) -> None:
    index, service = corpus(100), FakeService()
    first, _, _, _ = make(index, service, tmp_path)
    first.progress = StopAfter(first.stop, 2)
    stopped = await first.run()
    # The stop takes effect at the next page not yet started: the pages whose parts were already
    # queued for inference (a few parts' worth) are finished, so nothing inferred is thrown away.
    done = stopped.run.enriched
    assert not stopped.finished and 20 <= done <= 60 and done % 10 == 0, stopped
    second, _, _, _ = make(index, service, tmp_path)
    resumed = await second.run()
    assert resumed.finished and resumed.resumed
    assert resumed.run.enriched == 100 - done and resumed.total.enriched == 100
    assert sorted(service.texts) == sorted(d["title"] for d in index.docs.values())  # each exactly once
    assert set(index.versions.values()) == {2}


async def test_forced_runs_replace_vectors_and_resume_after_the_cursor(tmp_path: Any) -> None:
    index, service = corpus(100), FakeService()
    await make(index, service, tmp_path)[0].run()
    for doc in index.docs.values():
        doc["ml"]["tokens"]["stale"] = 9.0
    first, _, sink, _ = make(index, service, tmp_path, mode=Mode.ALL)
    first.progress = StopAfter(first.stop, 1)
    stopped = await first.run()
    assert not stopped.finished and stopped.run.enriched < 100
    second, _, _, _ = make(index, service, tmp_path, mode=Mode.ALL)
    result = await second.run()
    # The cursor continued in a new point in time: no document was enriched twice.
    assert result.resumed and result.run.enriched == 100 - stopped.run.enriched
    assert all("script" in a for a in sink.actions)
    assert all("stale" not in d["ml"]["tokens"] for d in index.docs.values())
    assert len(service.texts) == 200


async def test_an_expired_point_in_time_restarts_unless_the_sort_is_stable(tmp_path: Any) -> None:
    # Pages 1 and 2 are read before the expiry; page 3 then needs a new point in time: with a stable
    # sort the cursor continues (30 reads), else the scan starts over (20 + 30 reads).
    for stable, reads in ((True, 30), (False, 50)):
        index, service = corpus(30), FakeService()
        backfill, scanner, _, _ = make(index, service, tmp_path / str(stable), stable=stable, mode=Mode.ALL)
        scanner.expire_on_read = {3}
        result = await backfill.run()
        assert result.finished and result.run.scanned == reads and scanner.opened == 2


async def test_failures_go_to_the_dead_letter_and_deleted_documents_are_skipped(tmp_path: Any) -> None:
    index, service = corpus(12), FakeService()
    index.docs["d0003"] = {"other": 1}
    index.deleted_after_scan.add("d0005")
    service.poison_words.add("title 8")
    backfill, _, _, letters = make(index, service, tmp_path)
    result = await backfill.run()
    assert result.run == Stats(scanned=12, enriched=9, skipped=1, failed=2, inferred=result.run.inferred)
    assert sorted((letter.doc_id, letter.error_type) for letter in letters.letters) == [  # type: ignore[attr-defined]
        ("d0003", "missing_input_field"),
        ("d0008", "status_exception"),
    ]


async def test_a_dry_run_reads_and_counts_only(tmp_path: Any) -> None:
    index, service = corpus(25), FakeService()
    backfill, _, sink, _ = make(index, service, tmp_path, dry_run=True)
    result = await backfill.run()
    assert result.finished and result.run == Stats(scanned=25, enriched=25)
    assert service.texts == [] and sink.actions == [] and not (tmp_path / "cp.json").exists()


async def test_slices_split_the_index(tmp_path: Any) -> None:
    index, service = corpus(40), FakeService()
    counts = []
    for slice_id in range(3):
        backfill, _, _, _ = make(index, service, tmp_path, slices=3, slice_id=slice_id)
        counts.append((await backfill.run()).run.enriched)
    assert sum(counts) == 40 and min(counts) > 0 and set(index.versions.values()) == {2}
