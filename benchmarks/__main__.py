"""`python -m benchmarks --size quick|full`: every benchmark of the project, then the throughput chart.

Each benchmark runs in its own process (so peak memory is its own) and rewrites its section of
docs/benchmarks.md; the docs/s figures they record are drawn into docs/benchmarks-throughput.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from benchmarks.report import REPORT, ROOT, THROUGHPUT, hardware, write_section

# name -> (arguments for a quick run, arguments for a full run)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "bench_inference": (["--limit", "500"], []),
    "bench_api": (["--duration", "10"], ["--duration", "30"]),
    "bench_worker": (["--docs", "1000", "--memory-docs", "10000"], ["--docs", "5183", "--memory-docs", "100000"]),
    "bench_backfill": (["--size", "quick"], ["--size", "full"]),
    "bench_hook": (["--size", "quick"], ["--size", "full"]),
}


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
    parser.add_argument("--size", choices=["quick", "full"], default="quick")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    args = parser.parse_args()
    failed = []
    timings = []
    for name in args.only or BENCHMARKS:
        quick, full = BENCHMARKS[name]
        argv = [sys.executable, f"benchmarks/{name}.py", *(quick if args.size == "quick" else full)]
        print(f"==> {' '.join(argv[1:])}", flush=True)
        started = time.monotonic()
        rc = subprocess.call(argv, cwd=ROOT)
        timings.append(f"| {name} | {time.monotonic() - started:.0f} s | {'ok' if rc == 0 else f'exit {rc}'} |")
        if rc != 0:
            failed.append(name)
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
