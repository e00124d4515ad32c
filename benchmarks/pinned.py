"""The throughput benchmarks' own servers, on other CPUs than the sidecar.

The CPUs this process may use are split in two (`layout()`): the first half (at least one) runs the
sidecar (the worker, the backfill, the hook) and the "inference engine alone" contender, with torch
using one thread per CPU of that half; the rest run Kafka and the search engine, started here with
`devstack/stack.py` (`SIDECAR_DEVSTACK_CPUS`) empty, in their own state folder, on free ports, and
stopped by PID at the end. A ratio sidecar / engine alone then measures what the sidecar adds, not
servers competing with the model for its cores. SIDECAR_BENCH_SIDECAR_CPUS / SIDECAR_BENCH_SERVER_CPUS
(`taskset -c` lists) choose other halves.

`python -m benchmarks` starts one such stack for all the benchmarks that need one and hands it down
through the environment; a benchmark run alone starts its own.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SIDECAR_CPUS = "SIDECAR_BENCH_SIDECAR_CPUS"
SERVER_CPUS = "SIDECAR_BENCH_SERVER_CPUS"
HANDED_DOWN = "SIDECAR_BENCH_SERVERS"  # servers a parent started for us (comma-separated names)
STATE = "SIDECAR_BENCH_STATE"  # their state folder (PID files)
URL_VARS = {
    "kafka": "SIDECAR_KAFKA_BOOTSTRAP",
    "opensearch": "SIDECAR_OPENSEARCH_URL",
    "elasticsearch": "SIDECAR_ES_URL",
}
PORT_VARS = {
    "kafka": ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT"),
    "opensearch": ("OPENSEARCH_PORT", "OPENSEARCH_TRANSPORT_PORT"),
    "elasticsearch": ("ES_PORT",),
}


def parse_cpus(text: str) -> tuple[int, ...]:
    """A `taskset -c` list ("0", "0-3", "0,2-3") as CPU numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if first:
            cpus.update(range(int(first), int(last or first) + 1))
    return tuple(sorted(cpus))


def cpu_list(cpus: Sequence[int]) -> str:
    return ",".join(str(c) for c in cpus)


@dataclass(frozen=True)
class Layout:
    sidecar: tuple[int, ...]
    servers: tuple[int, ...]

    @property
    def separate(self) -> bool:
        return not set(self.sidecar) & set(self.servers)

    def describe(self) -> str:
        threads = len(self.sidecar)
        where = (
            f"the sidecar and the inference engine alone on CPU {cpu_list(self.sidecar)} "
            f"({threads} torch thread{'s' if threads > 1 else ''}), Kafka and the search engine on "
            f"CPU {cpu_list(self.servers)}"
        )
        return where if self.separate else where + " (shared: this machine has one CPU)"


