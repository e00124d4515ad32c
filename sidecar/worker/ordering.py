"""Keep writes of one document id in consumption order while batches run concurrently.

Batches are registered in the order they were consumed. Before its bulk request, a batch waits for
the earlier batches that write any of the same ids; batches with disjoint ids never wait. Without
this, a retried older version of a document could overwrite a newer one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class KeyedOrder:
    def __init__(self) -> None:
        self._last: dict[str, asyncio.Future[None]] = {}

    def register(self, keys: Iterable[str]) -> tuple[asyncio.Future[None], list[asyncio.Future[None]]]:
        """Claim `keys` for a new batch: returns its own done-future and the futures to wait for."""
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        before: dict[int, asyncio.Future[None]] = {}
        for key in keys:
            previous = self._last.get(key)
            if previous is not None and not previous.done():
                before[id(previous)] = previous
            self._last[key] = mine
        return mine, list(before.values())

    def release(self, mine: asyncio.Future[None], keys: Iterable[str]) -> None:
        if not mine.done():
            mine.set_result(None)
        for key in keys:
            if self._last.get(key) is mine:
                del self._last[key]

    def __len__(self) -> int:
        return len(self._last)
