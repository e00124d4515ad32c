"""A real `sidecar serve` under a burst: 200 concurrent requests all answered (200 or 429), memory
bounded; and a graceful shutdown that lets the in-flight request finish.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.api.sidecar_process import SidecarProcess, run_sidecar

SPARSE = "/_inference/sparse_embedding/.splade-tiny"
SPARSE_ONLY = {"preload_endpoints": '[".splade-tiny"]'}  # load only the model these tests use
WORDS = "the sky above the port was the color of television tuned to a dead channel".split()


def _sentence(i: int) -> str:
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(6 + i % 9)) + f" {i}"


async def _burst(url: str, count: int) -> Counter[int]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120.0) as client:
        answers = await asyncio.gather(
            *(client.post(SPARSE, json={"input": _sentence(i)}) for i in range(count))
        )
    for answer in answers:
        if answer.status_code == 429:
            assert answer.json()["error"]["type"] == "es_rejected_execution_exception"
        elif answer.status_code == 200:
            assert answer.json()["sparse_embedding"][0]["embedding"]
    return Counter(answer.status_code for answer in answers)


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({"max_concurrent_requests": "40", **SPARSE_ONLY}, id="http-in-flight-limit"),
        pytest.param(
            {"max_queue": "24", "max_batch_requests": "8", **SPARSE_ONLY}, id="batching-queue-limit"
        ),
    ],
)
def test_200_concurrent_requests_are_all_answered(tmp_path: Path, limits: dict[str, str]) -> None:
    with run_sidecar(tmp_path, limits) as sidecar:
        asyncio.run(_burst(sidecar.url, 20))  # warm up connections and the model
        baseline = sidecar.rss_bytes()
        rounds = [asyncio.run(_burst(sidecar.url, 200)) for _ in range(2)]
        grown = sidecar.rss_bytes() - baseline
        for statuses in rounds:
            assert sum(statuses.values()) == 200
            assert set(statuses) <= {200, 429}, statuses
            assert statuses[200] > 0 and statuses[429] > 0, statuses
        assert grown < 200 * 2**20, f"RSS grew {grown / 2**20:.0f} MiB over two bursts"
        with httpx.Client(base_url=sidecar.url) as client:
            assert client.get("/_sidecar/health/ready").status_code == 200
            assert client.post(SPARSE, json={"input": "still serving"}).status_code == 200


def test_sigterm_lets_the_in_flight_request_finish(tmp_path: Path) -> None:
    heavy = {"input": [" ".join(WORDS * 20) + f" {i}" for i in range(48)]}
    # The request must be mid-flight when SIGTERM lands, so it is heavy; on a busy machine it may take
    # longer than Elasticsearch's default 30 s request timeout or the default 30 s grace period. What
    # is tested is draining, not speed, so both limits are generous here.
    patient = {**SPARSE_ONLY, "shutdown_grace_s": "600"}
    with run_sidecar(tmp_path, patient) as sidecar:
        result: dict[str, httpx.Response] = {}

        def send() -> None:
            with httpx.Client(base_url=sidecar.url, timeout=600.0) as client:
                result["response"] = client.post(SPARSE, params={"timeout": "10m"}, json=heavy)

        worker = threading.Thread(target=send)
        worker.start()
        _wait_for_in_flight(sidecar)
        exit_code = sidecar.stop(timeout=600.0)
        worker.join(timeout=600.0)
        response = result["response"]
        assert response.status_code == 200, response.text
        assert len(response.json()["sparse_embedding"]) == 48
        # uvicorn ends by re-raising the signal it handled, so the parent sees "terminated by SIGTERM".
        assert exit_code in (0, -signal.SIGTERM), sidecar.log_tail()
        assert '"sidecar API stopped"' in sidecar.log_path.read_text(encoding="utf-8")


def _wait_for_in_flight(sidecar: SidecarProcess, timeout: float = 30.0) -> None:
    """Until the server reports the heavy request in flight (so SIGTERM lands mid-request)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{sidecar.url}/metrics").text
        line = next(x for x in metrics.splitlines() if x.startswith("sidecar_http_inference_in_flight "))
        if float(line.split()[1]) >= 1:
            return
        time.sleep(0.01)
    raise AssertionError("the request never became in flight")
