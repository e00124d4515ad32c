"""A real `sidecar worker` run logs JSON only: every line of its output parses, poison included
(whose error messages quote the bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.worker_harness import (
    Engine,
    Names,
    WorkerProcess,
    kafka_topics,
    malformed_messages,
    mixed_stream,
    produce,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration


async def test_every_line_of_a_worker_run_is_a_json_record(
    opensearch_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    client = Engine(opensearch_url)
    names = Names()
    client.own(names.index, names.dlq_index)
    docs, poison = scifact_titles(20), malformed_messages(7)
    try:
        async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic):
            pipeline = write_pipeline(tmp_path / "p.yaml", names, "opensearch", opensearch_url, kafka_bootstrap)
            await produce(kafka_bootstrap, names.topic, mixed_stream(docs, poison))
            worker = WorkerProcess(pipeline, tmp_path, json_logs=True)
            try:
                await worker.wait_ready()

                async def all_handled() -> bool:
                    return (await client.count(names.index), await client.count(names.dlq_index)) == (20, 7)

                await wait_for(all_handled, 300, "the documents indexed and the poison dead-lettered")
                assert worker.terminate() == 0, worker.log_tail()
            finally:
                worker.ensure_stopped()
    finally:
        await client.close()
    lines = worker.log_path.read_text(encoding="utf-8").splitlines()
    assert lines, "the worker logged nothing"
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError(f"log line {number} is not JSON: {line!r}") from exc
    assert all({"ts", "level", "logger", "message"} <= set(record) for record in records)
