"""Load benchmark of the HTTP API: dynamic batching on versus off.

64 concurrent clients send single sentences to `POST /_inference/sparse_embedding/.splade-tiny` for a
fixed time against a `sidecar serve` subprocess, once with default batching and once with
`SIDECAR_MAX_BATCH_REQUESTS=1` (every text runs alone). Prints throughput and p50/p95/p99 latency
and writes the "HTTP API" section of docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_api.py [--duration 30] [--clients 64] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

REPO = Path(__file__).resolve().parents[1]
ENDPOINT = ".splade-tiny"
SECTION = "HTTP API"

_SUBJECTS = [
    "The sky",
    "A harbour crane",
    "Every search engine",
    "The old lighthouse",
    "Our sidecar",
    "A tired engineer",
]
_VERBS = ["reflects", "indexes", "ignores", "describes", "expands", "remembers", "ranks"]
_OBJECTS = [
    "the colour of a television tuned to a dead channel",
    "sparse vectors for every passage in the archive",
    "the last ferry leaving the port at dawn",
    "queries about learned retrieval and BM25",
    "a queue of documents waiting for inference",
    "the weights of tokens nobody typed",
]


def sentences(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}." for _ in range(count)]


@dataclass
class Result:
    name: str
    ok: int
    rejected: int
    failed: int
    seconds: float
    latencies: list[float]
    load_average: float = 0.0  # 1-minute load average at the end: other work on the machine skews results

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def sidecar(workdir: Path, **settings: str) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "SIDECAR_PORT": str(port),
        "SIDECAR_HOST": "127.0.0.1",
        "SIDECAR_REGISTRY_PATH": str(workdir / f"endpoints-{port}.sqlite3"),
        "SIDECAR_LOG_LEVEL": "WARNING",
        **{f"SIDECAR_{k.upper()}": v for k, v in settings.items()},
    }
    log = (workdir / f"sidecar-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "sidecar.cli", "serve"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"sidecar exited: see {log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_sidecar/health/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"sidecar not ready: see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


async def load(url: str, name: str, *, clients: int, duration: float, warmup: float) -> Result:
    """`clients` concurrent loops, each sending one sentence and waiting for the answer.

    aiohttp rather than httpx: the load generator shares the CPU with the server, so its own
    per-request cost must stay small.
    """
    texts = sentences(4096)
    target = f"{url}/_inference/sparse_embedding/{ENDPOINT}"
    latencies: list[float] = []
    counts = {"ok": 0, "rejected": 0, "failed": 0}
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def client_loop(index: int, session: aiohttp.ClientSession) -> None:
        i = index
        while (sent := time.perf_counter()) < stop_at:
            i += clients
            try:
                async with session.post(target, json={"input": texts[i % len(texts)]}) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError:
                status = -1
            done = time.perf_counter()
            if sent < measure_from or done > stop_at:
                continue
            if status == 200:
                counts["ok"] += 1
                latencies.append(done - sent)
            elif status == 429:
                counts["rejected"] += 1
            else:
                counts["failed"] += 1

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client_loop(i, session) for i in range(clients)))
    load_average = os.getloadavg()[0]
    return Result(name, counts["ok"], counts["rejected"], counts["failed"], duration, latencies, load_average)


def table(results: list[Result]) -> str:
    rows = [
        "| batching | requests/s | p50 ms | p95 ms | p99 ms | ok | 429 | errors | load avg |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        p50, p95, p99 = (r.percentile(q) * 1000 for q in (0.50, 0.95, 0.99))
        rows.append(
            f"| {r.name} | {r.throughput:.1f} | {p50:.0f} | {p95:.0f} | {p99:.0f} "
            f"| {r.ok} | {r.rejected} | {r.failed} | {r.load_average:.1f} |"
        )
    return "\n".join(rows)


def write_section(body: str) -> None:
    """Replace (or append) the `## HTTP API` section of docs/benchmarks.md."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.report import write_section as write_report_section

    write_report_section(SECTION, body)


def run(*, duration: float, clients: int, warmup: float, write: bool) -> list[Result]:
    runs = [("on (default)", {}), ("off (max batch 1)", {"max_batch_requests": "1"})]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        for name, settings in runs:
            with sidecar(Path(tmp), **settings) as url:
                results.append(
                    asyncio.run(load(url, name, clients=clients, duration=duration, warmup=warmup))
                )
            print(f"batching {name}: {results[-1].throughput:.1f} req/s", flush=True)
    report = table(results)
    speedup = results[0].throughput / results[1].throughput if results[1].throughput else float("inf")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    body = (
        f"{clients} concurrent clients, one sentence per request,"
        f" `POST /_inference/sparse_embedding/{ENDPOINT}`, {duration:.0f} s measured after {warmup:.0f} s"
        f" warm-up; server and load generator share the machine ({machine}; CPU inference).\n\n{report}\n\n"
        f"Batching speed-up: **{speedup:.1f}x**. `load avg` is the 1-minute load average at the end of"
        " each run: above the CPU count, other processes competed for the CPUs and the numbers"
        " understate the server. On CPU the model's own cost per text bounds the gain: batching"
        " amortises the SPLADE vocabulary head and tokenization, not a large encoder.\n\n"
        "Reproduce: `.venv/bin/python benchmarks/bench_api.py --duration "
        f"{duration:.0f} --clients {clients}`."
    )
    print(report)
    print(f"speed-up with batching: {speedup:.1f}x")
    if write:
        write_section(body)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per run")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    run(duration=args.duration, clients=args.clients, warmup=args.warmup, write=not args.no_write)


if __name__ == "__main__":
    main()
