"""Compressed request bodies (`Content-Encoding: gzip` or `deflate`), as Elasticsearch accepts them.

The official clients send them with `http_compress=True`. The body is inflated as it streams in,
at most `CHUNK_BYTES` of output per compressed input step, so the body limit, which sits inside
this layer, counts inflated bytes and stops a small "zip bomb" after `max_body_bytes`.
"""

from __future__ import annotations

import zlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sidecar.errors import ParseError

CHUNK_BYTES = 64 * 1024
ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})
_AUTO_HEADER = 32 + zlib.MAX_WBITS  # a gzip or a zlib header, whichever the body starts with


class DecompressMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding = next((v for k, v in scope["headers"] if k == b"content-encoding"), b"")
        if encoding.decode("latin-1").strip().lower() not in ENCODINGS:
            await self.app(scope, receive, send)
            return
        # The length and encoding of what the app reads are no longer the ones sent.
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")]
        await self.app({**scope, "headers": headers}, _Inflater(receive).receive, send)


class _Inflater:
    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._decoder = zlib.decompressobj(_AUTO_HEADER)
        self._pending = b""  # compressed bytes not inflated yet
        self._last = False  # the client sent its last body message
        self._seen = False

    async def receive(self) -> Message:
        while True:
            if self._pending:
                out = self._inflate()
                if out:
                    return {"type": "http.request", "body": out, "more_body": True}
                continue
            if self._last:
                if self._seen and not self._decoder.eof:
                    raise ParseError("request body is not valid compressed data: it ends too early")
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await self._receive()
            if message["type"] != "http.request":
                return message
            self._pending = message.get("body", b"")
            self._seen = self._seen or bool(self._pending)
            self._last = not message.get("more_body", False)

    def _inflate(self) -> bytes:
        if self._decoder.eof:  # bytes after the end of the compressed stream are ignored
            self._pending = b""
            return b""
        try:
            out = self._decoder.decompress(self._pending, CHUNK_BYTES)
        except zlib.error as exc:
            raise ParseError(f"request body is not valid compressed data: {exc}") from None
        self._pending = self._decoder.unconsumed_tail
        return out
