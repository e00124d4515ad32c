from __future__ import annotations

import asyncio

import pytest

from sidecar.worker.offsets import PartitionOffsets


def test_commits_only_the_contiguous_finished_prefix() -> None:
    offsets = PartitionOffsets()
    for o in (10, 11, 12, 15, 16):  # gaps (compaction, transaction markers) are fine
        offsets.add(o)
    assert offsets.committable() is None
    offsets.finish(11)
    offsets.finish(15)
    assert offsets.committable() is None  # 10 still unacknowledged
    offsets.finish(10)
    assert offsets.committable() == 12
    offsets.committed = 12
    assert offsets.committable() is None  # nothing new
    offsets.finish(12)
    assert offsets.committable() == 16
    offsets.finish(16)
    assert offsets.committable() == 17 and offsets.pending == 0


def test_out_of_order_registration_is_a_bug() -> None:
    offsets = PartitionOffsets()
    offsets.add(5)
    with pytest.raises(ValueError, match="out of order"):
        offsets.add(5)


def test_revoked_partitions_ignore_late_acknowledgements() -> None:
    offsets = PartitionOffsets()
    offsets.add(1)
    offsets.revoked = True
    offsets.finish(1)
    assert offsets.committable() is None


async def test_wait_idle_returns_when_everything_finished() -> None:
    offsets = PartitionOffsets()
    await asyncio.wait_for(offsets.wait_idle(), 1)
    offsets.add(1)
    offsets.add(2)
    waiter = asyncio.ensure_future(offsets.wait_idle())
    offsets.finish(2)
    await asyncio.sleep(0)
    assert not waiter.done()
    offsets.finish(1)
    await asyncio.wait_for(waiter, 1)
