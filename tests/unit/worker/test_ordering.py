from __future__ import annotations

import asyncio

from sidecar.worker.ordering import KeyedOrder


async def test_batches_sharing_ids_wait_for_earlier_ones_only() -> None:
    order = KeyedOrder()
    first, waits1 = order.register(["a", "b"])
    second, waits2 = order.register(["c"])
    third, waits3 = order.register(["b", "c"])
    assert waits1 == [] and waits2 == []
    assert set(map(id, waits3)) == {id(first), id(second)}
    order.release(first, ["a", "b"])
    order.release(second, ["c"])
    await asyncio.wait_for(asyncio.gather(*waits3), 1)
    order.release(third, ["b", "c"])
    assert len(order) == 0


async def test_released_keys_of_a_superseded_batch_stay_claimed_by_the_newer() -> None:
    order = KeyedOrder()
    first, _ = order.register(["a"])
    second, _ = order.register(["a"])
    order.release(first, ["a"])
    _, waits = order.register(["a"])
    assert waits == [second]
