"""Backfill throughput against the inference engine alone, on the same documents.

SciFact documents (title + text stored, titles encoded) are indexed into the local engine; then,
alternately, (a) the in-process inference service encodes the titles in the backfill's batch size,
one request after another, beside an idle engine; (b) the same, while the engine applies the
backfill's own bulk updates (recorded from a backfill before the clock starts, replayed at the
backfill's pace by a process on the engine's CPUs, against a copy of the index); and (c) a
`Backfill` enriches the index (point in time, selection, inference, partial updates, engine
checkpoints). Reports docs/s of each, the ratios (goal: the backfill reaches at least 85% of
inference alone) and where the backfill's time went. The engine is this benchmark's own, on other
CPUs than this process (`benchmarks/pinned.py`); (b) shows whether the engine's work on the other
CPUs slows the model all the same (shared cache and memory bandwidth, which separate cores do not
isolate), so that what the backfill loses against (a) can be told apart from it.

    .venv/bin/python benchmarks/bench_backfill.py [--size quick|full] [--engine opensearch] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from opensearchpy.helpers import expand_action

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.pinned import (  # noqa: E402
    Layout,
    cpu_list,
    layout,
    pin_sidecar,
    servers,
    servers_cpu_seconds,
    thread_cpu_seconds,
)
from benchmarks.report import hardware, record_throughput, write_section  # noqa: E402
from sidecar.backfill.checkpoint import EngineCheckpointStore  # noqa: E402
from sidecar.backfill.runner import Backfill, BackfillOptions  # noqa: E402
from sidecar.inference.types import TaskType  # noqa: E402
from sidecar.pipelines.schema import PipelineConfig  # noqa: E402
from sidecar.settings import load_settings  # noqa: E402
from sidecar.sinks import create_sink  # noqa: E402

CORPUS = ROOT / "datasets" / "scifact" / "corpus.jsonl"
SIZES = {"tiny": (300, 1), "quick": (2000, 2), "full": (5183, 3)}  # documents, repetitions
ENDPOINT = ".splade-tiny"


def load_docs(count: int) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    return [{"_id": d["_id"], "title": d["title"], "text": d["text"]} for d in docs[:count]]


class Busy:
    """Wall time during which at least one call of a kind was running (overlapping calls, such as
    two parts inferred at once, count once): `seconds[kind]`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._active: dict[str, int] = {}
        self._since: dict[str, float] = {}

    def wrap(self, target: Any, name: str, kind: str) -> None:
        """Wrap `target.name` (a coroutine method) to count its calls as `kind`."""
        original: Callable[..., Awaitable[Any]] = getattr(target, name)

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._enter(kind)
            try:
                return await original(*args, **kwargs)
            finally:
                self._leave(kind)

        setattr(target, name, wrapper)

    def _enter(self, kind: str) -> None:
        if not self._active.get(kind):
            self._since[kind] = time.perf_counter()
        self._active[kind] = self._active.get(kind, 0) + 1

    def _leave(self, kind: str) -> None:
        self._active[kind] -= 1
        if not self._active[kind]:
            self.seconds[kind] = self.seconds.get(kind, 0.0) + time.perf_counter() - self._since[kind]


async def index_corpus(http: httpx.AsyncClient, index: str, docs: list[dict[str, Any]]) -> None:
    answer = await http.put(f"/{index}", json={"settings": {"number_of_shards": 1}})
    answer.raise_for_status()
    for i in range(0, len(docs), 1000):
        lines = []
        for doc in docs[i : i + 1000]:
            lines.append(json.dumps({"index": {"_index": index, "_id": doc["_id"]}}))
            lines.append(json.dumps({"title": doc["title"], "text": doc["text"]}))
        body = ("\n".join(lines) + "\n").encode()
        answer = await http.post("/_bulk", content=body, headers={"content-type": "application/x-ndjson"})
        assert not answer.json()["errors"]
    await http.post(f"/{index}/_refresh")


