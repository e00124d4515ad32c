"""The `sidecar backfill` command line and its progress output (no engine involved)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sidecar.backfill.command import parse_query
from sidecar.backfill.progress import LogProgress, RichProgress, Stats, summary_table
from sidecar.cli import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--force", "--changed"], "one of --force and --changed"),
        (["--slices", "2", "--slice", "2"], "--slice must be in [0, 1]"),
        (["--alias", "live"], "--alias needs --reindex-to"),
        (["--query", "[1]"], "must be a JSON object"),
        (["--query", "{nope"], "--query is not JSON"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(
    args: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["backfill", "--pipeline", str(tmp_path / "p.yaml"), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_an_invalid_pipeline_is_reported_with_its_problems(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("name: x\nsource: {}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["backfill", "--pipeline", str(pipeline)])
    assert result.exit_code == 2
    assert "source: set [kafka] and/or [ingest_hook]" in result.output


def test_queries_parse() -> None:
    assert parse_query('{"term": {"lang": "en"}}') == {"term": {"lang": "en"}}
    assert parse_query(None) is None


def test_rich_progress_and_the_summary_render() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140)
    progress = RichProgress("backfill [p] slice 1/1", console)
    progress.start(100, Stats(scanned=10))
    progress.update(Stats(scanned=60, enriched=40, skipped=8, failed=2))
    progress.close()
    assert "50/100" in out.getvalue() and "enriched 40" in out.getvalue()
    table = summary_table("t", [("this run", Stats(scanned=60, enriched=40), 2.0), ("all runs", Stats(70), None)],
                          dry_run=True)  # fmt: skip
    console.print(table)
    assert "would enrich" in out.getvalue() and "30.0" in out.getvalue()


def test_log_progress_writes_lines(caplog: pytest.LogCaptureFixture) -> None:
    progress = LogProgress("bf", interval_s=0)
    with caplog.at_level("INFO", logger="sidecar.backfill"):
        progress.start(20, Stats())
        progress.update(Stats(scanned=10, enriched=9, failed=1))
        progress.close()
    assert "bf: read 10/20, enriched 9, skipped 0, failed 1" in caplog.text
    assert json.dumps(Stats(1, 2, 3, 4, 5).as_dict()) == (
        '{"scanned": 1, "enriched": 2, "skipped": 3, "failed": 4, "inferred": 5}'
    )
