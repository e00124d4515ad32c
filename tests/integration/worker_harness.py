"""What the worker integration tests share: data, topics, engine checks, worker processes.

The worker always runs as a real subprocess (`.venv/bin/sidecar worker`), so SIGKILL is real; each
test uses its own topics, group and indices and deletes them afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
SCIFACT = ROOT / "datasets" / "scifact"
SIDECAR = Path(sys.executable).parent / "sidecar"
MAX_MESSAGE_BYTES = 64 * 1024


# --- data ------------------------------------------------------------------------------------------
def scifact_titles(count: int) -> list[dict[str, str]]:
    """`count` SciFact documents (id + title), every judged document included."""
    judged = {line.split("\t")[1] for line in (SCIFACT / "qrels.tsv").read_text().splitlines()[1:]}
    corpus = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").read_text().splitlines()]
    chosen = [d for d in corpus if d["_id"] in judged]
    chosen += [d for d in corpus if d["_id"] not in judged][: max(0, count - len(chosen))]
    return [{"id": d["_id"], "title": d["title"]} for d in chosen[:count]]


def scifact_queries() -> tuple[list[dict[str, str]], dict[str, set[str]]]:
    queries = [json.loads(line) for line in (SCIFACT / "queries.jsonl").read_text().splitlines()]
    qrels: dict[str, set[str]] = {}
    for line in (SCIFACT / "qrels.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, _ = line.split("\t")
        qrels.setdefault(query_id, set()).add(doc_id)
    return queries, qrels


@dataclass(frozen=True)
class Outgoing:
    key: bytes | None
    value: bytes
    malformed: str | None = None  # the error type the worker must report


def malformed_messages(count: int) -> list[Outgoing]:
    """Poison of every kind the worker must dead-letter, cycling through the kinds."""
    kinds: list[tuple[str, Callable[[int], tuple[bytes | None, bytes]]]] = [
        ("invalid_json", lambda i: (f"bad-{i}".encode(), b'{"title": "unterminated')),
        ("invalid_encoding", lambda i: (f"bad-{i}".encode(), b'{"title": "\xff\xfe latin"}')),
        ("not_an_object", lambda i: (f"bad-{i}".encode(), json.dumps(["a", i]).encode())),
        ("missing_input_field", lambda i: (f"bad-{i}".encode(), json.dumps({"name": "no title"}).encode())),
        ("invalid_input_field", lambda i: (f"bad-{i}".encode(), json.dumps({"title": i}).encode())),
        (
            "message_too_large",
            lambda i: (f"bad-{i}".encode(), json.dumps({"title": "x" * MAX_MESSAGE_BYTES}).encode()),
        ),
        ("missing_document_id", lambda i: (None, json.dumps({"title": "no key"}).encode())),
    ]
    out = []
    for i in range(count):
        kind, make = kinds[i % len(kinds)]
        key, value = make(i)
        out.append(Outgoing(key, value, kind))
    return out


def poison_of_every_kind(count: int) -> list[Outgoing]:
    """`malformed_messages`' kinds and those that once stopped the worker for good (JSON nested
    5,000 levels, lone surrogate escapes in another field and in the input field), plus tombstones
    and an empty array, cycling through the 12 kinds."""
    deep = b'{"title": "t", "n": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    extra: list[tuple[str, str, bytes | None]] = [
        ("invalid_json", "deep", deep),
        ("invalid_text", "other", b'{"title": "t", "note": "\\udc00"}'),
        ("invalid_text", "input", b'{"title": "x\\ud800"}'),
        ("tombstone", "null", None),  # dead-lettered by default (errors.on_null)
        ("not_an_object", "list", b"[]"),
    ]
    rounds = -(-count // 12)
    classic = malformed_messages(7 * rounds)
    out: list[Outgoing] = []
    for r in range(rounds):
        out += classic[7 * r : 7 * r + 7]
        out += [Outgoing(f"poison-{r}-{tag}".encode(), v, kind) for kind, tag, v in extra]  # type: ignore[arg-type]
    return out[:count]


def mixed_stream(docs: list[dict[str, str]], poison: list[Outgoing], seed: int = 5) -> list[Outgoing]:
    stream = [Outgoing(d["id"].encode(), json.dumps(d).encode()) for d in docs]
    rng = random.Random(seed)
    for message in poison:
        stream.insert(rng.randrange(len(stream) + 1), message)
    return stream


# --- kafka -----------------------------------------------------------------------------------------
@asynccontextmanager
async def kafka_topics(bootstrap: str, *names: str, partitions: int = 4) -> AsyncIterator[None]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
        yield
    finally:
        try:
            await admin.delete_topics(list(names))
        finally:
            await admin.close()


@dataclass
class Produced:
    """Where each message landed: (partition, offset) -> the message."""

    at: dict[tuple[int, int], Outgoing] = field(default_factory=dict)

    def doc_id(self, partition: int, offset: int) -> str | None:
        key = self.at[(partition, offset)].key
        return None if key is None else key.decode("utf-8", "replace")


async def produce(bootstrap: str, topic: str, messages: list[Outgoing]) -> Produced:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=4 * MAX_MESSAGE_BYTES,
    )
    await producer.start()
    produced = Produced()
    try:
        futures = [await producer.send(topic, m.value, m.key) for m in messages]
        for message, future in zip(messages, futures, strict=True):
            meta = await future
            produced.at[(meta.partition, meta.offset)] = message
    finally:
        await producer.stop()
    return produced


async def read_topic(bootstrap: str, topic: str, expect: int, timeout_s: float = 30) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < expect and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += batch
        for batch in (await consumer.getmany(timeout_ms=1000)).values():  # anything beyond `expect`
            records += batch
    finally:
        await consumer.stop()
    return records


async def committed_offsets(bootstrap: str, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


# --- engines ---------------------------------------------------------------------------------------
class Engine:
    """Plain HTTP checks that read the same on Elasticsearch and OpenSearch."""

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=60)
        self._owned: list[str] = []

    def own(self, *indices: str) -> None:
        """Delete these indices when the client closes, whatever the test's outcome."""
        self._owned += indices

    async def count(self, index: str) -> int:
        await self.client.post(f"/{index}/_refresh")
        response = await self.client.get(f"/{index}/_count")
        return int(response.json().get("count", 0)) if response.status_code == 200 else 0

    async def docs(self, index: str, source: list[str] | bool = True) -> dict[str, Any]:
        await self.client.post(f"/{index}/_refresh")
        body = {"query": {"match_all": {}}, "size": 10_000, "_source": source}
        response = await self.client.post(f"/{index}/_search", json=body)
        response.raise_for_status()
        return {h["_id"]: h.get("_source", {}) for h in response.json()["hits"]["hits"]}

    async def search(self, index: str, query: dict[str, Any], size: int = 10) -> list[tuple[str, float]]:
        response = await self.client.post(
            f"/{index}/_search", json={"query": query, "size": size, "_source": False}
        )
        response.raise_for_status()
        return [(h["_id"], float(h["_score"])) for h in response.json()["hits"]["hits"]]

    async def delete(self, *indices: str) -> None:
        for index in indices:
            await self.client.delete(f"/{index}")

    async def close(self) -> None:
        try:
            await self.delete(*self._owned)
            await self.delete_templates(*self._owned)
        finally:
            await self.client.aclose()

    async def delete_templates(self, *indices: str) -> None:
        """Delete the index templates `sidecar setup` installed for these indices (and nothing else)."""
        answer = (await self.client.get("/_index_template/sidecar-*")).json()
        for template in answer.get("index_templates", []):
            patterns = template["index_template"]["index_patterns"]
            if all(p in indices or p.rstrip("*").rstrip("-") in indices for p in patterns):
                await self.client.delete(f"/_index_template/{template['name']}")


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, every_s: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


