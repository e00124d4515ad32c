"""Progress while a backfill runs (a rich bar on a terminal, log lines otherwise) and its summary."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

log = logging.getLogger("sidecar.backfill")


@dataclass
class Stats:
    scanned: int = 0  # documents read
    enriched: int = 0  # documents updated and acknowledged (or, in a dry run, that would be)
    skipped: int = 0  # documents read and left alone
    failed: int = 0  # documents sent to the dead letter
    inferred: int = 0  # texts sent to inference

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Stats:
        raw = raw or {}
        return cls(**{f.name: int(raw.get(f.name, 0)) for f in fields(cls)})


class ProgressReporter(Protocol):
    def start(self, total: int | None, done: Stats) -> None: ...

    def update(self, stats: Stats) -> None: ...

    def close(self) -> None: ...


class RichProgress:
    def __init__(self, label: str, console: Console | None = None) -> None:
        self.label = escape(label)  # `[pipeline]` is not rich markup
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>8.1f} docs/s"),
            TextColumn(
                "enriched {task.fields[enriched]} skipped {task.fields[skipped]} failed {task.fields[failed]}"
            ),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self.task: Any = None
        self.started = time.monotonic()
        self.base = 0

    def start(self, total: int | None, done: Stats) -> None:
        self.base = done.scanned
        self.progress.start()
        self.task = self.progress.add_task(
            self.label, total=total, completed=0, rate=0.0, enriched=0, skipped=0, failed=0
        )

    def update(self, stats: Stats) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.progress.update(
            self.task,
            completed=stats.scanned - self.base,
            rate=(stats.scanned - self.base) / elapsed,
            enriched=stats.enriched,
            skipped=stats.skipped,
            failed=stats.failed,
        )

    def close(self) -> None:
        self.progress.stop()


class LogProgress:
    """One log line every `interval_s` seconds (and at the end)."""

    def __init__(self, label: str, interval_s: float = 10.0) -> None:
        self.label = label
        self.interval_s = interval_s
        self.total: int | None = None
        self.started = time.monotonic()
        self.next_line = self.started + interval_s
        self.base = 0
        self.last: Stats | None = None

    def start(self, total: int | None, done: Stats) -> None:
        self.total, self.base = total, done.scanned
        log.info("%s: %s documents to read", self.label, "?" if total is None else total)

    def update(self, stats: Stats) -> None:
        self.last = stats
        now = time.monotonic()
        if now >= self.next_line:
            self.next_line = now + self.interval_s
            self._line(stats, now)

    def _line(self, stats: Stats, now: float) -> None:
        read = stats.scanned - self.base
        rate = read / max(now - self.started, 1e-6)
        eta = "?"
        if self.total is not None and rate > 0:
            eta = f"{max(self.total - read, 0) / rate:.0f}s"
        total = "?" if self.total is None else str(self.total)
        log.info(
            "%s: read %d/%s, enriched %d, skipped %d, failed %d, %.1f docs/s, eta %s",
            self.label, read, total, stats.enriched, stats.skipped, stats.failed, rate, eta,
        )  # fmt: skip

    def close(self) -> None:
        if self.last is not None:
            self._line(self.last, time.monotonic())


def summary_table(title: str, rows: list[tuple[str, Stats, float | None]], *, dry_run: bool) -> Table:
    """One row per (label, stats, seconds); docs/s only where the seconds are known."""
    table = Table(title=escape(title))
    enriched = "would enrich" if dry_run else "enriched"
    for name in ("", "scanned", enriched, "skipped", "failed", "inferred texts", "seconds", "docs/s"):
        table.add_column(name, justify="right")
    for label, stats, seconds in rows:
        rate = f"{stats.scanned / seconds:.1f}" if seconds else "-"
        table.add_row(
            label, str(stats.scanned), str(stats.enriched), str(stats.skipped), str(stats.failed),
            str(stats.inferred), "-" if seconds is None else f"{seconds:.1f}", rate,
        )  # fmt: skip
    return table
