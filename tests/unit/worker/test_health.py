from __future__ import annotations

import asyncio
import json

from sidecar.worker.health import HealthServer


async def get(port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_live_ready_and_metrics_routes() -> None:
    state = {"ready": False}
    server = HealthServer(
        "127.0.0.1", 0, live=lambda: (True, {}), ready=lambda: (state["ready"], {"pipelines": []})
    )
    await server.start()
    try:
        assert (await get(server.port, "/_sidecar/health/live"))[0] == 200
        status, body = await get(server.port, "/_sidecar/health/ready")
        assert status == 503 and json.loads(body)["status"] == "unavailable"
        state["ready"] = True
        assert (await get(server.port, "/_sidecar/health/ready?verbose"))[0] == 200
        status, body = await get(server.port, "/metrics")
        assert status == 200 and b"sidecar_worker_consumed_total" in body
        assert (await get(server.port, "/nope"))[0] == 404
        assert (await get(server.port, "/metrics", "POST"))[0] == 405
    finally:
        await server.close()


async def _counted(server: HealthServer, n: int) -> None:
    while server.open_connections != n:  # the server takes connections as its loop gets to them
        await asyncio.sleep(0.01)


async def test_idle_connections_are_closed_and_capped() -> None:
    server = HealthServer(
        "127.0.0.1", 0, live=lambda: (True, {}), ready=lambda: (True, {}), timeout_s=0.5, max_connections=2
    )
    await server.start()
    try:
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        idle[1][1].write(b"GET /metrics HTTP/1.1\r\n")  # a request that never ends its headers
        await asyncio.wait_for(_counted(server, 2), 60)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        refused = await asyncio.wait_for(reader.read(), 60)  # answered at once, before any request
        writer.close()
        assert refused.startswith(b"HTTP/1.1 503 ") and refused.endswith(b'{"error":"too many connections"}')
        for reader, writer in idle:  # past timeout_s the server closes them without an answer
            assert await asyncio.wait_for(reader.read(), 60) == b""
            writer.close()
        await asyncio.wait_for(_counted(server, 0), 60)
        assert (await get(server.port, "/_sidecar/health/live"))[0] == 200
    finally:
        await server.close()
