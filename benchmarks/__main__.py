"""`python -m benchmarks --size tiny|quick|full`: every benchmark of the project, then the throughput chart.

Each benchmark runs in its own process (so peak memory is its own) and rewrites its section of
docs/benchmarks.md; the docs/s figures they record are drawn into docs/benchmarks-throughput.png.
The inference and API benchmarks run first, on the whole machine; then one Kafka and one OpenSearch
of the benchmarks' own start, pinned to their CPUs (`benchmarks/pinned.py`), for the worker, backfill
and hook benchmarks, which pin themselves to the other CPUs. `tiny` only checks that everything runs
(its numbers mean little; it leaves docs/benchmarks.md alone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from benchmarks.pinned import hand_down, layout, servers
from benchmarks.report import REPORT, ROOT, THROUGHPUT, hardware, write_section

# name -> size -> arguments; in this order (the unpinned ones first, before the servers start)
BENCHMARKS: dict[str, dict[str, list[str]]] = {
    "bench_inference": {"tiny": ["--limit", "20"], "quick": ["--limit", "500"], "full": []},
    "bench_runtimes": {
        "tiny": ["--limit", "20", "--rounds", "1"],
        "quick": ["--limit", "500", "--rounds", "3"],
        "full": ["--limit", "500", "--rounds", "9"],
    },
    "bench_api": {"tiny": ["--duration", "2"], "quick": ["--duration", "10"], "full": ["--duration", "30"]},
    "bench_worker": {
        "tiny": ["--docs", "200", "--memory-docs", "1000"],
        "quick": ["--docs", "1000", "--memory-docs", "10000"],
        "full": ["--docs", "5183", "--memory-docs", "100000"],
    },
    "bench_backfill": {size: ["--size", size] for size in ("tiny", "quick", "full")},
    "bench_hook": {size: ["--size", size] for size in ("tiny", "quick", "full")},
}
PINNED = {"bench_worker", "bench_backfill", "bench_hook"}  # need the pinned Kafka and OpenSearch


def draw_chart() -> None:
    if not THROUGHPUT.exists():
        return
    from sidecar.eval.report import pyplot

    plt = pyplot()
    data = json.loads(THROUGHPUT.read_text())
    labels = sorted(data, key=data.__getitem__)
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(labels) + 1.5))
    ax.barh(labels, [data[k] for k in labels], color="#3572a5")
    for y, label in enumerate(labels):
        ax.text(data[label], y, f" {data[label]:.1f}", va="center")
    ax.set_xlabel("documents per second")
    ax.set_title(f"Throughput on {hardware()}", fontsize=9)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "benchmarks-throughput.png", dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=["tiny", "quick", "full"], default="quick")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    args = parser.parse_args()
    chosen = [name for name in BENCHMARKS if args.only is None or name in args.only]
    write = [] if args.size != "tiny" else ["--no-write"]
    failed: list[str] = []
    timings: list[str] = []

    def bench(name: str) -> None:
        argv = [sys.executable, f"benchmarks/{name}.py", *BENCHMARKS[name][args.size], *write]
        print(f"==> {' '.join(argv[1:])}", flush=True)
        started = time.monotonic()
        rc = subprocess.call(argv, cwd=ROOT)
        timings.append(f"| {name} | {time.monotonic() - started:.0f} s | {'ok' if rc == 0 else f'exit {rc}'} |")
        if rc != 0:
            failed.append(name)

    for name in chosen:
        if name not in PINNED:
            bench(name)
    if PINNED & set(chosen):
        cpus = layout()
        with servers(["kafka", "opensearch"], cpus.servers) as urls:
            hand_down(urls)
            for name in chosen:
                if name in PINNED:
                    bench(name)
    if args.size == "tiny":
        print("\n".join(timings))
        return 1 if failed else 0
    write_section(
        "How these numbers were made",
        f"`make bench SIZE={args.size}` on {hardware()}.\n\n| benchmark | wall time | result |\n| --- | --- | --- |\n"
        + "\n".join(timings)
        + "\n\n![throughput](benchmarks-throughput.png)\n",
    )
    draw_chart()
    print(f"report: {REPORT}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
