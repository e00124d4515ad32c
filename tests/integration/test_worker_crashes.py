"""The worker killed with SIGKILL three times mid-stream and restarted: exactly 5,000 documents.

Nothing is lost (every id is indexed) and nothing is duplicated (the count equals the ids): offsets
are committed only after the engine acknowledged, and redelivered messages keep their ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.worker_harness import (
    Engine,
    Names,
    WorkerProcess,
    kafka_topics,
    mixed_stream,
    produce,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration

DOCS = 5_000


async def test_three_sigkills_mid_stream_lose_and_duplicate_nothing(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    docs = scifact_titles(DOCS)
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic):
        await produce(kafka_bootstrap, names.topic, mixed_stream(docs, []))
        # Small batches and in-flight bound so every kill lands with work in flight.
        pipeline = write_pipeline(
            tmp_path / "p.yaml",
            names,
            engine_name,
            url,
            kafka_bootstrap,
            source__kafka__max_poll_records=100,
            worker__max_in_flight_docs=400,
        )
        try:
            counts = []
            for threshold in (DOCS // 5, 2 * DOCS // 5, 3 * DOCS // 5):
                worker = WorkerProcess(pipeline, tmp_path)
                try:
                    await worker.wait_ready()

                    async def past(threshold: int = threshold) -> bool:
                        return await client.count(names.index) >= threshold

                    await wait_for(past, 300, f"{threshold} documents indexed")
                    worker.kill()
                finally:
                    worker.ensure_stopped()
                counts.append(await client.count(names.index))
            assert all(c < DOCS for c in counts), f"a kill came after the end of the stream: {counts}"

            worker = WorkerProcess(pipeline, tmp_path)
            try:
                await worker.wait_ready()

                async def done() -> bool:
                    return await client.count(names.index) >= DOCS

                await wait_for(done, 300, "all documents after the restarts")
                assert worker.terminate() == 0, worker.log_tail()
            finally:
                worker.ensure_stopped()

            assert await client.count(names.index) == DOCS
            assert sorted(await client.docs(names.index, False)) == sorted(d["id"] for d in docs)
            assert await client.count(names.dlq_index) == 0
        finally:
            await client.delete(names.index, names.dlq_index)
