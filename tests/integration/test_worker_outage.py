"""The engine unreachable for 30 s mid-stream (refused, then hanging): the worker pauses and recovers.

A fault-injecting proxy stands between the worker and the shared engine (which keeps running).
Throughout the run a monitor reads the group's committed offsets and checks every message below
them: its document (or its dead letter) must already have been acknowledged by the engine.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.fault_proxy import FaultProxy
from tests.integration.worker_harness import (
    Engine,
    Names,
    Produced,
    WorkerProcess,
    committed_offsets,
    kafka_topics,
    malformed_messages,
    mixed_stream,
    produce,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration

DOCS = 1_000
POISON = 20
MAX_IN_FLIGHT = 500


class CommitMonitor:
    """Checks, commit by commit, that no offset is committed past an unacknowledged message."""

    def __init__(self, bootstrap: str, names: Names, produced: Produced, proxy: FaultProxy) -> None:
        self.bootstrap = bootstrap
        self.names = names
        self.produced = produced
        self.proxy = proxy
        self.checked: dict[int, int] = {}
        self.violations: list[str] = []
        self.commits_seen = 0

    def check(self, offsets: dict[int, int]) -> None:
        for partition, committed in offsets.items():
            start = self.checked.get(partition, 0)
            if committed > start:
                self.commits_seen += 1
            for offset in range(start, committed):
                message = self.produced.at[(partition, offset)]
                acked_as = (
                    f"{self.names.topic}+{partition}+{offset}"
                    if message.malformed
                    else self.produced.doc_id(partition, offset)
                )
                if acked_as not in self.proxy.acked:
                    self.violations.append(
                        f"offset {partition}:{offset} committed before [{acked_as}] was acknowledged"
                    )
            self.checked[partition] = max(start, committed)

    async def run(self) -> None:
        while True:
            self.check(await committed_offsets(self.bootstrap, self.names.group))
            await asyncio.sleep(0.2)


async def test_engine_outage_pauses_then_recovers_without_loss(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    docs = scifact_titles(DOCS)
    proxy = FaultProxy(url)
    await proxy.start()
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic):
        produced = await produce(kafka_bootstrap, names.topic, mixed_stream(docs, malformed_messages(POISON)))
        pipeline = write_pipeline(
            tmp_path / "p.yaml",
            names,
            engine_name,
            proxy.url,
            kafka_bootstrap,
            source__kafka__max_poll_records=100,
            worker__max_in_flight_docs=MAX_IN_FLIGHT,
            errors__backoff={"initial_ms": 200, "max_ms": 2000},
            sink__request_timeout_s=3,
        )
        monitor = CommitMonitor(kafka_bootstrap, names, produced, proxy)
        watching = asyncio.create_task(monitor.run())
        worker = WorkerProcess(pipeline, tmp_path)
        try:
            await worker.wait_ready()

            async def started() -> bool:
                return await client.count(names.index) >= DOCS // 5

            await wait_for(started, 300, "the stream to be under way")
            outage = asyncio.create_task(proxy.outage(refuse_s=15, hang_s=15))
            await asyncio.sleep(8)
            during = await client.count(names.index)
            assert await worker.metric("sidecar_worker_paused", reason="engine") == 1
            ready = await worker.get("/_sidecar/health/ready")
            assert ready is not None and ready.status_code == 503
            assert (await worker.get("/_sidecar/health/live")).status_code == 200  # type: ignore[union-attr]
            assert await worker.metric("sidecar_worker_in_flight_docs") <= MAX_IN_FLIGHT
            refused_retries = await worker.metric("sidecar_worker_retried_total", kind="request")
            assert refused_retries > 0  # connections refused: whole requests retried, nothing dead-lettered
            await outage
            assert proxy.hung > 0  # and requests that hung until the client's timeout
            assert await client.count(names.index) == during < DOCS  # the engine really saw nothing

            async def finished() -> bool:
                return (
                    await client.count(names.index) >= DOCS and await client.count(names.dlq_index) >= POISON
                )

            await wait_for(finished, 300, "recovery after the outage")
            await worker.wait_ready(30)
            assert await worker.metric("sidecar_worker_paused", reason="engine") == 0
            assert await worker.metric("sidecar_worker_retried_total", kind="request") > 0
            assert worker.terminate() == 0, worker.log_tail()
            monitor.check(await committed_offsets(kafka_bootstrap, names.group))
            assert monitor.violations == []
            assert monitor.commits_seen > 4
            assert sorted(monitor.checked.values()) and sum(monitor.checked.values()) == DOCS + POISON
            assert await client.count(names.index) == DOCS and await client.count(names.dlq_index) == POISON
        finally:
            watching.cancel()
            worker.ensure_stopped()
            await proxy.close()
            await client.delete(names.index, names.dlq_index)
