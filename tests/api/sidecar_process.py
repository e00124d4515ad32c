"""Start `sidecar serve` as a subprocess on a free port and stop it by its PID.

Only the standard library is used here, so the same tests run from a virtual environment that has
nothing but an `elasticsearch` client (see run_es8.sh); the server itself runs from the project's
environment (`SIDECAR_SERVER_PYTHON`, default `.venv/bin/python`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SidecarProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful shutdown), then SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return int(self.process.returncode)


def get_json(url: str, timeout: float = 2.0) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own loopback URL
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return int(err.code), json.loads(err.read() or b"{}")


@contextlib.contextmanager
def run_sidecar(
    workdir: Path, settings: dict[str, str] | None = None, *, startup_timeout: float = 180.0
) -> Iterator[SidecarProcess]:
    """A started, ready sidecar; `settings` adds SIDECAR_* values, e.g. `{"max_queue": "16"}`."""
    port = free_port()
    python = os.environ.get("SIDECAR_SERVER_PYTHON", str(REPO / ".venv" / "bin" / "python"))
    environment = {
        **os.environ,
        "SIDECAR_HOST": "127.0.0.1",
        "SIDECAR_PORT": str(port),
        "SIDECAR_REGISTRY_PATH": str(workdir / "endpoints.sqlite3"),
        "SIDECAR_LOG_JSON": "true",
        **{f"SIDECAR_{key.upper()}": value for key, value in (settings or {}).items()},
    }
    log_path = workdir / f"sidecar-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [python, "-m", "sidecar.cli", "serve"],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    sidecar = SidecarProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"sidecar exited with {process.returncode}:\n{sidecar.log_tail()}")
            with contextlib.suppress(OSError):
                status, _ = get_json(f"{sidecar.url}/_sidecar/health/ready")
                if status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"sidecar not ready after {startup_timeout}s:\n{sidecar.log_tail()}")
            time.sleep(0.2)
        yield sidecar
    finally:
        sidecar.stop()
