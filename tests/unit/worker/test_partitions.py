"""Partition bookkeeping: commits of the finished prefix, pause reasons, revocation, offset resets.

`StubSource` stands in for our own `KafkaSource` (its pause/commit surface); the real consumer
group is exercised by the integration tests.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from sidecar.worker.partitions import Partitions

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


class StubSource:
    def __init__(self) -> None:
        self.owned = {A, B}
        self.paused: set[TopicPartition] = set()
        self.commits: list[dict[TopicPartition, int]] = []
        self.accept = True

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    def pause(self, partitions: Any) -> None:
        self.paused |= set(partitions) & self.owned

    def resume(self, partitions: Any) -> None:
        self.paused -= set(partitions)

    def highwater(self, tp: TopicPartition) -> int | None:
        return 100

    async def commit(self, offsets: dict[TopicPartition, int]) -> bool:
        await asyncio.sleep(0)
        if self.accept:
            self.commits.append(dict(offsets))
        return self.accept


def partitions(source: StubSource, revoke_timeout_s: float = 1.0) -> Partitions:
    return Partitions("unit", source, revoke_timeout_s)  # type: ignore[arg-type]


async def test_commit_sends_only_new_finished_prefixes() -> None:
    source = StubSource()
    parts = partitions(source)
    a = [parts.register(A, o) for o in (0, 1, 2)]
    b = parts.register(B, 7)
    a[0].finish(0)
    a[2].finish(2)
    await parts.commit()
    assert source.commits == [{A: 1}]
    b.finish(7)
    a[1].finish(1)
    await parts.commit()
    await parts.commit()  # nothing new: no request
    assert source.commits == [{A: 1}, {A: 3, B: 8}]


async def test_refused_commit_is_retried_later() -> None:
    source = StubSource()
    parts = partitions(source)
    parts.register(A, 0).finish(0)
    source.accept = False
    await parts.commit()
    source.accept = True
    await parts.commit()
    assert source.commits == [{A: 1}]


def test_pause_while_any_reason_holds() -> None:
    source = StubSource()
    parts = partitions(source)
    parts.set_reason("engine", True)
    parts.add_reason("inference", 1)
    assert source.paused == {A, B} and parts.paused
    parts.set_reason("engine", False)
    assert source.paused == {A, B}
    source.owned.add(TopicPartition("t", 2))  # assigned while paused
    parts.apply_pause()
    assert TopicPartition("t", 2) in source.paused
    parts.add_reason("inference", -1)
    assert source.paused == set() and not parts.paused


async def test_revocation_waits_for_in_flight_work_then_commits_and_forgets() -> None:
    source = StubSource()
    parts = partitions(source)
    tracker = parts.register(A, 0)
    parts.register(A, 1).finish(1)

    async def finish_later() -> None:
        await asyncio.sleep(0.05)
        tracker.finish(0)

    pending = asyncio.create_task(finish_later())
    await parts.on_revoked({A})
    await pending
    assert source.commits == [{A: 2}]
    assert A not in parts.trackers and tracker.revoked
    assert not parts.paused  # the rebalance reason is released


async def test_revocation_gives_up_after_its_timeout_without_committing_unfinished_work() -> None:
    source = StubSource()
    parts = partitions(source, revoke_timeout_s=0.05)
    stuck = parts.register(A, 0)
    await parts.on_revoked({A})
    assert source.commits == []
    stuck.finish(0)  # a late acknowledgement of a partition that moved away is ignored
    assert stuck.committable() is None


async def test_reread_from_an_earlier_offset_starts_a_fresh_tracker() -> None:
    source = StubSource()
    parts = partitions(source)
    old = parts.register(A, 5)
    parts.register(A, 6)
    fresh = parts.register(A, 3)  # the consumer was reset to an earlier offset
    assert fresh is not old and old.revoked
    fresh.finish(3)
    await parts.commit()
    assert source.commits == [{A: 4}]
