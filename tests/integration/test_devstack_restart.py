"""The devstack keeps OpenSearch's data across a restart of that one server, so "the engine went
away and came back" can be tested; `up --wipe` is the one way to start it empty.

The test's own OpenSearch (`own_server`) is stopped by its PID, killed, and started again with
`devstack/stack.py`, as a user would.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from devstack import stack as devstack
from tests.integration.worker_harness import own_server

pytestmark = pytest.mark.integration


def test_data_survives_a_restart_and_a_kill_until_wiped(tmp_path: Path) -> None:
    with own_server("opensearch", tmp_path / "devstack") as server:
        url = server.address
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
