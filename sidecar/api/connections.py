"""Connection-level guards of `sidecar serve`, which uvicorn does not have on its own.

- **Header timeout**: a connection must complete a request's headers within `header_timeout_s`
  of connecting (or of starting the request); an idle or slow ("slowloris") connection is
  answered 408 and closed. Idle keep-alive connections between requests are closed by uvicorn's
  own `timeout_keep_alive`.
- **Connection cap**: past `max_connections` open connections, a new one is answered 503 and
  closed at once, so idle clients can never take every file descriptor from legitimate ones.
- **Body timeout** (`BodyTimeoutMiddleware`): a request may wait at most `body_timeout_s` in all
  for its body to arrive (time spent processing between reads does not count: the ingest hook
  reads bulks while it enriches them); past that it gets 408.
- Malformed HTTP gets Elasticsearch's error envelope instead of uvicorn's plain text.

The protocol builds on uvicorn's httptools protocol (pinned in constraints.txt).
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import TimerHandle
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from sidecar.api import es_errors
from sidecar.errors import RequestTimeoutError, SidecarError

log = logging.getLogger(__name__)


def error_response(status: int, es_type: str, reason: str) -> bytes:
    """A complete HTTP/1.1 answer carrying Elasticsearch's error envelope; the connection closes."""
    body = es_errors.encode(es_errors.error_body(SidecarError(reason, status=status, es_type=es_type)))
    head = [
        STATUS_LINE[status],
        b"content-type: application/json\r\n",
        b"x-elastic-product: Elasticsearch\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a header timeout, a connection cap and ES-shaped rejects."""

    header_timeout_s: float = 10.0
    max_connections: int = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("connection refused: [%d] connections open, the limit", self.max_connections)
            reason = f"too many open connections: the limit is [{self.max_connections}]"
            transport.write(error_response(503, "es_rejected_execution_exception", reason))
            transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # a keep-alive connection starts its next request
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        self._cancel_header_timer()
        self.transport.write(error_response(400, "illegal_argument_exception", msg))
        self.transport.close()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # a request is being served: the body timeout watches it
        reason = f"no complete request headers within [{self.header_timeout_s}s]"
        self.transport.write(error_response(408, RequestTimeoutError.es_type, reason))
        self.transport.close()


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for uvicorn's `http=` with these limits."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"header_timeout_s": header_timeout_s, "max_connections": max_connections},
    )


class BodyTimeoutMiddleware:
    """408 when a request has waited more than `timeout_s` in all for the bytes of its body."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = self.timeout_s
        finished = False

        async def timed_receive() -> Message:
            nonlocal budget, finished
            if finished:  # after the body, `receive` only waits for a disconnect: not a slow client
                return await receive()
            started = time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(budget, 0.0))
            except TimeoutError:
                raise RequestTimeoutError(
                    f"the request body did not arrive within [{self.timeout_s}s]"
                ) from None
            budget -= time.monotonic() - started
            finished = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)
