"""Bounds on what one request may cost: body bytes, inputs, characters, and requests in flight.

Over-large requests get 413 (Elasticsearch's `hugging_face` service reacts to 413 by truncating
and retrying); a full server gets 429 `es_rejected_execution_exception`, which clients retry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sidecar.errors import BodyTooLargeError, OverloadedError
from sidecar.observability import metrics


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes`: at once from Content-Length, or while the body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                raise self.too_large(int(value))
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self.too_large(received)
            return message

        await self.app(scope, limited_receive, send)

    def too_large(self, size: int) -> BodyTooLargeError:
        return BodyTooLargeError(
            f"request body of at least [{size}] bytes exceeds the limit of [{self.max_bytes}] bytes"
        )


def check_inputs(texts: list[str], *, max_inputs: int, max_chars: int) -> None:
    """413 when a request carries more inputs, or a longer input, than allowed."""
    if len(texts) > max_inputs:
        raise BodyTooLargeError(f"request has [{len(texts)}] inputs, more than the limit of [{max_inputs}]")
    for index, text in enumerate(texts):
        if len(text) > max_chars:
            raise BodyTooLargeError(
                f"input [{index}] has [{len(text)}] characters, more than the limit of [{max_chars}]"
            )


class InFlightLimiter:
    """Counts inference requests being served; past `limit` new ones are refused with 429 at once.

    Refusing instead of queueing keeps memory bounded and lets clients back off (they retry 429).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.in_flight >= self.limit:
            raise OverloadedError(
                f"rejected execution: [{self.in_flight}] inference requests in flight, limit [{self.limit}]"
            )
        self.in_flight += 1
        metrics.HTTP_IN_FLIGHT.inc()
        try:
            yield
        finally:
            self.in_flight -= 1
            metrics.HTTP_IN_FLIGHT.dec()
