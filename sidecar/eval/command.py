"""`sidecar eval`: run the evaluation with a progress bar, print the table, write JSON and a chart."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from sidecar.errors import SidecarError
from sidecar.eval.report import print_report, write_chart, write_json
from sidecar.eval.runner import EvalOptions, EvalReport, run_eval


def _run(options: EvalOptions, console: Console) -> EvalReport:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, object] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)  # type: ignore[arg-type]

        return asyncio.run(run_eval(options, progress))


def print_error(err: SidecarError) -> int:
    """One line on stderr, as the other commands report errors; the exit status."""
    Console(stderr=True).print(f"error: {err.es_type}: {err.reason}", markup=False, soft_wrap=True)
    return 1


def eval_command(options: EvalOptions, out_dir: Path) -> int:
    # Piped output (logs, docs) keeps the full table width instead of rich's 80-column default.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    try:
        report = _run(options, console)
    except SidecarError as err:
        return print_error(err)
    print_report(report, console)
    doc_k = f"k{report.doc_top_k}" if report.doc_top_k else "full"
    query_k = f"q{report.query_top_k or 'all'}"
    endpoint = report.sparse_endpoint.strip(".").replace("/", "_")
    split = f"-{report.split}" if report.split != "test" else ""
    stem = f"{report.dataset.lower()}{split}-{report.engine}-{endpoint}-{doc_k}-{query_k}-{report.max_length}"
    write_json(report, out_dir / f"{stem}.json")
    try:
        write_chart(report, out_dir / f"{stem}.png")
    except ImportError as exc:  # charts are an optional extra; the numbers are already written
        console.print(f"wrote {out_dir / stem}.json (no chart: {exc})", markup=False)
        return 0
    console.print(f"wrote {out_dir / stem}.json and .png")
    return 0
