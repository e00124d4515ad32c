"""`sidecar worker` logs one JSON object per line through the one formatter, whatever the message
holds (quotes, newlines, a traceback)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sidecar.commands.worker import worker_command
from sidecar.settings import Settings, load_settings


@pytest.fixture
def _root_logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


async def _worker_run(paths: Sequence[Path], settings: Settings, **_: Any) -> int:
    """What a worker run logs, through the worker's own loggers."""
    log = logging.getLogger("sidecar.worker")
    log.info('pipeline "docs" started', extra={"pipeline": "docs", "partitions": [0, 1]})
    log.warning('document "a\\"b" refused:\nline two\ttab', extra={"offset": 7})
    try:
        raise ValueError('bad "value"\non two lines')
    except ValueError:
        log.exception("batch failed")
    logging.getLogger("aiokafka").info("chatty connection record")  # quieted below WARNING
    logging.getLogger("aiokafka").error('broker "b1" unreachable')
    return 0


def test_every_worker_log_line_is_json(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, _root_logging_restored: None
) -> None:
    monkeypatch.setattr("sidecar.worker.main.run_worker", _worker_run)
    settings = load_settings(log_json=True, log_level="INFO")
    assert worker_command([Path("p.yaml")], "127.0.0.1", 0, settings) == 0
    lines = capfd.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]  # every line parses
    assert [r["message"] for r in records] == [
        'pipeline "docs" started',
        'document "a\\"b" refused:\nline two\ttab',
        "batch failed",
        'broker "b1" unreachable',
    ]
    assert records[0]["partitions"] == [0, 1] and records[1]["offset"] == 7
    assert 'bad "value"\non two lines' in records[2]["exception"]
    assert {r["logger"] for r in records} == {"sidecar.worker", "aiokafka"}
    assert not any("request_id" in r for r in records)  # no request is being served
