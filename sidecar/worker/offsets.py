"""Which offsets of a partition may be committed: the contiguous prefix of finished messages.

Messages of a partition are registered in the order Kafka delivered them and finish in any order
(batches run concurrently). The committable offset is one past the last message of the longest
finished prefix, so a commit never passes a message that is still unacknowledged.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict


class PartitionOffsets:
    def __init__(self) -> None:
        self._pending: OrderedDict[int, bool] = OrderedDict()  # offset -> finished, in delivery order
        self._next: int | None = None  # one past the last offset of the finished prefix
        self.committed: int | None = None  # last value handed to Kafka
        self.revoked = False  # set when the partition leaves this member; late acks are then ignored
        self._idle = asyncio.Event()
        self._idle.set()

    def add(self, offset: int) -> None:
        if self._pending and offset <= next(reversed(self._pending)):
            raise ValueError(f"offset {offset} registered out of order")
        self._pending[offset] = False
        self._idle.clear()

    def finish(self, offset: int) -> None:
        if self.revoked or offset not in self._pending:
            return
        self._pending[offset] = True
        while self._pending:
            first, done = next(iter(self._pending.items()))
            if not done:
                break
            self._pending.popitem(last=False)
            self._next = first + 1
        if not self._pending:
            self._idle.set()

    @property
    def last(self) -> int | None:
        """The highest offset registered so far."""
        if self._pending:
            return next(reversed(self._pending))
        return None if self._next is None else self._next - 1

    @property
    def pending(self) -> int:
        return len(self._pending)

    def committable(self) -> int | None:
        """The offset to commit now, or None when there is nothing new since the last commit."""
        if self._next is None or self._next == self.committed:
            return None
        return self._next

    async def wait_idle(self) -> None:
        await self._idle.wait()
