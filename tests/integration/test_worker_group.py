"""Two workers in one consumer group, one joining late and the first leaving: nothing lost or duplicated.

Documents trickle into the topic for the whole test, so both rebalances (the join, then the leave)
happen while messages are flowing and batches are in flight.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.worker_harness import (
    Engine,
    Names,
    WorkerProcess,
    committed_offsets,
    end_offsets,
    kafka_topics,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration

DOCS = 1_200
TRICKLE = 15  # documents every half second: the stream lasts about 40 s


async def trickle(bootstrap: str, topic: str, docs: list[dict[str, str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(0, len(docs), TRICKLE):
            for doc in docs[i : i + TRICKLE]:
                await producer.send(topic, json.dumps(doc).encode(), doc["id"].encode())
            await producer.flush()
            await asyncio.sleep(0.5)
    finally:
        await producer.stop()


async def test_late_join_and_leave_rebalance_without_loss(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    docs = scifact_titles(DOCS)
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic, partitions=6):
        pipeline = write_pipeline(
            tmp_path / "p.yaml",
            names,
            engine_name,
            url,
            kafka_bootstrap,
            source__kafka__max_poll_records=50,
            worker__max_in_flight_docs=200,
        )
        stream = asyncio.create_task(trickle(kafka_bootstrap, names.topic, docs))
        first = WorkerProcess(pipeline, tmp_path, "first")
        second: WorkerProcess | None = None
        try:
            await first.wait_ready()

            async def under_way() -> bool:
                return await client.count(names.index) >= 200

            await wait_for(under_way, 300, "the first worker under way")
            second = WorkerProcess(pipeline, tmp_path, "second")
            await second.wait_ready()
            late = second

            async def second_consumes() -> bool:
                return await late.metric("sidecar_worker_consumed_total") > 0

            await wait_for(second_consumes, 120, "the late worker to receive partitions and consume")
            assert not stream.done(), "the stream ended before the second worker joined: raise DOCS"
            first_consumed = await first.metric("sidecar_worker_consumed_total")
            assert first.terminate() == 0, first.log_tail()  # leaves the group: its partitions move over
            assert not stream.done(), "the stream ended before the first worker left: raise DOCS"
            await stream

            async def all_indexed() -> bool:
                return await client.count(names.index) >= DOCS

            await wait_for(all_indexed, 300, "the remaining documents by the second worker")
            second_consumed = await second.metric("sidecar_worker_consumed_total")
            assert second.terminate() == 0, second.log_tail()
            assert first_consumed > 0 and second_consumed > 0

            assert await client.count(names.index) == DOCS
            assert sorted(await client.docs(names.index, False)) == sorted(d["id"] for d in docs)
            assert await committed_offsets(kafka_bootstrap, names.group) == await end_offsets(
                kafka_bootstrap, names.topic, 6
            )
        finally:
            stream.cancel()
            first.ensure_stopped()
            if second is not None:
                second.ensure_stopped()
            await client.delete(names.index, names.dlq_index)
