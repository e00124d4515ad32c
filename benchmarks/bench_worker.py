"""Kafka worker benchmark: end-to-end docs/s (Kafka -> inference -> engine) against the inference
engine alone on the same documents, in one run; and the worker's memory at 10k versus 100k docs.

1. Throughput: SciFact documents (title + abstract) are encoded by the in-process inference service
   alone (requests of 256 texts, 15 in flight: the worker's default in-flight budget of about 4,000
   texts, within the service's queue of 4,096), then the same documents are
   produced to Kafka and a `sidecar worker` subprocess indexes them into OpenSearch; its time runs
   from the worker being ready (model loaded) and owning the topic's partitions (group joined) to
   the group's offsets reaching the topic's end.
   Goal: end to end >= 85% of the engine alone (I/O overlapped with inference, not added to it).
   Kafka and OpenSearch are this benchmark's own, on other CPUs than the worker and the engine alone
   (`benchmarks/pinned.py`); while the worker runs, this process only watches, from the servers' CPUs.
2. Memory: a worker indexes short documents (SciFact titles, cycled with new ids); its RSS is read
   from /proc when 10,000 and when 100,000 (or `--memory-docs`) documents are acknowledged.

Starts its own Kafka and OpenSearch (unless `python -m benchmarks` hands its own down). Writes the
"Kafka worker" section of docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_worker.py [--docs 1000] [--memory-docs 100000] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.pinned import (  # noqa: E402
    Layout,
    cpu_seconds,
    free_port,
    layout,
    pin,
    pin_sidecar,
    servers,
    servers_cpu_seconds,
)
from benchmarks.report import hardware, record_throughput, write_section  # noqa: E402
from sidecar.inference.types import TaskType  # noqa: E402
from sidecar.settings import load_settings  # noqa: E402
from sidecar.worker.main import open_local_service  # noqa: E402

CORPUS = REPO / "datasets" / "scifact" / "corpus.jsonl"
SIDECAR = Path(sys.executable).parent / "sidecar"
ENDPOINT = ".splade-tiny"
PARTITIONS = 4
SERVERS = ["kafka", "opensearch"]


def corpus() -> list[dict[str, str]]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines()]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def engine_alone(texts: list[str]) -> tuple[float, float]:
    """Docs/s of the inference service alone, fed as the worker feeds it, and its CPU seconds."""
    service = await open_local_service(load_settings(), [ENDPOINT])
    try:
        gate = asyncio.Semaphore(15)

        async def one(chunk: list[str]) -> None:
            async with gate:
                await service.infer(ENDPOINT, chunk, task_type=TaskType.SPARSE_EMBEDDING, timeout=600)

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(texts[i : i + 256]) for i in range(0, len(texts), 256)))
        return len(texts) / (time.perf_counter() - started), time.process_time() - cpu
    finally:
        await service.close()


async def produce(bootstrap: str, topic: str, docs: list[dict[str, str]]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for doc in docs:
            await producer.send(topic, json.dumps(doc).encode(), doc["id"].encode())
        await producer.flush()
    finally:
        await producer.stop()


async def wait_acknowledged(bootstrap: str, topic: str, marks: list[int], at_mark: Any = None) -> None:
    """Poll the messages of `topic` its group (named as the topic) has committed (the worker commits
    only acknowledged ones) until each of `marks` (ascending) is reached; `at_mark(count)` at each."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while marks:
            offsets = await admin.list_consumer_group_offsets(topic)
            done = sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)
            while marks and done >= marks[0]:
                marks.pop(0)
                if at_mark is not None:
                    at_mark(done)
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def cleanup(bootstrap: str, url: str, topic: str, index: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    async with httpx.AsyncClient(base_url=url) as client:
        await client.delete(f"/{index}")


class Worker:
    def __init__(self, workdir: Path, bootstrap: str, url: str, topic: str, input_fields: list[str]) -> None:
        self.port = free_port()
        config: dict[str, Any] = {
            "name": "bench",
            "source": {"kafka": {"bootstrap_servers": bootstrap, "topics": [topic], "group_id": topic}},
            "fields": [{"input": input_fields, "endpoint": ENDPOINT, "target": "ml.tokens"}],
            "sink": {"engine": "opensearch", "urls": [url], "index": topic},
            # Offsets are how this benchmark sees progress: commit them promptly (default 1 s) so the
            # clock stops when the last document is acknowledged, not up to a second later.
            "worker": {"commit_interval_ms": 100},
        }
        pipeline = workdir / f"{topic}.yaml"
        pipeline.write_text(yaml.safe_dump(config))
        self.log = (workdir / f"{topic}.log").open("wb")
        env = {
            **os.environ,
            "SIDECAR_REGISTRY_PATH": str(workdir / "endpoints.sqlite3"),
            "SIDECAR_LOG_JSON": "false",
        }
        self.proc = subprocess.Popen(
            [
                str(SIDECAR),
                "worker",
                "--pipeline",
                str(pipeline),
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self) -> None:
        """Until the worker is ready (model loaded, engine reachable) and owns all its partitions."""
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {self.proc.returncode}")
                try:
                    answer = await client.get(f"http://127.0.0.1:{self.port}/_sidecar/health/ready")
                    if answer.status_code == 200 and all(
                        p["partitions"] == PARTITIONS for p in answer.json()["pipelines"]
                    ):
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(120)
        self.log.close()


async def end_to_end(
    docs: list[dict[str, str]], workdir: Path, bootstrap: str, url: str, cpus: Layout
) -> tuple[float, float, float]:
    """Docs/s, and the CPU seconds of the worker and of the servers meanwhile."""
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    await produce(bootstrap, topic, docs)
    worker = Worker(workdir, bootstrap, url, topic, ["title", "text"])  # on the sidecar's CPUs
    pin(cpus.servers)  # this process only watches from now on: not on the worker's CPUs
    try:
        await worker.wait_ready()
        started = time.perf_counter()
        cpu, servers_cpu = cpu_seconds(worker.proc.pid), servers_cpu_seconds(SERVERS)
        await wait_acknowledged(bootstrap, topic, [len(docs)])
        rate = len(docs) / (time.perf_counter() - started)
        return rate, cpu_seconds(worker.proc.pid) - cpu, servers_cpu_seconds(SERVERS) - servers_cpu
    finally:
        pin_sidecar(cpus)
        worker.stop()
        await cleanup(bootstrap, url, topic, topic)


async def memory(total: int, workdir: Path, bootstrap: str, url: str) -> list[tuple[int, float]]:
    base = corpus()
    topic = f"bench-mem-{uuid.uuid4().hex[:8]}"
    docs = [{"id": f"{i}", "title": base[i % len(base)]["title"]} for i in range(total)]
    await produce(bootstrap, topic, docs)
    worker = Worker(workdir, bootstrap, url, topic, ["title"])
    samples: list[tuple[int, float]] = []
    try:
        await worker.wait_ready()
        marks = sorted({min(10_000, total), total})
        await wait_acknowledged(
            bootstrap, topic, marks, lambda done: samples.append((done, rss_mib(worker.proc.pid)))
        )
        return samples
    finally:
        worker.stop()
        await cleanup(bootstrap, url, topic, topic)


async def main(args: argparse.Namespace) -> None:
    cpus = layout()
    print(f"[bench] {cpus.describe()}", flush=True)
    docs = [{"id": d["_id"], "title": d["title"], "text": d["text"]} for d in corpus()[: args.docs]]
    with servers(SERVERS, cpus.servers) as urls, tempfile.TemporaryDirectory() as tmp:
        bootstrap, url = urls["kafka"], urls["opensearch"]
        pin_sidecar(cpus)
        workdir = Path(tmp)
        alone, alone_cpu = await engine_alone([f"{d['title']}\n{d['text']}" for d in docs])
        print(f"inference engine alone: {alone:.1f} docs/s")
        e2e, worker_cpu, servers_cpu = await end_to_end(docs, workdir, bootstrap, url, cpus)
        print(f"Kafka -> worker -> OpenSearch: {e2e:.1f} docs/s ({e2e / alone:.0%} of the engine alone)")
        per_doc = 1000 / len(docs)
        print(
            f"CPU seconds per 1,000 documents: engine alone {alone_cpu * per_doc:.1f}, worker "
            f"{worker_cpu * per_doc:.1f}, Kafka + OpenSearch {servers_cpu * per_doc:.1f}"
        )
        samples = await memory(args.memory_docs, workdir, bootstrap, url)
        for count, mib in samples:
            print(f"worker RSS after {count} documents: {mib:.0f} MiB")
    if args.no_write:
        return
    record_throughput("Kafka worker end to end (SciFact title+abstract)", e2e)
    rows = "\n".join(f"| {count:,} | {mib:.0f} MiB |" for count, mib in samples)
    per_1000 = 1000 / len(docs)
    body = f"""
`benchmarks/bench_worker.py --docs {args.docs} --memory-docs {args.memory_docs}` on {hardware()};
the benchmark's own Apache Kafka 4.1 (KRaft) and OpenSearch 2.19.1 on the same machine: {cpus.describe()}.

**Throughput** ({len(docs):,} SciFact documents, title + abstract, endpoint `{ENDPOINT}`, one run):

| path | docs/s |
| --- | --- |
| inference service alone (256-text requests, 15 in flight) | {alone:.1f} |
| Kafka -> `sidecar worker` -> OpenSearch bulk (partitions owned to all offsets committed) | {e2e:.1f} |
| end to end / engine alone (goal >= 85%) | {e2e / alone:.0%} |

CPU seconds per 1,000 documents: engine alone {alone_cpu * per_1000:.1f}, worker process
{worker_cpu * per_1000:.1f} (what it adds: {(worker_cpu - alone_cpu) * per_1000:+.1f}); Kafka and OpenSearch
{servers_cpu * per_1000:.1f} (their CPUs busy {servers_cpu * e2e / len(docs):.0%} of the run's wall time:
near 100% per server CPU, the servers bound the worker).

**Worker memory** (short documents: SciFact titles cycled with new ids; RSS of the worker process):

| documents acknowledged | RSS |
| --- | --- |
{rows}

Memory is bounded by `worker.max_in_flight_docs` (partitions pause above it), not by the stream's length.
"""
    write_section("Kafka worker", body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="SciFact documents for the throughput run.")
    parser.add_argument("--memory-docs", type=int, default=100_000, help="Documents for the memory run.")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/benchmarks.md alone.")
    asyncio.run(main(parser.parse_args()))