async def inference_alone(service: Any, titles: list[str], batch: int) -> tuple[float, dict[str, float]]:
    """Docs/s and this process's CPU seconds (`cpu`, and by thread: `loop`, `inference`)."""
    started, cpu, threads = time.perf_counter(), time.process_time(), thread_cpu_seconds()
    for i in range(0, len(titles), batch):
        await service.infer(ENDPOINT, titles[i : i + batch], task_type=TaskType.SPARSE_EMBEDDING)
    seconds = time.perf_counter() - started
    used = {k: v - threads[k] for k, v in thread_cpu_seconds().items()}
    return len(titles) / seconds, {"cpu": time.process_time() - cpu, **used}


ML_MAPPING = {"tokens": {"type": "rank_features"}, "tokens_hash": {"type": "keyword", "index": False}}


def bulk_body(actions: list[dict[str, Any]], index: str) -> str:
    """NDJSON of helper-style actions (as `BulkItem.action()` gives them), aimed at `index`, in the
    client helpers' own translation (`expand_action`)."""
    lines = []
    for action in actions:
        meta, source = expand_action({**action, "_index": index})
        lines.append(json.dumps(meta))
        if source is not None:
            lines.append(json.dumps(source))
    return "\n".join(lines) + "\n"


def save_updates(path: Path, actions: list[list[dict[str, Any]]], index: str) -> str:
    """The recorded bulk requests as `[[documents, NDJSON body], ...]` in a file, for `replay`."""
    path.write_text(json.dumps([[len(a), bulk_body(a, index)] for a in actions]), encoding="utf-8")
    return str(path)


def replay(path: str, url: str, rate: float) -> None:
    """(In a child process on the engine's CPUs) send the recorded bulk bodies at `rate` docs/s."""
    bodies = json.loads(Path(path).read_text(encoding="utf-8"))
    with httpx.Client(base_url=url, timeout=300) as http:
        print("ready", flush=True)
        started, sent = time.perf_counter(), 0
        for count, body in bodies:
            time.sleep(max(0.0, started + sent / rate - time.perf_counter()))
            answer = http.post("/_bulk", content=body.encode(), headers={"content-type": "application/x-ndjson"})
            answer.raise_for_status()
            sent += count


async def inference_beside_updates(
    service: Any,
    titles: list[str],
    batch: int,
    http: httpx.AsyncClient,
    docs: list[dict[str, Any]],
    recorded: tuple[str, str, float],
    cpus: Layout,
) -> tuple[float, dict[str, float]]:
    """`inference_alone` while the engine applies the backfill's recorded updates to a fresh copy."""
    path, index, rate = recorded
    await index_corpus(http, index, docs)
    (await http.put(f"/{index}/_mapping", json={"properties": {"ml": {"properties": ML_MAPPING}}})).raise_for_status()
    command = ["taskset", "-c", cpu_list(cpus.servers), sys.executable, __file__, "--replay", path,
               str(http.base_url), str(rate)]  # fmt: skip
    child = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None and (await child.stdout.readline()).strip() == b"ready"
        return await inference_alone(service, titles, batch)
    finally:
        if child.returncode is None:
            child.terminate()
        await child.wait()
        await http.delete(f"/{index}")


