"""A small HTTP server beside the worker: liveness, readiness and Prometheus metrics.

    GET /_sidecar/health/live   200 while every pipeline's poll loop turns (503 when one is stuck)
    GET /_sidecar/health/ready  200 when every pipeline started, its engine answers and its target
                                index and dead letters can be written (503 otherwise)
    GET /metrics                the Prometheus text format of every `sidecar_*` metric

Plain asyncio: the worker must not pull in a web framework for three read-only routes. Each
connection carries one request and must be done (request read, answer written) within
`timeout_s`, so idle, slow-sending or never-reading clients are closed; past `max_connections`
open connections a new one is answered 503 at once, so they can never take every descriptor.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger(__name__)

Probe = Callable[[], tuple[bool, dict[str, Any]]]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        live: Probe,
        ready: Probe,
        timeout_s: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        self.host = host
        self.port = port
        self._live = live
        self._ready = ready
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.open_connections = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets = list(self._server.sockets or ())
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("worker health and metrics on http://%s:%d", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        try:
            if self.open_connections > self.max_connections:
                log.warning(
                    "health connection refused: [%d] connections open, the limit", self.max_connections
                )
                writer.write(_answer(503, "application/json", b'{"error":"too many connections"}'))
                return
            async with asyncio.timeout(self.timeout_s):
                head = await reader.readuntil(b"\r\n\r\n")
                method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
                status, content_type, body = self._route(method, target.split("?", 1)[0])
                writer.write(_answer(status, content_type, body, head_only=method == "HEAD"))
                await writer.drain()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            ConnectionError,
        ):
            pass
        finally:
            self.open_connections -= 1
            writer.close()

    def _route(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "application/json", b'{"error":"method not allowed"}'
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
        probes = {"/_sidecar/health/live": self._live, "/_sidecar/health/ready": self._ready}
        probe = probes.get(path)
        if probe is None:
            return 404, "application/json", b'{"error":"not found"}'
        ok, details = probe()
        payload = {"status": "ok" if ok else "unavailable", **details}
        return (200 if ok else 503), "application/json", json.dumps(payload).encode("utf-8")


def _answer(status: int, content_type: str, body: bytes, *, head_only: bool = False) -> bytes:
    header = (
        f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return header.encode("latin-1") + (b"" if head_only else body)
