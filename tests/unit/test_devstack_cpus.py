"""SIDECAR_DEVSTACK_CPUS: a server started by the stack runs on those CPUs only (the benchmarks' pinning)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devstack import stack


def allowed_cpus(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no Cpus_allowed_list")


def test_a_pinned_server_runs_on_the_given_cpus_under_its_own_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpu = min(os.sched_getaffinity(0))
    monkeypatch.setattr(stack, "STATE", tmp_path)
    monkeypatch.setattr(stack, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(stack, "CPUS", str(cpu))
    ready = tmp_path / "ready"
    # A stand-in server: writes its own affinity, then waits to be stopped.
    script = f"import os, time; open({str(ready)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    server = stack.Server(
        "pinned", 1, "-", "UNUSED", lambda _data: [sys.executable, "-c", script], ready.exists
    )
    server.up()
    try:
        pid = server.pid()
        assert pid is not None
        assert ready.read_text() == str(pid)  # taskset exec'd the server: stopping the PID stops it
        assert allowed_cpus(pid) == str(cpu)
    finally:
        server.down()
    assert server.pid() is None


def test_without_the_variable_commands_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack, "CPUS", "")
    assert stack.pinned(["java", "-version"]) == ["java", "-version"]
