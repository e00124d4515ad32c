"""Split a streamed request body into NDJSON lines without ever holding more than one line.

A line longer than the limit is not buffered: its bytes are dropped up to the next newline and an
`Oversized` marker takes its place, so the caller can answer that one item with an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Oversized:
    """Stands for a line of `size` bytes (at least) that exceeded the limit."""

    size: int


Line = bytes | Oversized


async def split_lines(chunks: AsyncIterable[bytes], max_line_bytes: int) -> AsyncIterator[Line]:
    """Yield each line (without `\\n`, `\\r\\n` accepted); a last line without newline is yielded too."""
    pending = bytearray()
    dropping = 0  # > 0 while skipping the rest of an oversized line: bytes seen so far
    async for chunk in chunks:
        start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if dropping:
                dropping += len(piece)
            elif len(pending) + len(piece) > max_line_bytes:
                dropping = len(pending) + len(piece)
                pending.clear()
            else:
                pending += piece
            if end < 0:
                break
            start = end + 1
            if dropping:
                yield Oversized(dropping)
                dropping = 0
            else:
                yield _strip_cr(bytes(pending))
                pending.clear()
    if dropping:
        yield Oversized(dropping)
    elif pending:
        yield _strip_cr(bytes(pending))


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line
