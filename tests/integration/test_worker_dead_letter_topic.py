"""Dead letters larger than the dead-letter topic accepts are stored cut to fit, and never stall it.

The dead-letter topic is created with `max.message.bytes=8192`; poison messages of about 20 KB (under
the pipeline's `max_message_bytes`, over the topic's limit) are spread over many concurrent batches
with small ones between them. An idempotent producer that sends a record the broker refuses used to
fail every later batch (`OutOfOrderSequenceNumber`) and the offsets stopped. Every valid document must
be indexed, every poison message be in the topic (the large ones truncated, with headers saying so)
and the group's offsets reach the end of the topic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.worker_harness import (
    Engine,
    Names,
    Outgoing,
    WorkerProcess,
    committed_offsets,
    end_offsets,
    kafka_topics,
    mixed_stream,
    produce,
    read_topic,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration

DOCS = 600
LARGE = 30
SMALL = 30
TOPIC_LIMIT = 8192
LARGE_BYTES = 20_000


async def test_dead_letters_over_the_topic_limit_are_truncated_and_nothing_stalls(
    opensearch_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = Names()
    client = Engine(opensearch_url)
    client.own(names.index, names.dlq_index)
    large = [
        Outgoing(f"large-{i}".encode(), b'{"title": "' + b"x" * LARGE_BYTES, "invalid_json") for i in range(LARGE)
    ]
    small = [Outgoing(f"small-{i}".encode(), json.dumps([i]).encode(), "not_an_object") for i in range(SMALL)]
    docs = scifact_titles(DOCS)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(names.dlq_topic, 1, 1, topic_configs={"max.message.bytes": str(TOPIC_LIMIT)})]
        )
        async with kafka_topics(kafka_bootstrap, names.topic):
            await produce(kafka_bootstrap, names.topic, mixed_stream(docs, large + small))
            pipeline = write_pipeline(
                tmp_path / "p.yaml",
                names,
                "opensearch",
                opensearch_url,
                kafka_bootstrap,
                source__kafka__max_poll_records=40,
                sink__bulk={"max_docs": 40, "concurrency": 4},
            )
            worker = WorkerProcess(pipeline, tmp_path)
            try:
                await worker.wait_ready()
                ends = await end_offsets(kafka_bootstrap, names.topic, 4)

                async def done() -> bool:
                    if worker.proc.poll() is not None:
                        raise AssertionError(f"worker exited {worker.proc.returncode}:\n{worker.log_tail()}")
                    return await committed_offsets(kafka_bootstrap, names.group) == ends

                await wait_for(done, 180, "the offsets to reach the end of the topic")
                assert worker.terminate() == 0, worker.log_tail()
            finally:
                worker.ensure_stopped()

            assert sorted(await client.docs(names.index, False)) == sorted(d["id"] for d in docs)
            records = await read_topic(kafka_bootstrap, names.dlq_topic, LARGE + SMALL)
            by_key = {r.key.decode(): r for r in records}
            assert len(records) == len(by_key) == LARGE + SMALL  # each once, none lost
            for message in large:
                record = by_key[message.key.decode()]  # type: ignore[union-attr]
                headers = dict(record.headers)
                assert headers["sidecar.payload.truncated"] == b"true"
                assert int(headers["sidecar.payload.original.bytes"]) == len(message.value)
                assert headers["sidecar.error.type"] == b"invalid_json"
                assert 0 < len(record.value) < TOPIC_LIMIT and message.value.startswith(record.value)
            for message in small:
                record = by_key[message.key.decode()]  # type: ignore[union-attr]
                assert record.value == message.value and "sidecar.payload.truncated" not in dict(record.headers)
            letters = await client.docs(names.dlq_index)  # the index keeps the whole message
            assert len(letters) == LARGE + SMALL
            assert max(len(v["message"]["value"]) for v in letters.values()) == len(large[0].value)
    finally:
        try:
            await admin.delete_topics([names.dlq_topic])
        finally:
            await admin.close()
            await client.close()
