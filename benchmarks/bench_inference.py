"""Sparse encoding throughput: this engine vs a naive loop vs sentence-transformers' SparseEncoder.

Same inputs for every contender (SciFact corpus, title + " " + text, cut to 512 tokens); each runs
in its own subprocess so peak RSS is its own. Plus 64 concurrent single-sentence callers vs
one-at-a-time calls through the same engine. Prints one table and writes the "Inference" section
of docs/benchmarks.md.

    python benchmarks/bench_inference.py [--limit 500] [--device cpu|cuda] [--model-size tiny|base]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "datasets" / "scifact" / "corpus.jsonl"
MAX_LEN = 512
IN_FLIGHT_BULKS = 8  # engine contender: bulks of 32 texts awaited at once


def load_texts(limit: int | None) -> list[str]:
    texts = []
    with CORPUS.open(encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            texts.append(f"{doc.get('title', '')} {doc.get('text', '')}".strip())
            if limit and len(texts) >= limit:
                break
    return texts


def model_dir(size: str, workdir: Path) -> str:
    """tiny = the packaged SPLADE-tiny; base = a random-weight BERT-base masked LM (no download)."""
    sys.path.insert(0, str(ROOT))
    from sidecar.inference.models import resolve_model_path

    tiny = resolve_model_path(".splade_tiny")
    if size == "tiny":
        return tiny
    target = workdir / "bert-base-random"
    if not (target / "config.json").exists():
        import shutil

        from transformers import BertConfig, BertForMaskedLM

        config = BertConfig(
            vocab_size=30522,
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            max_position_embeddings=512,
        )
        BertForMaskedLM(config).save_pretrained(target)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(Path(tiny) / name, target / name)
    return str(target)


# --- contenders (each runs inside its own subprocess) ---------------------------------------------
def production_engine(path: str, device: str, runtime: str = "auto", **options: Any) -> Any:
    """The engine exactly as `sidecar serve` builds it (default batch limits and CPU runtime)."""
    from sidecar.inference.executor import build_engine
    from sidecar.settings import Settings

    settings = Settings(device=device, max_queue=1 << 20, cpu_runtime=runtime)
    return build_engine(settings, "sparse", path, MAX_LEN, **options)


def run_engine(texts: list[str], path: str, device: str, bf16: bool | None) -> dict[str, Any]:
    from sidecar.rank_features import clean_features

    # An explicit projection precision is a torch option: that row measures the torch path.
    engine = production_engine(path, device, "auto" if bf16 is None else "torch", cpu_bf16=bf16)

    async def main() -> tuple[int, int]:
        # Like the worker: bulks of 32, a bounded number in flight, results consumed as they come
        # (so peak memory shows the engine's, not a pile of finished results).
        parts = iter([texts[i : i + 32] for i in range(0, len(texts), 32)])
        totals = [0, 0]

        async def caller() -> None:
            for part in parts:
                for result in await engine.encode(part):
                    totals[0] += 1
                    totals[1] += len(clean_features(result.embedding))

        await asyncio.gather(*(caller() for _ in range(IN_FLIGHT_BULKS)))
        return totals[0], totals[1]

    start = time.perf_counter()
    docs, nnz = asyncio.run(main())
    seconds = time.perf_counter() - start
    engine.close()
    return {"seconds": seconds, "docs": docs, "nnz": nnz / docs}


def run_naive(texts: list[str], path: str, device: str) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForMaskedLM.from_pretrained(path).eval().to(device)
    vocab = {i: t for t, i in tok.get_vocab().items()}
    start = time.perf_counter()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            enc = tok(
                texts[i : i + 32], padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt"
            )
            enc = {k: v.to(device) for k, v in enc.items()}
            logits = model(**enc).logits
            weights = (torch.log1p(torch.relu(logits)) * enc["attention_mask"].unsqueeze(-1)).amax(dim=1)
            for row in weights.cpu():
                idx = torch.nonzero(row).flatten().tolist()
                out.append({vocab[j]: float(row[j]) for j in idx})
    return {"seconds": time.perf_counter() - start, "docs": len(out), "nnz": sum(map(len, out)) / len(out)}


def run_sparse_encoder(texts: list[str], path: str, device: str) -> dict[str, Any]:
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling

    model = SparseEncoder(
        modules=[MLMTransformer(path, max_seq_length=MAX_LEN), SpladePooling("max")], device=device
    )
    start = time.perf_counter()
    emb = model.encode(texts, batch_size=32, convert_to_sparse_tensor=True)
    decoded = model.decode(emb)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "docs": len(decoded), "nnz": sum(map(len, decoded)) / len(decoded)}


def run_concurrency(texts: list[str], path: str, device: str) -> dict[str, Any]:
    sentences = [t.split(". ")[0][:200] for t in texts][:512]
    engine = production_engine(path, device)

    async def serial() -> float:
        start = time.perf_counter()
        for s in sentences:
            await engine.encode([s])
        return time.perf_counter() - start

    async def concurrent() -> float:
        queue = list(sentences)

        async def caller() -> None:
            while queue:
                await engine.encode([queue.pop()])

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(64)))
        return time.perf_counter() - start

    one, many = asyncio.run(serial()), asyncio.run(concurrent())
    engine.close()
    return {"docs": len(sentences), "serial_s": one, "concurrent_s": many}


def worker(mode: str, args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    texts = load_texts(args.limit)
    path = model_dir(args.model_size, Path(args.workdir))
    if args.device == "cpu":
        import torch

        torch.set_num_threads(len(os.sched_getaffinity(0)))
    runners = {
        "engine": lambda: run_engine(texts, path, args.device, None),
        "engine-fp32": lambda: run_engine(texts, path, args.device, False),
        "naive": lambda: run_naive(texts, path, args.device),
        "sparse_encoder": lambda: run_sparse_encoder(texts, path, args.device),
        "concurrency": lambda: run_concurrency(texts, path, args.device),
    }
    result = runners[mode]()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


# --- driver ----------------------------------------------------------------------------------------
def hardware(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(0)} (CUDA), {os.cpu_count()} CPU cores"
    name = platform.processor()
    try:
        name = next(
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return f"{name}, {len(os.sched_getaffinity(0))} cores usable"


def spawn(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        mode,
        "--device",
        args.device,
        "--model-size",
        args.model_size,
        "--workdir",
        args.workdir,
    ] + (["--limit", str(args.limit)] if args.limit else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line.removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=None, help="first N documents only (quick runs)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-size", choices=["tiny", "base"], default="tiny")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "sidecar-bench"))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args)
        return
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    texts = load_texts(args.limit)
    from sidecar.inference.models import load_fast_tokenizer

    fast, _ = load_fast_tokenizer(model_dir(args.model_size, Path(args.workdir)), MAX_LEN)
    tokens = sum(len(e.ids) for e in fast.encode_batch(texts))
    load_before = os.getloadavg()[0]
    modes = ["engine", "naive", "sparse_encoder"] + (["engine-fp32"] if args.device == "cpu" else [])
    results = {m: spawn(m, args) for m in modes}
    # Peak memory must not grow with the corpus: the same engine on a tenth of the inputs.
    tenth = argparse.Namespace(**{**vars(args), "limit": max(10, len(texts) // 10)})
    small = spawn("engine", tenth)
    conc = spawn("concurrency", args)
    naive_rate = results["naive"]["docs"] / results["naive"]["seconds"]
    st_rate = results["sparse_encoder"]["docs"] / results["sparse_encoder"]["seconds"]
    labels = {
        "engine": "this engine",
        "engine-fp32": "this engine, torch runtime, fp32 projection",
        "naive": "naive loop (batch 32)",
        "sparse_encoder": "sentence-transformers SparseEncoder",
    }
    rows = [
        "| contender | docs/s | tokens/s | peak RSS (MB) | vs naive | vs SparseEncoder | avg tokens kept |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for mode in modes:
        r = results[mode]
        rate = r["docs"] / r["seconds"]
        rows.append(
            f"| {labels[mode]} | {rate:,.1f} | {tokens / r['seconds']:,.0f} | {r['peak_rss_mb']:,.0f} | "
            f"{rate / naive_rate:.2f}x | {rate / st_rate:.2f}x | {r['nnz']:.0f} |"
        )
    serial_rate, conc_rate = conc["docs"] / conc["serial_s"], conc["docs"] / conc["concurrent_s"]
    rows.append(
        f"| 64 concurrent single-sentence callers | {conc_rate:,.1f} | | {conc['peak_rss_mb']:,.0f} | "
        f"{conc_rate / serial_rate:.2f}x vs one-at-a-time ({serial_rate:,.1f}/s) | | |"
    )
    rows.append(
        f"| this engine on a tenth of the inputs ({small['docs']} docs) | "
        f"{small['docs'] / small['seconds']:,.1f} | | {small['peak_rss_mb']:,.0f} | "
        f"peak RSS x{results['engine']['peak_rss_mb'] / small['peak_rss_mb']:.2f} for 10x the inputs | | |"
    )
    model = (
        "packaged SPLADE-tiny (2 layers, hidden 128)"
        if args.model_size == "tiny"
        else ("random-weight BERT-base masked LM (12 layers, hidden 768)")
    )
    header = (
        f"Hardware: {hardware(args.device)}. Device: {args.device}. Model: {model}. Inputs: {len(texts)} "
        f"SciFact documents (title + text), {tokens:,} tokens after cutting to {MAX_LEN}. "
        f"Command: `python benchmarks/bench_inference.py{' --limit ' + str(args.limit) if args.limit else ''}"
        f" --device {args.device} --model-size {args.model_size}`."
    )
    table = "\n".join(rows)
    load_after = os.getloadavg()[0]
    header += f" Load average {load_before:.1f} at the start, {load_after:.1f} at the end"
    busy = max(load_before, load_after) > len(os.sched_getaffinity(0))
    # Above the core count other jobs shared the CPU: say so next to the numbers.
    header += " (above the core count: other jobs shared the CPU, numbers are noisy)." if busy else "."
    print(header + "\n\n" + table)
    if not args.no_write:
        write_section(f"{header}\n\n{table}\n", f"Inference ({args.device}, {args.model_size})")


def write_section(body: str, title: str) -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.report import write_section as write_report_section

    write_report_section(title, body)


if __name__ == "__main__":
    main()
