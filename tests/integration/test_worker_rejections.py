"""Per-item 429s inside bulk responses are retried (successes kept); a mapping conflict is dead-lettered.

The test proxy answers chosen bulk items with `429 es_rejected_execution_exception` without
forwarding them, twice per chosen document, so only a retry can index them. Documents whose `year`
contradicts the index mapping are refused by the engine itself and must land in the dead letter.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.fault_proxy import FaultProxy
from tests.integration.worker_harness import (
    Engine,
    Names,
    Outgoing,
    WorkerProcess,
    kafka_topics,
    produce,
    read_topic,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration

DOCS = 1_000
CONFLICTS = 20
REJECTED_TWICE = DOCS // 10


async def test_item_429s_are_retried_and_mapping_conflicts_dead_lettered(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    docs = scifact_titles(DOCS + CONFLICTS)
    good, conflicting = docs[:DOCS], docs[DOCS:]
    messages = [
        Outgoing(d["id"].encode(), json.dumps({**d, "year": 2000 + i % 20}).encode())
        for i, d in enumerate(good)
    ]
    messages += [
        Outgoing(d["id"].encode(), json.dumps({**d, "year": "unknown"}).encode()) for d in conflicting
    ]
    proxy = FaultProxy(url)
    proxy.reject_first = {d["id"]: 2 for d in good[::10]}
    await proxy.start()
    created = await client.client.put(
        f"/{names.index}", json={"mappings": {"properties": {"year": {"type": "integer"}}}}
    )
    assert created.status_code == 200, created.text
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic):
        await produce(kafka_bootstrap, names.topic, messages)
        pipeline = write_pipeline(
            tmp_path / "p.yaml",
            names,
            engine_name,
            proxy.url,
            kafka_bootstrap,
            errors__backoff={"initial_ms": 50, "max_ms": 500},
            errors__max_retries=3,
        )
        worker = WorkerProcess(pipeline, tmp_path)
        try:
            await worker.wait_ready()

            async def done() -> bool:
                return (
                    await client.count(names.index) >= DOCS
                    and await client.count(names.dlq_index) >= CONFLICTS
                )

            await wait_for(done, 300, "every document indexed or dead-lettered")
            retried = await worker.metric("sidecar_worker_retried_total", kind="item")
            assert worker.terminate() == 0, worker.log_tail()

            assert proxy.injected == 2 * REJECTED_TWICE and all(n == 0 for n in proxy.reject_first.values())
            assert retried >= 2 * REJECTED_TWICE
            assert sorted(await client.docs(names.index, False)) == sorted(d["id"] for d in good)

            letters = await client.docs(names.dlq_index)
            assert len(letters) == CONFLICTS
            assert sorted(json.loads(v["message"]["value"])["id"] for v in letters.values()) == sorted(
                d["id"] for d in conflicting
            )
            for letter in letters.values():
                assert letter["error"]["stage"] == "index"
                assert letter["error"]["type"] in {"mapper_parsing_exception", "document_parsing_exception"}
                assert "year" in letter["error"]["reason"]
            records = await read_topic(kafka_bootstrap, names.dlq_topic, CONFLICTS)
            assert len(records) == CONFLICTS
            assert {dict(r.headers)["sidecar.error.stage"] for r in records} == {b"index"}
        finally:
            worker.ensure_stopped()
            await proxy.close()
            await client.delete(names.index, names.dlq_index)
