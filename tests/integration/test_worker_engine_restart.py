"""OpenSearch paused (SIGSTOP) and later killed (SIGKILL) and restarted under a worker with poison.

An OpenSearch of the test's own (devstack, its own ports and state, data kept across the restart)
is the sink and the dead-letter index. A quarter of the way through it is frozen until the worker
reports it unreachable, then resumed; half way through it is killed and started again. At the end,
by id and by coordinates: every document indexed (acknowledged writes survive the kill through the
translog), every poison message dead-lettered once in the index with its type and a reason and in
the dead-letter topic, the offsets at the end.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.worker_harness import (
    Engine,
    Names,
    OwnServer,
    WorkerProcess,
    committed_offsets,
    end_offsets,
    kafka_topics,
    mixed_stream,
    own_server,
    poison_of_every_kind,
    produce,
    read_topic,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration

DOCS = 1_500
POISON = 48  # 4 of each of the 12 kinds
PARTITIONS = 2


@pytest.fixture
def own_opensearch(tmp_path: Path) -> Iterator[OwnServer]:
    with own_server("opensearch", tmp_path / "devstack") as server:
        yield server


async def test_opensearch_paused_then_killed_and_restarted(
    own_opensearch: OwnServer, kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = Names()
    client = Engine(own_opensearch.address)
    docs = scifact_titles(DOCS)
    try:
        async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic, partitions=PARTITIONS):
            produced = await produce(
                kafka_bootstrap, names.topic, mixed_stream(docs, poison_of_every_kind(POISON))
            )
            expected = {at: m.malformed for at, m in produced.at.items() if m.malformed}
            ends = await end_offsets(kafka_bootstrap, names.topic, PARTITIONS)
            total = sum(ends.values())
            pipeline = write_pipeline(
                tmp_path / "p.yaml",
                names,
                "opensearch",
                own_opensearch.address,
                kafka_bootstrap,
                source__kafka__max_poll_records=50,
                worker__max_in_flight_docs=200,
                errors__backoff={"initial_ms": 200, "max_ms": 2000},
            )
            worker = WorkerProcess(pipeline, tmp_path)

            async def committed() -> int:
                if worker.proc.poll() is not None:
                    raise AssertionError(f"worker exited {worker.proc.returncode}:\n{worker.log_tail()}")
                return sum((await committed_offsets(kafka_bootstrap, names.group)).values())

            async def engine_unreachable() -> bool:
                response = await worker.get("/_sidecar/health/ready")
                states = response.json().get("pipelines", []) if response is not None else []
                return any(not s.get("engine_reachable", True) for s in states)

            try:
                await worker.wait_ready()

                async def a_quarter() -> bool:
                    return await committed() >= total // 4

                await wait_for(a_quarter, 180, "a quarter of the stream committed")
                own_opensearch.signal(signal.SIGSTOP)
                try:
                    await wait_for(engine_unreachable, 120, "the worker to see the frozen engine")
                    frozen_at = await committed()
                finally:
                    own_opensearch.signal(signal.SIGCONT)

                async def half() -> bool:
                    return await committed() >= max(total // 2, frozen_at + 1)

                await wait_for(half, 180, "half of the stream committed after the pause")
                own_opensearch.kill()
                await wait_for(engine_unreachable, 120, "the worker to see the engine gone")
                await asyncio.to_thread(own_opensearch.up)

                async def done() -> bool:
                    await committed()  # raises if the worker exited
                    return await committed_offsets(kafka_bootstrap, names.group) == ends

                await wait_for(done, 300, "the offsets to reach the end after the restart")
                assert worker.terminate() == 0, worker.log_tail()
            finally:
                worker.ensure_stopped()

            assert sorted(await client.docs(names.index, False)) == sorted(d["id"] for d in docs)
            letters = await client.docs(names.dlq_index)
            found = {
                (v["source"]["partition"], v["source"]["offset"]): v["error"]["type"]
                for v in letters.values()
            }
            assert found == expected
            assert all(v["error"]["reason"] for v in letters.values())
            records = await read_topic(kafka_bootstrap, names.dlq_topic, len(expected))
            in_topic = {
                (
                    int(dict(r.headers)["sidecar.source.partition"]),
                    int(dict(r.headers)["sidecar.source.offset"]),
                )
                for r in records
            }
            assert in_topic == set(expected)
    finally:
        await client.close()
