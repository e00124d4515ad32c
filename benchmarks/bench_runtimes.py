"""CPU runtimes side by side: the engine on torch vs on OpenVINO (`SIDECAR_CPU_RUNTIME`), same
engine, same inputs, one interleaved run.

Each runtime lives in its own subprocess for the whole run (so peak RSS is its own) and the driver
alternates between them round after round (the order rotates), so a slow spell of a shared machine
hits every runtime alike; the figure kept is each runtime's median over the rounds. A round sends
the same SciFact documents (title + text, cut to the model's length) through `engine.encode` as the
worker does (bulks of 32, 8 in flight), then times single-sentence calls one at a time. The
OpenVINO graph is exported (or found in the cache) by a separate process first, so the measured
process loads it from the cache as `sidecar serve` does from its second start on. The weights of
both runtimes are compared document by document. Prints a table and writes the "CPU runtimes"
section of docs/benchmarks.md.

    python benchmarks/bench_runtimes.py [--limit 500] [--rounds 9] [--kinds sparse dense]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_inference import load_texts  # noqa: E402
from benchmarks.report import hardware, write_section  # noqa: E402
from sidecar.inference.models import cpu_has_native_bf16  # noqa: E402

RUNTIMES = ["torch", "openvino"]
# On CPUs with native bf16 the torch SPLADE path projects the vocabulary in bf16 (faster, less
# exact); "torch-fp32" is the same path kept in fp32, OpenVINO's own precision.
EXACT_TORCH = "torch-fp32"


def runtimes_for(kind: str) -> list[str]:
    return RUNTIMES + ([EXACT_TORCH] if kind == "sparse" and cpu_has_native_bf16() else [])
MODELS = {"sparse": ".splade_tiny", "dense": ".minilm_l6"}
MAX_LEN = 512
BULK, IN_FLIGHT = 32, 8
SENTENCES = 200  # single-sentence calls per round
PRECISION = 2.0**-8  # rank_features keeps 9 significant bits
FASTEMBED_NOTE = (
    "fastembed is not measured: fastembed 0.9.1 (the latest) requires huggingface-hub < 2.0 and "
    "constraints.txt pins huggingface-hub 2.4.0, so it cannot be installed beside the sidecar "
    "(`pip install -c constraints.txt fastembed` has no solution). Measured elsewhere by issue 14 "
    "on this class of machine: 2.8 docs/s at 10 GB RSS for the same SPLADE."
)


# --- one runtime, in its own process ---------------------------------------------------------------
def serve(runtime: str, kind: str, limit: int | None) -> None:
    """Load the engine, then answer the driver's commands (one JSON line each) until `quit`."""
    from sidecar.inference.executor import build_engine
    from sidecar.settings import Settings

    texts = load_texts(limit)
    sentences = [t.split(". ")[0][:200] for t in texts][:SENTENCES]
    exact = runtime == EXACT_TORCH
    settings = Settings(device="cpu", cpu_runtime="torch" if exact else runtime, max_queue=1 << 20)
    started = time.perf_counter()
    engine = build_engine(settings, kind, MODELS[kind], MAX_LEN, **({"cpu_bf16": False} if exact else {}))
    loaded = {"load_s": time.perf_counter() - started, "backend": type(engine.backend).__name__}
    print("READY " + json.dumps(loaded), flush=True)

    async def bulk_run(keep: bool) -> tuple[float, list[Any]]:
        parts = iter([(i, texts[i : i + BULK]) for i in range(0, len(texts), BULK)])  # shared by callers
        out: list[Any] = [None] * len(texts)

        async def caller() -> None:
            for start, part in parts:
                for offset, result in enumerate(await engine.encode(part)):
                    out[start + offset] = result.embedding if keep else None

        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(IN_FLIGHT)))
        return time.perf_counter() - began, out

    async def latencies() -> list[float]:
        times = []
        for sentence in sentences:
            began = time.perf_counter()
            await engine.encode([sentence])
            times.append(time.perf_counter() - began)
        return times

    for line in sys.stdin:
        command = line.strip()
        if command == "round":
            seconds, _ = asyncio.run(bulk_run(False))
            single = asyncio.run(latencies())
            result: dict[str, Any] = {
                "docs_s": len(texts) / seconds,
                "p50_ms": statistics.median(single) * 1000,
            }
        elif command == "outputs":
            _, outputs = asyncio.run(bulk_run(True))
            result = {"outputs": [list(o) if kind == "dense" else o for o in outputs]}
        else:
            break
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(result), flush=True)
    engine.close()


