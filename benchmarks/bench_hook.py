"""What the ingest hook adds to a 100-document bulk, beyond the inference itself.

The sidecar API runs in this process (uvicorn on loopback) with a hook pipeline in front of the local
engine. For each round, with fresh SciFact documents: (a) the inference of the 100 titles alone (the
same service object), (b) the bulk of the documents *with those vectors already in them* straight to
the engine, (c) the plain bulk through the hook. Added latency = (c) - (a) - (b): parsing, rewriting,
spooling, the extra HTTP hop, merging; the engine's cost of indexing the vectors is in (b).

    .venv/bin/python benchmarks/bench_hook.py [--size quick|full] [--engine opensearch] [--no-write]
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
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_backfill import ENDPOINT, engine_url, load_docs  # noqa: E402
from benchmarks.report import hardware, write_section  # noqa: E402
from sidecar.api.app import create_app  # noqa: E402
from sidecar.inference.types import TaskType  # noqa: E402
from sidecar.settings import load_settings  # noqa: E402
from sidecar.writers.rank_features import clean_features  # noqa: E402

SIZES = {"quick": 15, "full": 50}  # rounds of 100 documents
DOCS_PER_BULK = 100
PIPELINE = """
name: bench-hook
source: {{ingest_hook: {{indices: ["{index}"]}}}}
fields: [{{input: title, endpoint: {endpoint}, target: ml.tokens}}]
sink: {{engine: {engine}, urls: ["{url}"], index: {index}}}
"""
MAPPINGS = {"properties": {"ml": {"properties": {"tokens": {"type": "rank_features"}}}}}


def bulk_body(docs: list[dict[str, Any]], vectors: list[dict[str, float]] | None = None) -> bytes:
    lines = []
    for n, doc in enumerate(docs):
        source: dict[str, Any] = {"title": doc["title"], "text": doc["text"]}
        if vectors is not None:
            source["ml"] = {"tokens": vectors[n]}
        lines.append(json.dumps({"index": {"_id": doc["_id"]}}))
        lines.append(json.dumps(source))
    return ("\n".join(lines) + "\n").encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> dict[str, list[float]]:
    from sidecar.inference.service import InferenceService

    url = engine_url(args.engine)
    rounds = SIZES[args.size]
    docs = load_docs(DOCS_PER_BULK * (rounds + 1))
    suffix = uuid.uuid4().hex[:8]
    direct, hooked = f"bench-direct-{suffix}", f"bench-hooked-{suffix}"
    timings: dict[str, list[float]] = {"direct": [], "inference": [], "hook": []}
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Path(tmp) / "hook.yaml"
        pipeline.write_text(PIPELINE.format(index=hooked, endpoint=ENDPOINT, engine=args.engine, url=url))
        settings = load_settings(
            registry_path=Path(tmp) / "r.sqlite3", preload_endpoints=[ENDPOINT], hook_pipelines=[pipeline],
            hook_upstream_url=url, log_json=False,
        )  # fmt: skip
        service = InferenceService.from_settings(settings)
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings, service=service), port=0, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
            await asyncio.sleep(0.05)
        sidecar = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        ndjson = {"content-type": "application/x-ndjson"}
        async with httpx.AsyncClient(timeout=120) as http:
            for index in (direct, hooked):
                (await http.put(f"{url}/{index}", json={"mappings": MAPPINGS})).raise_for_status()
            try:
                for n in range(rounds + 1):  # round 0 warms every path up and is not counted
                    chunk = docs[n * DOCS_PER_BULK : (n + 1) * DOCS_PER_BULK]
                    started = time.perf_counter()
                    titles = [d["title"] for d in chunk]
                    output = await service.infer(ENDPOINT, titles, task_type=TaskType.SPARSE_EMBEDDING)
                    inference_s = time.perf_counter() - started
                    vectors = [clean_features(r.embedding) for r in output.results]
                    started = time.perf_counter()
                    answer = await http.post(
                        f"{url}/{direct}/_bulk", content=bulk_body(chunk, vectors), headers=ndjson
                    )
                    direct_s = time.perf_counter() - started
                    assert not answer.json()["errors"]
                    started = time.perf_counter()
                    answer = await http.post(
                        f"{sidecar}/{hooked}/_bulk", content=bulk_body(chunk), headers=ndjson
                    )
                    hook_s = time.perf_counter() - started
                    assert answer.status_code == 200 and not answer.json()["errors"], answer.text[:500]
                    if n:
                        for key, value in (
                            ("direct", direct_s),
                            ("inference", inference_s),
                            ("hook", hook_s),
                        ):
                            timings[key].append(value * 1000)
            finally:
                for index in (direct, hooked):
                    await http.delete(f"{url}/{index}")
        server.should_exit = True
        await serving
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    parser.add_argument("--engine", choices=["opensearch", "elasticsearch"], default="opensearch")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/benchmarks.md alone.")
    args = parser.parse_args()
    t = asyncio.run(run(args))
    added = [h - d - i for h, d, i in zip(t["hook"], t["direct"], t["inference"], strict=True)]
    rows = [
        ("inference of the 100 titles alone", t["inference"]),
        ("bulk with the vectors straight to the engine", t["direct"]),
        ("bulk through the hook", t["hook"]),
        ("**added by the hook** (hook - engine - inference)", added),
    ]
    table = "| 100-document bulk | p50 ms | p90 ms |\n| --- | ---: | ---: |\n"
    table += "".join(
        f"| {name} | {statistics.median(v):.1f} | {percentile(v, 0.9):.1f} |\n" for name, v in rows
    )
    table += (
        f"\n{len(added)} rounds of 100 fresh SciFact documents (title + text stored, titles encoded with "
        f"`{ENDPOINT}`), {args.engine} on the same machine, the sidecar in-process on loopback. "
        f"{hardware()}.\n\n"
        f"`python benchmarks/bench_hook.py --size {args.size} --engine {args.engine}`"
    )
    print(table)
    if not args.no_write:
        write_section("Ingest hook", table)


if __name__ == "__main__":
    main()
