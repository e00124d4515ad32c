"""The local Kafka is a real broker: partitions, idempotent acks=all, groups, rebalances, commits."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration


async def make_topic(bootstrap: str, partitions: int) -> str:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        described = await admin.describe_topics([name])
        assert len(described[0]["partitions"]) == partitions
    finally:
        await admin.close()
    return name


async def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(count):
            await producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 4)
        await producer.flush()
    finally:
        await producer.stop()


def consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )


async def drain(c: AIOKafkaConsumer, want: int, timeout_s: float = 20.0) -> list[bytes]:
    values: list[bytes] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(values) < want and loop.time() < deadline:
        batches = await c.getmany(timeout_ms=500)
        for records in batches.values():
            values.extend(r.value for r in records if r.value is not None)
    return values


async def test_partitions_idempotent_produce_and_manual_commits_survive_restart(kafka_bootstrap: str) -> None:
    topic = await make_topic(kafka_bootstrap, 4)
    await produce(kafka_bootstrap, topic, 40)
    group = f"g-{uuid.uuid4().hex[:6]}"

    first = consumer(kafka_bootstrap, topic, group)
    await first.start()
    try:
        got = await drain(first, 40)
        assert sorted(got) == sorted(f"v{i}".encode() for i in range(40))
        # Commit only half of every partition, as a worker commits its acknowledged prefix.
        await first.commit({TopicPartition(topic, p): 5 for p in range(4)})
    finally:
        await first.stop()

    second = consumer(kafka_bootstrap, topic, group)
    await second.start()
    try:
        again = await drain(second, 20)
        # Partition p holds v{p}, v{p+4}, ...: offsets 5..9 of every partition are exactly v20..v39.
        assert sorted(again) == sorted(f"v{i}".encode() for i in range(20, 40))
        for p in range(4):
            assert await second.committed(TopicPartition(topic, p)) == 5
    finally:
        await second.stop()


async def test_second_member_joins_and_partitions_rebalance(kafka_bootstrap: str) -> None:
    topic = await make_topic(kafka_bootstrap, 4)
    group = f"g-{uuid.uuid4().hex[:6]}"
    a = consumer(kafka_bootstrap, topic, group)
    await a.start()
    b = consumer(kafka_bootstrap, topic, group)
    try:
        await drain(a, 1, timeout_s=3)
        assert len(a.assignment()) == 4
        await b.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while loop.time() < deadline:
            # Both members must keep polling for the group to finish rebalancing.
            await asyncio.gather(a.getmany(timeout_ms=200), b.getmany(timeout_ms=200))
            if len(a.assignment()) == 2 and len(b.assignment()) == 2:
                break
        assert len(a.assignment()) == 2
        assert len(b.assignment()) == 2
        assert a.assignment().isdisjoint(b.assignment())
    finally:
        await b.stop()
        await a.stop()