class Contender:
    def __init__(self, runtime: str, kind: str, limit: int | None) -> None:
        argv = [sys.executable, __file__, "--serve", runtime, "--kinds", kind]
        argv += ["--limit", str(limit)] if limit else []
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.ready = self._read("READY ")

    def _read(self, prefix: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return dict(json.loads(line.removeprefix(prefix)))
        raise SystemExit(f"runtime process exited with {self.proc.wait()} (its stderr is above)")

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read("RESULT ")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


# --- driver ----------------------------------------------------------------------------------------
def fp32_reference(kind: str, limit: int | None) -> list[Any] | None:
    """Sparse: the torch backend in exact fp32 (the engine's torch path projects the vocabulary in
    bf16 on CPUs with native bf16). Dense runs fp32 everywhere: None (compare with torch's)."""
    if kind != "sparse":
        return None
    from sidecar.inference.services.splade import SpladeBackend

    backend = SpladeBackend(MODELS[kind], device="cpu", max_length=MAX_LEN, cpu_bf16=False)
    encoded = backend.tokenize(load_texts(limit))
    return [r.embedding for i in range(0, len(encoded), 16) for r in backend.forward(encoded[i : i + 16])]


def agreement(kind: str, reference: list[Any], outputs: list[Any]) -> str:
    """How closely one runtime's outputs match the reference, over every document."""
    if kind == "dense":
        cosines = [
            sum(a * b for a, b in zip(t, o, strict=True)) for t, o in zip(reference, outputs, strict=True)
        ]
        return f"lowest cosine {min(cosines):.6f}"
    worst, overlap, missing = 0.0, [], 0
    for t, o in zip(reference, outputs, strict=True):
        floor = PRECISION * max(t.values(), default=0.0)
        missing += sum(1 for token, w in t.items() if w >= floor and token not in o)
        worst = max([worst, *(abs(o.get(k, 0.0) - w) / w for k, w in t.items() if w >= floor)])
        top = sorted(t, key=t.__getitem__, reverse=True)[:20]
        mine = sorted(o, key=o.__getitem__, reverse=True)[:20]
        overlap.append(len(set(top) & set(mine)) / max(1, len(top)))
    return (
        f"top-20 overlap {min(overlap):.3f} (lowest), largest relative difference of a weight above "
        f"2^-8 of its document's strongest {worst:.1e}, {missing} such tokens missing"
    )


def measure(kind: str, args: argparse.Namespace) -> tuple[list[str], str]:
    # Export (or find) the OpenVINO graph in a process of its own: the measured one reads the cache.
    prepare = Contender("openvino", kind, 2)
    prepare.close()
    runtimes = runtimes_for(kind)
    contenders = {runtime: Contender(runtime, kind, args.limit) for runtime in runtimes}
    try:
        outputs = {runtime: c.ask("outputs")["outputs"] for runtime, c in contenders.items()}
        rounds: dict[str, list[dict[str, Any]]] = {runtime: [] for runtime in runtimes}
        for r in range(args.rounds):
            order = runtimes[r % len(runtimes) :] + runtimes[: r % len(runtimes)]
            for runtime in order:
                rounds[runtime].append(contenders[runtime].ask("round"))
                print(f"{kind} round {r + 1}/{args.rounds} {runtime}: {rounds[runtime][-1]}", flush=True)
        loads = {runtime: c.ready["load_s"] for runtime, c in contenders.items()}
    finally:
        for c in contenders.values():
            c.close()
    base_rate = statistics.median(x["docs_s"] for x in rounds["torch"])
    base_p50 = statistics.median(x["p50_ms"] for x in rounds["torch"])
    rows = []
    for runtime in runtimes:
        rate = statistics.median(x["docs_s"] for x in rounds[runtime])
        p50 = statistics.median(x["p50_ms"] for x in rounds[runtime])
        spread = (
            f"{min(x['docs_s'] for x in rounds[runtime]):.1f}–{max(x['docs_s'] for x in rounds[runtime]):.1f}"
        )
        rows.append(
            f"| {kind} ({MODELS[kind]}) | {runtime} | {rate:,.1f} ({spread}) | {rate / base_rate:.2f}x | "
            f"{p50:.1f} | {p50 / base_p50:.2f}x | {rounds[runtime][-1]['peak_rss_mb']:,.0f} | {loads[runtime]:.1f} |"
        )
    rows.append(f"| {kind} ({MODELS[kind]}) | fastembed | not measured (see notes) | | | | | |")
    reference = fp32_reference(kind, args.limit)
    if reference is None:
        return rows, f"OpenVINO vs torch: {agreement(kind, outputs['torch'], outputs['openvino'])}"
    return rows, "against torch in exact fp32, " + "; ".join(
        f"{runtime}: {agreement(kind, reference, outputs[runtime])}" for runtime in runtimes
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=500, help="first N SciFact documents")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per runtime")
    parser.add_argument("--kinds", nargs="+", choices=sorted(MODELS), default=["sparse", "dense"])
    parser.add_argument("--serve", choices=[*RUNTIMES, EXACT_TORCH], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.kinds[0], args.limit)
        return
    load_before = os.getloadavg()[0]
    rows = [
        "| model | runtime | docs/s, median (range) | vs torch | single sentence p50 (ms) | vs torch "
        "| peak RSS (MB) | load (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for kind in args.kinds:
        kind_rows, agreed = measure(kind, args)
        rows += kind_rows
        notes.append(f"- {kind}, outputs over all {args.limit} documents: {agreed}.")
    if "sparse" in args.kinds and cpu_has_native_bf16():
        notes.append(
            "- This CPU has native bf16: the torch path projects the vocabulary in bf16 (its default "
            f"here), OpenVINO runs fp32 throughout; `{EXACT_TORCH}` is the torch path kept in fp32, "
            "the comparison at equal precision."
        )
    if importlib.util.find_spec("fastembed") is None:
        notes.append(f"- {FASTEMBED_NOTE}")
    load_after = os.getloadavg()[0]
    busy = max(load_before, load_after) > len(os.sched_getaffinity(0))
    command = f"python benchmarks/bench_runtimes.py --limit {args.limit} --rounds {args.rounds} --kinds {' '.join(args.kinds)}"
    header = (
        f"Hardware: {hardware()}. {args.limit} SciFact documents (title + text, cut to {MAX_LEN} tokens; "
        f"dense: the model's 256), through the engine as the worker sends them (bulks of {BULK}, "
        f"{IN_FLIGHT} in flight); single sentence: {SENTENCES} first sentences one at a time. "
        f"{args.rounds} interleaved rounds, median. Command: `{command}`. "
        f"Load average {load_before:.1f} at the start, {load_after:.1f} at the end"
        + (" (above the core count: other jobs shared the CPU, numbers are noisy)." if busy else ".")
    )
    text = header + "\n\n" + "\n".join(rows) + "\n\n" + "\n".join(notes)
    print(text)
    if not args.no_write:
        write_section("CPU runtimes", text + "\n")


if __name__ == "__main__":
    main()
