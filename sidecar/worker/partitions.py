"""Per-partition bookkeeping of one pipeline's consumer: offsets, commits, pauses and rebalances.

- Every consumed message is registered with its partition's `PartitionOffsets`; commits send the
  contiguous finished prefix only, serialized by a lock so an older commit never lands last.
- Consumption pauses (all owned partitions) while any reason holds: too much in flight, the engine
  or the inference service pushing back, a dead-letter destination refusing writes, or a rebalance
  in progress; it resumes when none holds.
- Before partitions are revoked, their in-flight batches get a bounded time to finish, then the
  finished prefix is committed and the partitions are forgotten: acknowledgements arriving later
  are ignored, and the new owner re-reads from the committed offset (ids are idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import TopicPartition

from sidecar.observability import metrics
from sidecar.sources.kafka import KafkaSource
from sidecar.worker.offsets import PartitionOffsets

log = logging.getLogger(__name__)

PAUSE_REASONS = ("in_flight", "engine", "inference", "dead_letter", "target", "rebalance")


class Partitions:
    def __init__(self, pipeline: str, source: KafkaSource, revoke_timeout_s: float) -> None:
        self.pipeline = pipeline
        self.source = source
        self.revoke_timeout_s = revoke_timeout_s
        self.trackers: dict[TopicPartition, PartitionOffsets] = {}
        self._commit_lock = asyncio.Lock()
        self._reasons: dict[str, int] = dict.fromkeys(PAUSE_REASONS, 0)
        self._paused = False
        self._announced: set[str] = set()  # reasons of the last logged pause

    # --- offsets -----------------------------------------------------------------------------------
    def tracker(self, tp: TopicPartition) -> PartitionOffsets:
        tracker = self.trackers.get(tp)
        if tracker is None:
            tracker = self.trackers[tp] = PartitionOffsets()
        return tracker

    def register(self, tp: TopicPartition, offset: int) -> PartitionOffsets:
        """Record a consumed message; a partition read again from an earlier offset starts afresh."""
        tracker = self.tracker(tp)
        if tracker.last is not None and offset <= tracker.last:
            # The consumer went back (an offset reset): the new tracker's commits can only be lower
            # than the old pending ones, so nothing unacknowledged is ever passed.
            log.warning(
                "pipeline [%s]: %s-%d re-read from offset %d", self.pipeline, tp.topic, tp.partition, offset
            )
            tracker.revoked = True
            tracker = self.trackers[tp] = PartitionOffsets()
        tracker.add(offset)
        return tracker

    @property
    def pending(self) -> int:
        return sum(t.pending for t in self.trackers.values())

    async def commit(self, only: Iterable[TopicPartition] | None = None) -> None:
        wanted = None if only is None else set(only)
        async with self._commit_lock:
            chosen = {
                tp: (tracker, offset)
                for tp, tracker in list(self.trackers.items())
                if (wanted is None or tp in wanted) and (offset := tracker.committable()) is not None
            }
            if not chosen or not await self.source.commit({tp: o for tp, (_, o) in chosen.items()}):
                return
            for tp, (tracker, offset) in chosen.items():
                tracker.committed = offset
                metrics.WORKER_COMMITTED_OFFSET.labels(self.pipeline, tp.topic, str(tp.partition)).set(offset)

    def update_lag(self) -> None:
        for tp, tracker in list(self.trackers.items()):
            high = self.source.highwater(tp)
            if high is not None and tracker.committed is not None:
                metrics.WORKER_CONSUMER_LAG.labels(self.pipeline, tp.topic, str(tp.partition)).set(
                    max(0, high - tracker.committed)
                )

    # --- pausing -----------------------------------------------------------------------------------
    def set_reason(self, reason: str, active: bool) -> None:
        """Switch a boolean reason (engine, in_flight) on or off."""
        self._reasons[reason] = 1 if active else 0
        self.apply_pause()

    def add_reason(self, reason: str, delta: int) -> None:
        """Count a reason held by several batches at once (inference, rebalance)."""
        self._reasons[reason] = max(0, self._reasons[reason] + delta)
        self.apply_pause()

    @property
    def paused(self) -> bool:
        return self._paused

    def active_reasons(self) -> list[str]:
        return [r for r, n in self._reasons.items() if n]

    def apply_pause(self) -> None:
        should = any(self._reasons.values())
        owned = self.source.assignment()
        if should:
            self.source.pause(owned)  # also catches partitions assigned since the last call
        elif self._paused:
            self.source.resume(owned)
        if should != self._paused:
            # Pausing for the in-flight bound is routine backpressure; other reasons are news.
            news = (set(self.active_reasons()) | self._announced) - {"in_flight"}
            level = logging.INFO if news else logging.DEBUG
            self._announced = set(self.active_reasons())
            log.log(
                level,
                "pipeline [%s] %s consumption (%s)",
                self.pipeline,
                "pauses" if should else "resumes",
                ", ".join(self.active_reasons()) or "no pressure",
            )
        self._paused = should
        for reason, count in self._reasons.items():
            metrics.WORKER_PAUSED.labels(self.pipeline, reason).set(1 if count else 0)

    # --- rebalances --------------------------------------------------------------------------------
    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        self.add_reason("rebalance", 1)
        try:
            leaving = {tp: self.trackers[tp] for tp in revoked if tp in self.trackers}
            waits = [asyncio.ensure_future(t.wait_idle()) for t in leaving.values()]
            if waits:
                _, late = await asyncio.wait(waits, timeout=self.revoke_timeout_s)
                for task in late:
                    task.cancel()
                if late:
                    log.warning(
                        "pipeline [%s]: %d revoked partitions still had work in flight; "
                        "their unfinished messages will be redelivered",
                        self.pipeline,
                        len(late),
                    )
            await self.commit(leaving)
            for tp, tracker in leaving.items():
                tracker.revoked = True
                self.trackers.pop(tp, None)
                for gauge in (metrics.WORKER_CONSUMER_LAG, metrics.WORKER_COMMITTED_OFFSET):
                    try:
                        gauge.remove(self.pipeline, tp.topic, str(tp.partition))
                    except KeyError:
                        pass
            if revoked:
                log.info("pipeline [%s] released %d partitions", self.pipeline, len(revoked))
        finally:
            self.add_reason("rebalance", -1)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info(
            "pipeline [%s] was assigned %s",
            self.pipeline,
            sorted(f"{tp.topic}-{tp.partition}" for tp in assigned),
        )
        self.apply_pause()
