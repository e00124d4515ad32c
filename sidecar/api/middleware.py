"""The outermost layer: what every answer needs, whatever route (or error) produced it.

- `X-Elastic-Product: Elasticsearch` on every response (the official clients check it);
- `Accept`/`Content-Type` compatibility versions checked, JSON answered in the asked media type;
- a request id (from `X-Request-Id` / `X-Opaque-Id`, else generated) in every log record and echoed;
- one access log record and the HTTP metrics per request;
- errors raised by inner middleware (auth, body limit) and bugs rendered as Elasticsearch errors.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sidecar.api import es_errors
from sidecar.api.media import compat_major, response_media_type
from sidecar.errors import SidecarError
from sidecar.observability import metrics
from sidecar.observability.logging import request_id_var

access_log = logging.getLogger("sidecar.access")

_QUIET_PATHS = frozenset({"/_sidecar/health/live", "/_sidecar/health/ready", "/metrics"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class EsCompatMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = (_header(scope, b"x-request-id") or _header(scope, b"x-opaque-id") or uuid.uuid4().hex)[
            :200
        ]
        token = request_id_var.set(request_id)
        opaque_id = _header(scope, b"x-opaque-id")
        state: dict[str, Any] = {"status": 500, "started": False, "major": None}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                message["headers"] = self._decorate(message.get("headers", []), request_id, opaque_id, state)
            await send(message)

        try:
            try:
                state["major"] = compat_major(_header(scope, b"accept"), "Accept")
                compat_major(_header(scope, b"content-type"), "Content-Type")
                await self.app(scope, receive, send_with_headers)
            except SidecarError as err:
                await self._send_error(err, state, send_with_headers)
            except Exception as exc:  # a bug: answer like Elasticsearch does and keep the trace in the log
                await self._send_error(es_errors.unexpected_error(exc), state, send_with_headers)
        finally:
            self._observe(scope, state["status"], time.perf_counter() - started)
            request_id_var.reset(token)

    @staticmethod
    def _decorate(
        headers: list[tuple[bytes, bytes]], request_id: str, opaque_id: str | None, state: dict[str, Any]
    ) -> list[tuple[bytes, bytes]]:
        out = []
        for key, value in headers:
            if key.lower() == b"content-type" and value.startswith(b"application/json"):
                value = response_media_type(state["major"]).encode()
            if key.lower() not in (b"x-elastic-product", b"x-request-id"):
                out.append((key, value))
        out.append((b"x-elastic-product", b"Elasticsearch"))
        out.append((b"x-request-id", request_id.encode("latin-1", "replace")))
        if opaque_id is not None:
            out.append((b"x-opaque-id", opaque_id.encode("latin-1", "replace")))
        return out

    @staticmethod
    async def _send_error(err: SidecarError, state: dict[str, Any], send: Send) -> None:
        es_errors.log_error(err)
        if state["started"]:
            return  # headers are out; nothing sensible can be sent any more
        body = es_errors.encode(es_errors.error_body(err))
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in es_errors.error_headers(err).items()]
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _observe(scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        metrics.HTTP_REQUESTS.labels(method=method, route=template, status=str(status)).inc()
        metrics.HTTP_REQUEST_SECONDS.labels(method=method, route=template).observe(seconds)
        level = logging.DEBUG if scope["path"] in _QUIET_PATHS else logging.INFO
        access_log.log(
            level,
            "%s %s %s",
            method,
            scope["path"],
            status,
            extra={
                "method": method,
                "path": scope["path"],
                "route": template,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client": (scope.get("client") or ("-",))[0],
            },
        )
