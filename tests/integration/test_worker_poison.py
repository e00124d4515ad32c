"""Small messages that used to stop the worker for good are dead-lettered; the worker moves past them.

JSON nested 5,000 levels deep (a `RecursionError` in the decoder), a lone-surrogate escape
(`"\\udc00"`) in a field the pipeline does not read (the bulk request cannot be encoded), the same in
the input field and in the document id. Each must land in the dead-letter index with its reason on the
first try while the valid documents around them are indexed and the offsets reach the topic's end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.worker_harness import (
    Engine,
    Names,
    Outgoing,
    WorkerProcess,
    committed_offsets,
    end_offsets,
    kafka_topics,
    produce,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration

DOCS = 300
DEPTH = 5_000

# value (raw JSON text) -> the error type its dead letter must carry
POISON: dict[str, str] = {
    '{"id": "deep", "title": "t", "n": ' + "[" * DEPTH + "]" * DEPTH + "}": "invalid_json",
    '{"id": "surrogate-other", "title": "t", "note": "a\\udc00b"}': "invalid_text",
    '{"id": "surrogate-input", "title": "x\\ud800"}': "invalid_text",
    '{"id": "x\\udc00", "title": "t"}': "invalid_text",
}


async def test_deep_nesting_and_lone_surrogates_are_dead_lettered(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    docs = scifact_titles(DOCS)
    messages = [Outgoing(None, json.dumps(d).encode()) for d in docs]
    for pos, value in enumerate(POISON):  # spread over the stream, each in a batch with valid documents
        messages.insert((pos + 1) * DOCS // (len(POISON) + 1), Outgoing(None, value.encode()))
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic, partitions=1):
        await produce(kafka_bootstrap, names.topic, messages)
        pipeline = write_pipeline(
            tmp_path / "p.yaml",
            names,
            engine_name,
            url,
            kafka_bootstrap,
            source__kafka__document_id={"from": "field", "field": "id"},
            source__kafka__max_poll_records=50,
        )
        worker = WorkerProcess(pipeline, tmp_path)
        try:
            await worker.wait_ready()
            ends = await end_offsets(kafka_bootstrap, names.topic, 1)

            async def done() -> bool:
                if worker.proc.poll() is not None:
                    raise AssertionError(f"worker exited with {worker.proc.returncode}:\n{worker.log_tail()}")
                return await committed_offsets(kafka_bootstrap, names.group) == ends

            await wait_for(done, 180, "the offsets to reach the end of the topic")
            assert worker.terminate() == 0, worker.log_tail()

            assert sorted(await client.docs(names.index, False)) == sorted(d["id"] for d in docs)
            letters = await client.docs(names.dlq_index)
            found = {letter["message"]["value"]: letter["error"] for letter in letters.values()}
            assert {value: error["type"] for value, error in found.items()} == POISON
            for error in found.values():
                assert error["stage"] == "decode" and error["reason"]
        finally:
            worker.ensure_stopped()
