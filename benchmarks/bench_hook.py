"""What the ingest hook adds to a 100-document bulk, beyond the inference itself.

The sidecar API runs in this process (uvicorn on loopback) with a hook pipeline in front of the
benchmark's own engine, which runs on other CPUs (`benchmarks/pinned.py`). For each round, with fresh
SciFact documents: (a) the inference of the 100 titles alone, (b) the bulk of the documents *with
those vectors already in them* straight to the engine (the direct path), (c) the plain bulk through
the hook, timing inside it the inference calls and the engine request. The hook's overhead (goal:
p50 <= 15 ms) = (c) - its inference - (b): what the hook path costs beyond the direct path for the
same bulk (the HTTP hop, parsing, look-ups, rewriting, spooling, merging and its bigger engine
request). Also reported: (c) - its inference - its own engine request, which keeps the engine's
noise out. (b) and (c) alternate in order from round to round.

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

from benchmarks.bench_backfill import ENDPOINT, load_docs  # noqa: E402
from benchmarks.pinned import layout, pin_sidecar, servers  # noqa: E402
from benchmarks.report import hardware, write_section  # noqa: E402
from sidecar.api.app import create_app  # noqa: E402
from sidecar.inference.types import TaskType  # noqa: E402
from sidecar.rank_features import clean_features  # noqa: E402
from sidecar.settings import load_settings  # noqa: E402

SIZES = {"tiny": 3, "quick": 15, "full": 50}  # rounds of 100 documents
DOCS_PER_BULK = 100
PIPELINE = """
name: bench-hook
source: {{ingest_hook: {{indices: ["{index}"]}}}}
fields: [{{input: title, endpoint: {endpoint}, target: ml.tokens}}]
sink: {{engine: {engine}, urls: ["{url}"], index: {index}}}
"""
MAPPINGS = {"properties": {"ml": {"properties": {"tokens": {"type": "rank_features"}}}}}
NDJSON = {"content-type": "application/x-ndjson"}


class Timed:
    """Delegates to `inner`, adding the wall time of its `method` calls to `totals[key]`."""

    def __init__(self, inner: Any, method: str, totals: dict[str, float], key: str) -> None:
        self._inner, self._method, self._totals, self._key = inner, method, totals, key

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name != self._method:
            return target

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await target(*args, **kwargs)
            finally:
                self._totals[self._key] += time.perf_counter() - started

        return timed


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


async def one_round(
    http: httpx.AsyncClient,
    service: Any,
    inside: dict[str, float],
    chunk: list[dict[str, Any]],
    urls: dict[str, str],
    hook_first: bool,
) -> dict[str, float]:
    started = time.perf_counter()
    output = await service.infer(ENDPOINT, [d["title"] for d in chunk], task_type=TaskType.SPARSE_EMBEDDING)
    inference_s = time.perf_counter() - started
    vectors = [clean_features(r.embedding) for r in output.results]
    direct_body, hooked_body = bulk_body(chunk, vectors), bulk_body(chunk)

    async def direct() -> float:
        started = time.perf_counter()
        answer = await http.post(urls["direct"], content=direct_body, headers=NDJSON)
        seconds = time.perf_counter() - started
        assert not answer.json()["errors"]
        return seconds

    async def hooked() -> float:
        inside.update(infer=0.0, engine=0.0)
        started = time.perf_counter()
        answer = await http.post(urls["hooked"], content=hooked_body, headers=NDJSON)
        seconds = time.perf_counter() - started
        assert answer.status_code == 200 and not answer.json()["errors"], answer.text[:500]
        return seconds

    if hook_first:
        hook_s = await hooked()
        direct_s = await direct()
    else:
        direct_s = await direct()
        hook_s = await hooked()
    return {
        "inference": inference_s,
        "direct": direct_s,
        "hook": hook_s,
        "overhead": hook_s - inside["infer"] - direct_s,
        "added": hook_s - inside["infer"] - inside["engine"],
    }


async def run(args: argparse.Namespace) -> tuple[dict[str, list[float]], str]:
    from sidecar.inference.service import InferenceService

    rounds = SIZES[args.size]
    docs = load_docs(DOCS_PER_BULK * (rounds + 1))
    suffix = uuid.uuid4().hex[:8]
    direct, hooked = f"bench-direct-{suffix}", f"bench-hooked-{suffix}"
    timings: dict[str, list[float]] = {k: [] for k in ("inference", "direct", "hook", "overhead", "added")}
    inside = {"infer": 0.0, "engine": 0.0}
    cpus = layout()
    print(f"[bench] {cpus.describe()}", flush=True)
    with servers([args.engine], cpus.servers) as engines, tempfile.TemporaryDirectory() as tmp:
        url = engines[args.engine]
        pin_sidecar(cpus)
        pipeline = Path(tmp) / "hook.yaml"
        pipeline.write_text(PIPELINE.format(index=hooked, endpoint=ENDPOINT, engine=args.engine, url=url))
        settings = load_settings(
            registry_path=Path(tmp) / "r.sqlite3", preload_endpoints=[ENDPOINT], hook_pipelines=[pipeline],
            hook_upstream_url=url, log_json=False,
        )  # fmt: skip
        service = InferenceService.from_settings(settings)
        app = create_app(settings, service=Timed(service, "infer", inside, "infer"))
        server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
            await asyncio.sleep(0.05)
        app.state.hook.upstream = Timed(app.state.hook.upstream, "send", inside, "engine")
        sidecar = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        urls = {"direct": f"{url}/{direct}/_bulk", "hooked": f"{sidecar}/{hooked}/_bulk"}
        async with httpx.AsyncClient(timeout=120) as http:
            for index in (direct, hooked):
                (await http.put(f"{url}/{index}", json={"mappings": MAPPINGS})).raise_for_status()
            try:
                for n in range(rounds + 1):  # round 0 warms every path up and is not counted
                    chunk = docs[n * DOCS_PER_BULK : (n + 1) * DOCS_PER_BULK]
                    measured = await one_round(http, service, inside, chunk, urls, hook_first=n % 2 == 1)
                    for key, seconds in measured.items():
                        if n:
                            timings[key].append(seconds * 1000)
            finally:
                for index in (direct, hooked):
                    await http.delete(f"{url}/{index}")
        server.should_exit = True
        await serving
    return timings, cpus.describe()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    parser.add_argument("--engine", choices=["opensearch", "elasticsearch"], default="opensearch")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/benchmarks.md alone.")
    args = parser.parse_args()
    t, where = asyncio.run(run(args))
    rows = [
        ("inference of the 100 titles alone", t["inference"]),
        ("direct path: bulk with the vectors straight to the engine", t["direct"]),
        ("hook path: plain bulk through the hook", t["hook"]),
        ("**hook overhead** (hook path - its inference - direct path; goal p50 <= 15 ms)", t["overhead"]),
        ("added inside the hook (hook path - its inference - its own engine request)", t["added"]),
    ]
    table = "| 100-document bulk | p50 ms | p90 ms |\n| --- | ---: | ---: |\n"
    table += "".join(
        f"| {name} | {statistics.median(v):.1f} | {percentile(v, 0.9):.1f} |\n" for name, v in rows
    )
    table += (
        f"\n{len(t['added'])} rounds of 100 fresh SciFact documents (title + text stored, titles encoded with "
        f"`{ENDPOINT}`), the benchmark's own {args.engine}, the sidecar in-process on loopback: {where}. "
        "Each row is the p50/p90 of its own per-round values (the overhead is a per-round difference). "
        f"{hardware()}.\n\n"
        f"`python benchmarks/bench_hook.py --size {args.size} --engine {args.engine}`"
    )
    print(table)
    if not args.no_write:
        write_section("Ingest hook", table)


if __name__ == "__main__":
    main()
