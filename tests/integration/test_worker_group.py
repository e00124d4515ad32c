"""Two workers in one consumer group, one joining late and the first leaving: nothing lost or duplicated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.worker_harness import (
    Engine,
    Names,
    WorkerProcess,
    committed_offsets,
    end_offsets,
    kafka_topics,
    mixed_stream,
    produce,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration

DOCS = 2_000


@pytest.fixture(params=["opensearch", "elasticsearch"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str, Engine]]:
    url = str(request.getfixturevalue("opensearch_url" if request.param == "opensearch" else "es_url"))
    client = Engine(url)
    yield str(request.param), url, client
    await client.close()


async def test_late_join_and_leave_rebalance_without_loss(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    docs = scifact_titles(DOCS)
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic, partitions=6):
        await produce(kafka_bootstrap, names.topic, mixed_stream(docs, []))
        pipeline = write_pipeline(
            tmp_path / "p.yaml",
            names,
            engine_name,
            url,
            kafka_bootstrap,
            source__kafka__max_poll_records=100,
            worker__max_in_flight_docs=300,
        )
        first = WorkerProcess(pipeline, tmp_path, "first")
        second: WorkerProcess | None = None
        try:
            await first.wait_ready()

            async def past(threshold: int) -> bool:
                return await client.count(names.index) >= threshold

            await wait_for(lambda: past(DOCS // 5), 300, "the first worker under way")
            second = WorkerProcess(pipeline, tmp_path, "second")
            await second.wait_ready()
            await wait_for(
                lambda: second.metric("sidecar_worker_consumed_total"),
                120,  # type: ignore[union-attr]
                "the late worker to receive partitions and consume",
            )
            assert await client.count(names.index) < DOCS, "the stream ended before the second worker joined"
            first_consumed = await first.metric("sidecar_worker_consumed_total")
            assert first.terminate() == 0, first.log_tail()  # leaves the group: its partitions move over

            await wait_for(lambda: past(DOCS), 300, "the remaining documents by the second worker")
            second_consumed = await second.metric("sidecar_worker_consumed_total")
            assert second.terminate() == 0, second.log_tail()
            assert first_consumed > 0 and second_consumed > 0
            # Redelivery after a rebalance is allowed (at-least-once), loss is not.
            assert first_consumed + second_consumed >= DOCS

            assert await client.count(names.index) == DOCS
            assert sorted(await client.docs(names.index, False)) == sorted(d["id"] for d in docs)
            assert await committed_offsets(kafka_bootstrap, names.group) == await end_offsets(
                kafka_bootstrap, names.topic, 6
            )
        finally:
            first.ensure_stopped()
            if second is not None:
                second.ensure_stopped()
            await client.delete(names.index, names.dlq_index)