def layout() -> Layout:
    allowed = sorted(os.sched_getaffinity(0))
    half = max(1, len(allowed) // 2)
    sidecar = parse_cpus(os.environ.get(SIDECAR_CPUS, "")) or tuple(allowed[:half])
    servers = parse_cpus(os.environ.get(SERVER_CPUS, "")) or tuple(allowed[half:]) or sidecar
    return Layout(sidecar, servers)


def pin(cpus: Sequence[int]) -> None:
    """This process (and the children it starts from now on) on `cpus`."""
    os.sched_setaffinity(0, cpus)


def pin_sidecar(cpus: Layout) -> None:
    """This process and its future children on the sidecar's CPUs, torch with one thread per CPU."""
    pin(cpus.sidecar)
    os.environ["SIDECAR_TORCH_THREADS"] = str(len(cpus.sidecar))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stack(action: str, names: Sequence[str], env: dict[str, str]) -> None:
    command = [sys.executable, str(ROOT / "devstack" / "stack.py"), action, *names]
    if subprocess.call(command, env=env, cwd=ROOT) != 0:
        raise SystemExit(f"`devstack/stack.py {action} {' '.join(names)}` failed (see its output above)")


@contextmanager
def servers(names: Sequence[str], cpus: Sequence[int]) -> Iterator[dict[str, str]]:
    """The URLs of `names` (kafka, opensearch, elasticsearch): the ones handed down by a parent, or
    ones started here, empty, on `cpus`, and stopped (their state deleted) on the way out."""
    given = set(filter(None, os.environ.get(HANDED_DOWN, "").split(",")))
    if set(names) <= given:
        yield {name: os.environ[URL_VARS[name]] for name in names}
        return
    state = ROOT / ".devstack" / f"bench-{os.getpid()}"
    env = {
        **os.environ,
        "SIDECAR_DEVSTACK_DIR": str(state),
        "SIDECAR_DEVSTACK_CACHE": os.environ.get("SIDECAR_DEVSTACK_CACHE", str(ROOT / ".devstack" / "cache")),
        "SIDECAR_DEVSTACK_CPUS": cpu_list(cpus),
        # A JVM on one CPU starts slowly, slower still on a busy machine.
        "SIDECAR_DEVSTACK_READY_TIMEOUT": os.environ.get("SIDECAR_DEVSTACK_READY_TIMEOUT", "600"),
    }
    for name in names:
        for var in PORT_VARS[name]:
            env[f"SIDECAR_DEVSTACK_{var}"] = str(free_port())
    print(f"[bench] starting {', '.join(names)} on CPU {cpu_list(cpus)} in {state}", flush=True)
    # A terminated benchmark still stops its servers (SIGTERM's default would skip the `finally`).
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ[STATE] = str(state)
    try:
        _stack("up", names, env)
        urls: dict[str, str] = {}
        for line in (state / "env").read_text().splitlines():
            var, _, value = line.removeprefix("export ").partition("=")
            urls.update({name: value for name in names if URL_VARS[name] == var})
        for name in ("opensearch", "elasticsearch"):
            if name in urls:
                warm_up(urls[name])
        yield urls
    finally:
        _stack("down", names, env)
        shutil.rmtree(state, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
        os.environ.pop(STATE, None)


def warm_up(url: str, docs: int = 3000) -> None:
    """Index, update and search rank_features documents once, so that no contender meets a cold JVM."""
    rng = random.Random(0)
    index = "bench-warm-up"
    words = [f"w{i}" for i in range(2000)]
    mappings = {"properties": {"ml": {"properties": {"tokens": {"type": "rank_features"}}}}}

    def bulk(action: str, part: range) -> None:
        lines = []
        for i in part:
            tokens = {w: round(rng.uniform(0.1, 3.0), 3) for w in rng.sample(words, 60)}
            source = {"title": " ".join(rng.sample(words, 12)), "ml": {"tokens": tokens}}
            lines += [
                json.dumps({action: {"_index": index, "_id": str(i)}}),
                json.dumps({"doc": source} if action == "update" else source),
            ]
        answer = http.post(
            "/_bulk", content="\n".join(lines) + "\n", headers={"content-type": "application/x-ndjson"}
        )
        answer.raise_for_status()

    with httpx.Client(base_url=url, timeout=300) as http:
        http.put(
            f"/{index}", json={"settings": {"number_of_shards": 1}, "mappings": mappings}
        ).raise_for_status()
        for start in range(0, docs, 500):
            bulk("index", range(start, min(docs, start + 500)))
        http.post(f"/{index}/_refresh")
        for start in range(0, docs, 250):
            bulk("update", range(start, min(docs, start + 250)))
        query = {"query": {"rank_feature": {"field": "ml.tokens.w1"}}}
        for _ in range(20):
            http.post(f"/{index}/_search", json=query).raise_for_status()
        http.delete(f"/{index}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads."""
    return _stat_seconds(Path(f"/proc/{pid}/stat"))


def _stat_seconds(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds() -> dict[str, float]:
    """This process's CPU time so far, split: the event loop's thread (`loop`) and every other
    thread (`inference`: the engine's tokenizer, model and decoder threads and the runtime's pool)."""
    loop = threading.main_thread().native_id
    out = {"loop": 0.0, "inference": 0.0}
    for task in Path("/proc/self/task").iterdir():
        try:
            out["loop" if int(task.name) == loop else "inference"] += _stat_seconds(task / "stat")
        except (OSError, ValueError):
            pass  # a thread that ended meanwhile
    return out


def servers_cpu_seconds(names: Sequence[str]) -> float:
    """CPU time of this benchmark's own servers `names` so far (0 for one it cannot find)."""
    total = 0.0
    for name in names:
        try:
            total += cpu_seconds(int((Path(os.environ[STATE]) / f"{name}.pid").read_text()))
        except (KeyError, OSError, ValueError):
            pass
    return total


def hand_down(urls: dict[str, str]) -> None:
    """Let the benchmarks started from now on by this process use `urls` instead of their own servers."""
    os.environ[HANDED_DOWN] = ",".join(urls)
    for name, url in urls.items():
        os.environ[URL_VARS[name]] = url
