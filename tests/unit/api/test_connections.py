"""`sidecar serve`'s connection guards on a real uvicorn server (loopback, free port).

Timeouts are set short here; each test waits for the behaviour (the server closing a connection,
answering 408 or 503) with a generous upper bound, never for a fixed time.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from sidecar.api.app import create_app
from sidecar.api.server import connection_limit, server_config
from sidecar.settings import load_settings
from tests.unit.api.fake_service import FakeInferenceService

GENEROUS_S = 60.0


@contextmanager
def serving(tmp_path: Path, **overrides: Any) -> Iterator[tuple[str, int]]:
    settings = load_settings(
        registry_path=tmp_path / "r.sqlite3", host="127.0.0.1", port=0, preload_endpoints=[], **overrides
    )
    app = create_app(settings, service=FakeInferenceService())
    server = uvicorn.Server(server_config(settings, app))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait(lambda: server.started or not thread.is_alive(), "the server to start")
    assert server.started
    try:
        yield "127.0.0.1", server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=GENEROUS_S)


def _wait(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GENEROUS_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by `GENEROUS_S`)."""
    sock.settimeout(GENEROUS_S)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _answer(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def test_idle_and_slow_header_connections_are_answered_408_and_closed(tmp_path: Path) -> None:
    with serving(tmp_path, http_header_timeout_s=0.5) as (host, port):
        idle = socket.create_connection((host, port))
        slow = socket.create_connection((host, port))
        slow.sendall(b"POST /_inference HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
        for sock in (idle, slow):
            status, body = _answer(_read_until_closed(sock))
            assert status == 408
            assert body["error"]["type"] == "receive_timeout_transport_exception"
            assert body["status"] == 408
            sock.close()


def test_a_slow_body_is_answered_408(tmp_path: Path) -> None:
    with serving(tmp_path, http_body_timeout_s=0.5) as (host, port):
        sock = socket.create_connection((host, port))
        sock.sendall(
            b"POST /_inference/sparse_embedding/x HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"input": '
        )
        status, body = _answer(_read_until_closed(sock))
        sock.close()
    assert status == 408
    assert body["error"]["reason"] == "the request body did not arrive within [0.5s]"


def test_the_connection_cap_refuses_more_and_serves_again_once_idle_ones_are_dropped(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, http_max_connections=4, http_header_timeout_s=1.0) as (host, port):
        idle = [socket.create_connection((host, port)) for _ in range(4)]
        refused = socket.create_connection((host, port))
        status, body = _answer(_read_until_closed(refused))
        assert status == 503 and body["error"]["type"] == "es_rejected_execution_exception"
        for sock in idle:  # the header timeout drops the idle connections ...
            assert _answer(_read_until_closed(sock))[0] == 408
            sock.close()
        answer = httpx.get(f"http://{host}:{port}/_sidecar/health/live", timeout=GENEROUS_S)
        assert answer.status_code == 200  # ... and a legitimate request is served again


def test_malformed_http_gets_the_elasticsearch_envelope(tmp_path: Path) -> None:
    with serving(tmp_path) as (host, port):
        sock = socket.create_connection((host, port))
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        raw = _read_until_closed(sock)
        sock.close()
    status, body = _answer(raw)
    assert status == 400
    assert body["error"]["type"] == "illegal_argument_exception" and body["status"] == 400
    assert b"x-elastic-product: Elasticsearch" in raw


def test_the_cap_stays_below_the_open_file_limit() -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert connection_limit(10**9) < soft or soft == resource.RLIM_INFINITY
    assert connection_limit(3) == 3
