"""The devstack keeps OpenSearch's data across a restart of that one server, so "the engine went
away and came back" can be tested; `up --wipe` is the one way to start it empty.

A second OpenSearch of the test's own (other ports, its own state folder, the shared jar cache) is
started, stopped by its PID, killed, and started again with `devstack/stack.py`, as a user would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack import stack as devstack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnOpenSearch:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SIDECAR_DEVSTACK_DIR": str(state),
            "SIDECAR_DEVSTACK_CACHE": str(devstack.CACHE),
            "SIDECAR_DEVSTACK_OPENSEARCH_PORT": str(self.port),
            "SIDECAR_DEVSTACK_OPENSEARCH_TRANSPORT_PORT": str(free_port()),
        }

    def stack(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, str(ROOT / "devstack" / "stack.py"), *args, "opensearch"],
            env=self.env, cwd=ROOT, capture_output=True, text=True,
            timeout=devstack.READY_TIMEOUT_S + 120,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def pid(self) -> int | None:
        pid_file = self.state / "opensearch.pid"
        return int(pid_file.read_text()) if pid_file.exists() else None

    def kill(self) -> None:
        """SIGKILL, as a crash: no flush, no clean shutdown."""
        pid = self.pid()
        assert pid is not None
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        deadline = time.monotonic() + 60
        while devstack.pid_alive(pid):
            assert time.monotonic() < deadline, f"pid {pid} outlived SIGKILL"
            time.sleep(0.2)


@pytest.fixture
def own_opensearch(tmp_path: Path) -> Iterator[OwnOpenSearch]:
    server = OwnOpenSearch(tmp_path / "devstack")
    server.stack("up")
    try:
        yield server
    finally:
        pid = server.pid()
        if pid is not None:
            devstack.stop_pid(pid)


def test_data_survives_a_restart_and_a_kill_until_wiped(own_opensearch: OwnOpenSearch) -> None:
    server = own_opensearch
    url = server.url
    first = httpx.put(f"{url}/kept/_doc/1", params={"refresh": "true"}, json={"n": 1}, timeout=30)
    assert first.status_code == 201, first.text

    server.stack("down")  # stops it by its PID
    assert not devstack.port_open(server.port)
    server.stack("up")
    assert httpx.get(f"{url}/kept/_doc/1", timeout=30).json()["_source"] == {"n": 1}

    # Acknowledged but never refreshed nor flushed: only the translog has it when the node dies.
    second = httpx.put(f"{url}/kept/_doc/2", json={"n": 2}, timeout=30)
    assert second.status_code == 201, second.text
    server.kill()
    server.stack("up")
    assert httpx.get(f"{url}/kept/_doc/2", timeout=30).json()["_source"] == {"n": 2}

    server.stack("up", "--wipe")
    assert httpx.get(f"{url}/kept/_doc/1", timeout=30).status_code == 404
    assert httpx.get(f"{url}/_cat/indices", params={"format": "json"}, timeout=30).json() == []
