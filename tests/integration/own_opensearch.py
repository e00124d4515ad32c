"""A test's own OpenSearch, beside the shared stack: other ports, its own state folder, the shared jar
cache, started and stopped with `devstack/stack.py` as a user would (stopped by its PID)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack import stack as devstack

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnOpenSearch:
    def __init__(self, state: Path, *, plugins: str | None = None) -> None:
        """`plugins`: the classpath plugins to load (comma-separated; "" for none); default the stack's."""
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
        if plugins is not None:
            self.env["SIDECAR_DEVSTACK_OPENSEARCH_PLUGINS"] = plugins

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
        """SIGKILL, as a crash: no flush, no clean shutdown; the next `up` finds the stale PID file."""
        pid = self.pid()
        assert pid is not None
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        deadline = time.monotonic() + 60
        while devstack.pid_alive(pid):
            assert time.monotonic() < deadline, f"pid {pid} outlived SIGKILL"
            time.sleep(0.2)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            devstack.stop_pid(pid)


@contextmanager
def own_opensearch(state: Path, *, plugins: str | None = None) -> Iterator[OwnOpenSearch]:
    server = OwnOpenSearch(state, plugins=plugins)
    server.stack("up")
    try:
        yield server
    finally:
        server.stop()
