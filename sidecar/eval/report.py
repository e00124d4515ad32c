"""Show an evaluation: a rich table beside published numbers, a JSON file and a bar chart PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sidecar.eval.reference import Published
from sidecar.eval.runner import EvalReport


def published_for(report: EvalReport) -> list[Published]:
    """The reference's published rows: only those asked for (`--reference`)."""
    return list(report.reference.published) if report.reference is not None else []


def harness_check(report: EvalReport) -> tuple[bool, str] | None:
    """(passed, sentence) when the reference has a check and the report the run it names, else None."""
    check = report.reference.check if report.reference is not None else None
    score = next((s for s in report.scores if check and s.name == check.method), None)
    if check is None or score is None:
        return None
    delta = score.ndcg10 - check.ndcg10
    ok = abs(delta) <= check.tolerance
    verdict = "within" if ok else "OUTSIDE"
    return ok, (f"harness check: {check.method} nDCG@10 {score.ndcg10:.4f} vs published {check.ndcg10:.3f}: "
                f"{delta:+.4f}, {verdict} ±{check.tolerance}")


def _size(size: int | None) -> str:
    return "unknown" if size is None else f"{size / 1024 / 1024:.1f} MiB"


def print_report(report: EvalReport, console: Console | None = None) -> None:
    console = console or Console()
    title = (f"{report.dataset} ({report.split}) on {report.engine}: {report.queries} queries, "
             f"{report.docs} documents")
    table = Table(title=title)
    table.add_column("method")
    table.add_column("nDCG@10", justify="right")
    table.add_column("Recall@100", justify="right")
    table.add_column("how")
    for score in report.scores:
        table.add_row(score.name, f"{score.ndcg10:.4f}", f"{score.recall100:.4f}", score.note)
    published = published_for(report)
    if published:
        table.add_section()
        for row in published:
            recall = f"[dim]{row.recall100:.4f}[/]" if row.recall100 is not None else ""
            table.add_row(f"[dim]published: {row.system}[/]", f"[dim]{row.ndcg10:.4f}[/]", recall, "")
    console.print(table)
    info = report.index
    console.print(
        f"index [bold]{info.name}[/]: {_size(info.size_bytes)}, {info.sparse_postings:,} sparse postings "
        f"(doc top-k {report.doc_top_k or 'none'}, query top-k {report.query_top_k or 'none'}, "
        f"max length {report.max_length}); "
        + ("reused" if info.reused else f"indexed in {info.seconds:.1f} s")
        + (f"; encoded in {report.encode_seconds:.0f} s" if report.encode_seconds else "; encodings cached")
    )
    check = harness_check(report)
    if check is not None:
        console.print(("[green]" if check[0] else "[bold red]") + check[1] + "[/]")
    for warning in report.warnings:
        console.print(f"[yellow]warning: {warning}[/]", soft_wrap=True)
    if report.dense_endpoint and not report.dense_in_engine:
        console.print("dense: the engine has no vector field type; scored by exact brute force in Python")
    if report.sweep:
        print_sweep(report, console)


def print_sweep(report: EvalReport, console: Console) -> None:
    table = Table(title="min-max fusion weight sweep (best 3 per combination)")
    for column in ("methods", "weights", "nDCG@10", "Recall@100"):
        table.add_column(column)
    combos = sorted({tuple(row["methods"]) for row in report.sweep}, key=len)
    for combo in combos:
        rows = sorted((r for r in report.sweep if tuple(r["methods"]) == combo), key=lambda r: -r["ndcg10"])
        for row in rows[:3]:
            table.add_row("+".join(combo), "/".join(f"{w:g}" for w in row["weights"]),
                          f"{row['ndcg10']:.4f}", f"{row['recall100']:.4f}")
    console.print(table)


def write_json(report: EvalReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend. Charts are the optional `reports` extra, so
    a missing matplotlib is an ImportError that says how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("charts need matplotlib: pip install 'sparse-sidecar[reports]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_chart(report: EvalReport, path: Path) -> None:
    """Horizontal bars of nDCG@10 per method, published numbers in grey below them."""
    plt = pyplot()

    ours = [(s.name, s.ndcg10) for s in report.scores]
    theirs = [(f"published: {row.system}", row.ndcg10) for row in published_for(report)]
    labels = [n for n, _ in ours + theirs][::-1]
    values = [v for _, v in ours + theirs][::-1]
    colours = (["#1f77b4"] * len(ours) + ["#b0b0b0"] * len(theirs))[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(labels) + 1.2))
    bars = ax.barh(labels, values, color=colours)
    ax.bar_label(bars, fmt="%.3f", padding=3, fontsize=8)
    low = min(values) if values else 0.0
    ax.set_xlim(max(0.0, low - 0.1), min(1.0, max(values, default=1.0) + 0.05))
    ax.set_xlabel("nDCG@10")
    ax.set_title(f"{report.dataset} ({report.engine}): nDCG@10 per method")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