async def one_backfill(
    service: Any,
    url: str,
    engine: str,
    docs: list[dict[str, Any]],
    batch: int,
    http: httpx.AsyncClient,
    checkpoints: str,
    record: list[list[dict[str, Any]]] | None = None,
) -> tuple[float, dict[str, float]]:
    index = f"bench-backfill-{uuid.uuid4().hex[:8]}"
    await index_corpus(http, index, docs)
    config = PipelineConfig.model_validate({
        "name": "bench-backfill",
        "source": {"ingest_hook": {"indices": [index]}},
        "fields": [{"input": "title", "endpoint": ENDPOINT, "target": "ml.tokens"}],
        "sink": {"engine": engine, "urls": [url], "index": index},
    })  # fmt: skip
    sink = create_sink(config.sink, config.errors, pipeline=config.name)
    await sink.put_mapping(index, {"properties": {"ml": {"properties": ML_MAPPING}}})
    store = EngineCheckpointStore(config.sink.engine, getattr(sink, "client"), checkpoints)  # noqa: B009
    await store.load("bench")  # the checkpoint index exists before the clock starts, as after a first run
    backfill = Backfill(config, service, sink, store, BackfillOptions(batch_size=batch))
    if record is not None:
        write = backfill.sink.write

        async def recording(items: Any) -> Any:
            record.append([item.action() for item in items])
            return await write(items)

        backfill.sink.write = recording  # type: ignore[method-assign]
    busy = Busy()
    busy.wrap(backfill.enricher, "enrich", "enrich")
    busy.wrap(backfill.sink, "write", "write")
    busy.wrap(backfill.store, "save", "save")
    try:
        started, cpu, engine_cpu = time.perf_counter(), time.process_time(), servers_cpu_seconds([engine])
        threads = thread_cpu_seconds()
        result = await backfill.run()
        seconds = time.perf_counter() - started
        cpu, engine_cpu = time.process_time() - cpu, servers_cpu_seconds([engine]) - engine_cpu
        used = {k: v - threads[k] for k, v in thread_cpu_seconds().items()}
        assert result.finished and result.run.enriched == len(docs), result
    finally:
        await sink.close()
        await http.delete(f"/{index}")
    return len(docs) / seconds, {
        **busy.seconds,
        "total": seconds,
        "cpu": cpu,
        "engine_cpu": engine_cpu,
        **used,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from sidecar.inference.service import InferenceService

    count, repeats = SIZES[args.size]
    docs = load_docs(count)
    titles = [d["title"] for d in docs]
    cpus = layout()
    print(f"[bench] {cpus.describe()}", flush=True)
    with servers([args.engine], cpus.servers) as urls, tempfile.TemporaryDirectory() as tmp:
        url = urls[args.engine]
        pin_sidecar(cpus)
        settings = load_settings(registry_path=Path(tmp) / "r.sqlite3", preload_endpoints=[ENDPOINT])
        service = InferenceService.from_settings(settings)
        await service.start(preload=[ENDPOINT])
        await inference_alone(service, titles[:512], args.batch_size)  # warm-up
        alone: list[float] = []
        alone_cpu: list[dict[str, float]] = []
        beside: list[float] = []
        beside_cpu: list[dict[str, float]] = []
        backfill: list[float] = []
        phases: list[dict[str, float]] = []
        checkpoints = f"bench-checkpoints-{uuid.uuid4().hex[:8]}"
        async with httpx.AsyncClient(base_url=url, timeout=300) as http:
            # A backfill before the clock: its bulk updates and pace, for the engine-busy contender.
            actions: list[list[dict[str, Any]]] = []
            pace, _ = await one_backfill(service, url, args.engine, docs, args.batch_size, http, checkpoints, actions)
            copy = f"bench-backfill-copy-{uuid.uuid4().hex[:8]}"
            recorded = (save_updates(Path(tmp) / "updates.json", actions, copy), copy, pace)
            for _ in range(repeats):  # alternate, so drifting machine load hits all alike
                rate, used = await inference_alone(service, titles, args.batch_size)
                alone.append(rate)
                alone_cpu.append(used)
                rate, used = await inference_beside_updates(
                    service, titles, args.batch_size, http, docs, recorded, cpus
                )
                beside.append(rate)
                beside_cpu.append(used)
                rate, totals = await one_backfill(
                    service, url, args.engine, docs, args.batch_size, http, checkpoints
                )
                backfill.append(rate)
                phases.append(totals)
            await http.delete(f"/{checkpoints}")
        await service.close()
    share = {
        k: statistics.median(p.get(k, 0.0) / p["total"] for p in phases)
        for k in ("enrich", "write", "save", "engine_cpu")
    }
    per_1000 = 1000 / count
    cpu = {
        "alone": statistics.median(c["cpu"] for c in alone_cpu) * per_1000,
        "backfill": statistics.median(p["cpu"] for p in phases) * per_1000,
        "engine": statistics.median(p["engine_cpu"] for p in phases) * per_1000,
        **{
            f"{k}_alone": statistics.median(c[k] for c in alone_cpu) * per_1000 for k in ("loop", "inference")
        },
        **{
            f"{k}_backfill": statistics.median(p[k] for p in phases) * per_1000 for k in ("loop", "inference")
        },
    }
    return {
        "docs": count,
        "repeats": repeats,
        "batch": args.batch_size,
        "alone": statistics.median(alone),
        "beside": statistics.median(beside),
        "inference_beside": statistics.median(c["inference"] for c in beside_cpu) * per_1000,
        "backfill": statistics.median(backfill),
        "share": share,
        "cpu": cpu,
        "layout": cpus.describe(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    parser.add_argument("--engine", choices=["opensearch", "elasticsearch"], default="opensearch")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/benchmarks.md alone.")
    parser.add_argument("--replay", nargs=3, metavar=("FILE", "URL", "RATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay:  # the engine-busy contender's child process
        replay(args.replay[0], args.replay[1], float(args.replay[2]))
        return
    out = asyncio.run(run(args))
    ratio, beside = out["backfill"] / out["alone"], out["backfill"] / out["beside"]
    share, cpu = out["share"], out["cpu"]
    table = (
        "| contender | docs/s |\n| --- | ---: |\n"
        f"| inference engine alone ({out['batch']} titles per request), engine idle | {out['alone']:.1f} |\n"
        f"| the same, while the engine applies the backfill's updates | {out['beside']:.1f} |\n"
        f"| `sidecar backfill` ({args.engine}, batch {out['batch']}) | {out['backfill']:.1f} |\n\n"
        f"Backfill / inference alone: **{ratio:.0%}** (goal >= 85%); against inference while the engine "
        f"applies the same updates: **{beside:.0%}** (the engine's work on the other CPUs changes inference "
        f"alone's docs/s by {out['beside'] / out['alone'] - 1:+.0%}). Share of the backfill's wall time with "
        f"inference running {share['enrich']:.0%}, bulk updates running {share['write']:.0%} (mostly while "
        f"the next part is inferred), checkpoints {share['save']:.0%}.\n\n"
        f"CPU seconds per 1,000 documents: inference alone {cpu['alone']:.2f}, backfill process "
        f"{cpu['backfill']:.2f} ({cpu['backfill'] - cpu['alone']:+.2f}); by thread, the event loop "
        f"{cpu['loop_alone']:.2f} alone and {cpu['loop_backfill']:.2f} in the backfill (scan, selection, "
        f"bulk bodies, checkpoints), the inference threads (tokenizer, model, decoder, the runtime's "
        f"pool) {cpu['inference_alone']:.2f} alone, {out['inference_beside']:.2f} beside the engine's updates "
        f"and {cpu['inference_backfill']:.2f} in the backfill for the same texts; {args.engine} {cpu['engine']:.2f} (its CPU busy {share['engine_cpu']:.0%} of "
        f"the backfill's wall time).\n\n"
        f"{out['docs']} SciFact documents, titles encoded with `{ENDPOINT}`, median of {out['repeats']} "
        f"alternating runs; {out['layout']}. {hardware()}.\n\n"
        f"`python benchmarks/bench_backfill.py --size {args.size} --engine {args.engine}`"
    )
    print(table)
    if not args.no_write:
        write_section("Backfill", table)
        record_throughput("backfill (SciFact titles)", out["backfill"])


if __name__ == "__main__":
    main()