# --- pipelines and worker processes ----------------------------------------------------------------
@dataclass
class Names:
    """Unique names for one test."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def topic(self) -> str:
        return f"wt-{self.tag}"

    @property
    def dlq_topic(self) -> str:
        return f"wt-{self.tag}-dlq"

    @property
    def group(self) -> str:
        return f"wt-{self.tag}"

    @property
    def index(self) -> str:
        return f"wt-{self.tag}"

    @property
    def dlq_index(self) -> str:
        return f"wt-{self.tag}-dlq"


def write_pipeline(
    path: Path, names: Names, engine: str, engine_url: str, bootstrap: str, **extra: Any
) -> Path:
    config: dict[str, Any] = {
        "name": f"it-{names.tag}",
        "source": {
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topics": [names.topic],
                "group_id": names.group,
                "max_message_bytes": MAX_MESSAGE_BYTES,
                "max_poll_records": 250,
                "session_timeout_ms": 6000,
                "heartbeat_interval_ms": 1000,
            }
        },
        "fields": [
            {"input": "title", "endpoint": ".splade-tiny", "target": "ml.tokens", "type": "rank_features"}
        ],
        "sink": {
            "engine": engine,
            "urls": [engine_url],
            "index": names.index,
            "request_timeout_s": 5,
            "bulk": {"max_docs": 250, "concurrency": 2},
        },
        "errors": {
            "dead_letter_topic": names.dlq_topic,
            "dead_letter_index": names.dlq_index,
            "backoff": {"initial_ms": 100, "max_ms": 2000},
        },
        "worker": {"commit_interval_ms": 300, "max_in_flight_docs": 1000},
    }
    for dotted, value in extra.items():
        node = config
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path.write_text(yaml.safe_dump(config))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    """`sidecar worker` as a child process with its own log file and metrics port."""

    def __init__(
        self, pipeline: Path, workdir: Path, name: str = "worker", *, json_logs: bool = False
    ) -> None:
        self.pipeline = pipeline
        self.log_path = workdir / f"{name}-{uuid.uuid4().hex[:4]}.log"
        self.port = free_port()
        env = {
            **os.environ,
            "SIDECAR_LOG_JSON": str(json_logs).lower(),
            "SIDECAR_LOG_LEVEL": "INFO",
            "SIDECAR_REGISTRY_PATH": str(workdir / "endpoints.sqlite3"),
        }
        self._log = self.log_path.open("wb")
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
            cwd=workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def get(self, path: str) -> httpx.Response | None:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return await client.get(f"http://127.0.0.1:{self.port}{path}")
        except httpx.HTTPError:
            return None

    async def wait_ready(self, timeout_s: float = 120) -> None:
        async def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            response = await self.get("/_sidecar/health/ready")
            return response is not None and response.status_code == 200

        await wait_for(ready, timeout_s, "the worker to be ready")

    async def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        response = await self.get("/metrics")
        if response is None:
            return 0.0
        total = 0.0
        for line in response.text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def terminate(self, timeout_s: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        self._log.close()
        return code

    def log_tail(self, lines: int = 60) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def ensure_stopped(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if not self._log.closed:
            self._log.close()


# --- servers of a test's own -----------------------------------------------------------------------
class OwnServer:
    """A devstack server (`kafka` or `opensearch`) of the test's own: other ports, its own state
    folder, the shared jar cache; started with `devstack/stack.py` as a user would, its data kept
    across a restart. Paused, killed and restarted by its PID, so the shared stack is never touched."""

    def __init__(self, name: str, state: Path, *, plugins: str | None = None) -> None:
        """`plugins` (OpenSearch): the classpath plugins to load, comma-separated, "" for none;
        default the stack's."""
        from devstack import stack as devstack

        self.name = name
        self.state = state
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}" if name == "kafka" else f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SIDECAR_DEVSTACK_DIR": str(state),
            "SIDECAR_DEVSTACK_CACHE": str(devstack.CACHE),
            f"SIDECAR_DEVSTACK_{name.upper()}_PORT": str(self.port),
            # the controller (Kafka) or transport (OpenSearch) port
            f"SIDECAR_DEVSTACK_{name.upper()}_{'CONTROLLER' if name == 'kafka' else 'TRANSPORT'}_PORT": str(
                free_port()
            ),
        }
        if plugins is not None:
            self.env["SIDECAR_DEVSTACK_OPENSEARCH_PLUGINS"] = plugins
        self._ready_timeout_s = devstack.READY_TIMEOUT_S + 120

    def stack(self, *args: str) -> None:
        """`devstack/stack.py <args> <name>` for this server (`up`, `down`, `up --wipe`)."""
        done = subprocess.run(
            [sys.executable, str(ROOT / "devstack" / "stack.py"), *args, self.name],
            env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=self._ready_timeout_s,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    def up(self) -> None:
        self.stack("up")

    def pid(self) -> int | None:
        pid_file = self.state / f"{self.name}.pid"
        return int(pid_file.read_text()) if pid_file.exists() else None

    def signal(self, sig: signal.Signals) -> None:
        pid = self.pid()
        assert pid is not None, f"{self.name} is not running"
        os.killpg(os.getpgid(pid), sig)

    def kill(self) -> None:
        """SIGKILL, as a crash: no controlled shutdown, nothing flushed."""
        from devstack import stack as devstack

        pid = self.pid()
        self.signal(signal.SIGKILL)
        deadline = time.monotonic() + 60
        while pid is not None and devstack.pid_alive(pid):
            assert time.monotonic() < deadline, f"pid {pid} outlived SIGKILL"
            time.sleep(0.2)

    def stop(self) -> None:
        from devstack import stack as devstack

        pid = self.pid()
        if pid is not None:
            devstack.stop_pid(pid)


@contextmanager
def own_server(name: str, state: Path, *, plugins: str | None = None) -> Iterator[OwnServer]:
    """An `OwnServer` started for the block and stopped by its PID after it (SIGTERM, then SIGKILL:
    also ends a server a failed test left frozen)."""
    server = OwnServer(name, state, plugins=plugins)
    server.up()
    try:
        yield server
    finally:
        server.stop()
