"""Kafka killed (SIGKILL) and restarted under a worker that is dead-lettering to a topic on it.

A Kafka of the test's own (other ports, its own state folder, the shared jar cache; started with
`devstack/stack.py` as a user would, data kept across the restart) carries the source topic and the
dead-letter topic. While the worker is mid-stream the broker is killed, left down, and started
again. Dead letters that cannot reach the topic meanwhile are retried (the worker pauses, commits
nothing past them) and the worker keeps running; at the end, by id and by coordinates: every
document indexed, every poison message in the dead-letter index and in the topic, offsets at the end.
"""

from __future__ import annotations

import asyncio
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

DOCS = 1_200
POISON = 48  # 4 of each of the 12 kinds
PARTITIONS = 2


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[OwnServer]:
    with own_server("kafka", tmp_path / "devstack") as server:
        yield server


async def test_kafka_killed_and_restarted_while_dead_lettering(
    own_kafka: OwnServer, opensearch_url: str, tmp_path: Path
) -> None:
    names = Names()
    client = Engine(opensearch_url)
    client.own(names.index, names.dlq_index)
    bootstrap = own_kafka.address
    docs = scifact_titles(DOCS)
    poison = poison_of_every_kind(POISON)
    try:
        async with kafka_topics(bootstrap, names.topic, names.dlq_topic, partitions=PARTITIONS):
            produced = await produce(bootstrap, names.topic, mixed_stream(docs, poison))
            expected = {at: m.malformed for at, m in produced.at.items() if m.malformed}
            ends = await end_offsets(bootstrap, names.topic, PARTITIONS)
            pipeline = write_pipeline(
                tmp_path / "p.yaml",
                names,
                "opensearch",
                opensearch_url,
                bootstrap,
                source__kafka__max_poll_records=50,
                worker__max_in_flight_docs=200,
                errors__backoff={"initial_ms": 200, "max_ms": 2000},
            )
            worker = WorkerProcess(pipeline, tmp_path)
            try:
                await worker.wait_ready()

                async def a_third_done() -> bool:
                    return (
                        sum((await committed_offsets(bootstrap, names.group)).values())
                        >= sum(ends.values()) // 3
                    )

                await wait_for(a_third_done, 180, "a third of the stream committed")
                own_kafka.kill()
                await asyncio.sleep(5)  # down for a while: fetches, commits and dead letters fail meanwhile
                assert worker.proc.poll() is None, worker.log_tail()
                await asyncio.to_thread(own_kafka.up)

                async def done() -> bool:
                    if worker.proc.poll() is not None:
                        raise AssertionError(f"worker exited {worker.proc.returncode}:\n{worker.log_tail()}")
                    return await committed_offsets(bootstrap, names.group) == ends

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
            records = await read_topic(bootstrap, names.dlq_topic, len(expected))
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
