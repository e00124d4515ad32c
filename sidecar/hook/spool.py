"""The enriched bulk body on its way to the engine: in memory while small, then in a temporary file.

The whole body is known before anything is sent, so a request that fails half-way (a malformed
action line, the body limit) never reaches the engine partly, and the engine gets a Content-Length.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import IO

CHUNK_BYTES = 256 * 1024


class Spool:
    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self.size = 0
        self._buffer = bytearray()
        self._file: IO[bytes] | None = None

    async def write(self, data: bytes) -> None:
        if self._file is None and self.size + len(data) > self.memory_bytes:
            self._file = await asyncio.to_thread(self._roll_over)
        if self._file is not None:
            await asyncio.to_thread(self._file.write, data)
        else:
            self._buffer += data
        self.size += len(data)

    def _roll_over(self) -> IO[bytes]:
        handle = tempfile.TemporaryFile(prefix="sidecar-bulk-")  # closed by close()
        handle.write(self._buffer)
        self._buffer = bytearray()
        return handle

    def body(self) -> bytes | AsyncIterator[bytes]:
        return bytes(self._buffer) if self._file is None else self._chunks(self._file)

    @staticmethod
    async def _chunks(handle: IO[bytes]) -> AsyncIterator[bytes]:
        await asyncio.to_thread(handle.seek, 0)
        while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
            yield chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buffer = bytearray()
