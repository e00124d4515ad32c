"""`sidecar demo` (what `make run` runs): the main job end to end on the local stack.

1. produce the sample documents (JSON lines) to the demo pipeline's topic;
2. run the worker in this process until the group's committed offsets reach the topic's end;
3. print a semantic search over the enriched index: the query encoded by the same endpoint, turned
   into a bool `should` of `rank_feature` queries (`linear`, boost = the query token's weight),
   which scores documents by the sparse dot product.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from sidecar.errors import SidecarError
from sidecar.inference.loading import with_progress
from sidecar.inference.types import TaskType
from sidecar.observability.logging import configure_logging
from sidecar.pipelines.loader import load_pipeline
from sidecar.pipelines.schema import PipelineConfig
from sidecar.settings import Settings, load_settings
from sidecar.sources.kafka import client_options
from sidecar.worker.main import Worker

QUERIES = (
    "why is the sky blue during the day",
    "keeping my online accounts safe from hackers",
    "how do plants make their food",
    "what makes bread dough rise",
)


def load_stack_env(path: Path = Path(".devstack/env")) -> None:
    """Fill missing SIDECAR_* variables from `make stack-up`'s env file (when run outside make)."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        name, sep, value = line.removeprefix("export ").partition("=")
        if sep and name.strip().startswith("SIDECAR_"):
            os.environ.setdefault(name.strip(), value.strip().strip("'\""))


def rank_feature_query(field: str, weights: dict[str, float]) -> dict[str, Any]:
    return {
        "bool": {
            "should": [
                {"rank_feature": {"field": f"{field}.{token}", "linear": {}, "boost": weight}}
                for token, weight in weights.items()
            ]
        }
    }


async def _produce(config: PipelineConfig, lines: list[str]) -> dict[TopicPartition, int]:
    """Produce the samples; returns, per partition, the offset the group must reach."""
    kafka = config.kafka
    topic = (kafka.topics or ["sidecar-demo"])[0]
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**client_options(kafka), acks="all", enable_idempotence=True)
    await producer.start()
    targets: dict[TopicPartition, int] = {}
    try:
        sent = [
            await producer.send(
                topic, line.encode("utf-8"), str(json.loads(line).get("id", i)).encode("utf-8")
            )
            for i, line in enumerate(lines)
        ]
        for future in sent:
            meta = await future
            tp = TopicPartition(meta.topic, meta.partition)
            targets[tp] = max(targets.get(tp, 0), meta.offset + 1)
    finally:
        await producer.stop()
    return targets


async def _caught_up(config: PipelineConfig, targets: dict[TopicPartition, int]) -> bool:
    admin = AIOKafkaAdminClient(**client_options(config.kafka))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(config.kafka.group_id)
    finally:
        await admin.close()
    return all(tp in committed and committed[tp].offset >= end for tp, end in targets.items())


async def run_demo(pipeline: Path, lines: list[str], timeout_s: float, settings: Settings) -> int:
    configure_logging(settings.log_level, json_format=settings.log_json)
    config = load_pipeline(pipeline)
    field = config.fields[0]
    started = time.perf_counter()
    targets = await _produce(config, lines)
    print(f"produced {len(lines)} documents to Kafka topic {config.kafka.topics}")
    worker = Worker([config], settings)
    # The worker loads its models before consuming; a first run says so instead of sitting silent.
    await with_progress(worker.start(), f"starting the worker: loading the models of {config.endpoint_ids}")
    running = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + timeout_s
        while not await _caught_up(config, targets):
            if running.done() or time.monotonic() > deadline:
                print("the worker did not finish the sample documents in time")
                return 1
            await asyncio.sleep(1)
        print(f"worker indexed them into [{config.sink.index}] in {time.perf_counter() - started:.1f}s")
        service = worker.runners[0].enricher.service
        url = config.sink.urls[0].rstrip("/")
        async with httpx.AsyncClient(base_url=url, timeout=30) as engine:
            await engine.post(f"/{config.sink.index}/_refresh")
            for text in QUERIES:
                encoded = await service.infer(field.endpoint, [text], task_type=TaskType.SPARSE_EMBEDDING)
                weights = dict(encoded.results[0].embedding)
                body = {"query": rank_feature_query(field.target, weights), "size": 3, "_source": ["title"]}
                hits = (await engine.post(f"/{config.sink.index}/_search", json=body)).json()["hits"]["hits"]
                print(f"\nquery: {text}")
                strongest = sorted(weights.items(), key=lambda kv: -kv[1])[:6]
                print("  encoded as: " + ", ".join(f"{t} {w:.2f}" for t, w in strongest) + ", ...")
                for rank, hit in enumerate(hits, 1):
                    print(f"  {rank}. {hit['_score']:7.3f}  {hit['_source'].get('title', hit['_id'])}")
        return 0
    finally:
        worker.stop()
        await running
        await worker.close()


def demo_command(pipeline: Path, samples: Path, timeout_s: float, config: Path | None = None) -> int:
    load_stack_env()
    os.environ.setdefault("SIDECAR_LOG_LEVEL", "WARNING")  # the demo's own lines are the output
    try:
        settings = load_settings(config)
    except SidecarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    lines = [line for line in samples.read_text(encoding="utf-8").splitlines() if line.strip()]
    return asyncio.run(run_demo(pipeline, lines, timeout_s, settings))
