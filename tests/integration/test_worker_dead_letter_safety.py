"""No configuration drops a record: default dead-letter index, `tolerance: none`, a refusing dead letter.

- Without any dead-letter destination, poison goes to `<pipeline>-dead-letter`.
- With `errors.tolerance: none`, the worker stops at the first poison message, exits nonzero with
  the record's coordinates, and its offset is never committed.
- A dead-letter index that refuses writes (a write block) pauses the pipeline and is retried, with
  the reason in health; nothing past the refused record is committed. Once the block is lifted the
  letters are stored and the offsets reach the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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

DOCS = 200


def stream(docs: list[dict[str, str]], poison_at: list[int]) -> list[Outgoing]:
    """The documents with a JSON array (not an object) at each position of `poison_at`."""
    out = [Outgoing(d["id"].encode(), json.dumps(d).encode()) for d in docs]
    for pos in sorted(poison_at, reverse=True):
        out.insert(pos, Outgoing(f"poison-{pos}".encode(), b"[1, 2]", "not_an_object"))
    return out


async def health(worker: WorkerProcess) -> dict[str, Any]:
    response = await worker.get("/_sidecar/health/ready")
    if response is None or not response.text.startswith("{"):
        return {}
    pipelines = response.json().get("pipelines") or [{}]
    return dict(pipelines[0])


@pytest.fixture
async def engine_client(opensearch_url: str) -> Any:
    client = Engine(opensearch_url)
    yield client
    await client.close()


async def test_without_a_destination_poison_goes_to_the_default_index(
    opensearch_url: str, engine_client: Engine, kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = Names()
    default_index = f"it-{names.tag}-dead-letter"
    engine_client.own(names.index, default_index)
    docs = scifact_titles(DOCS)
    async with kafka_topics(kafka_bootstrap, names.topic, partitions=2):
        await produce(kafka_bootstrap, names.topic, stream(docs, [10, 90, 150]))
        pipeline = write_pipeline(
            tmp_path / "p.yaml", names, "opensearch", opensearch_url, kafka_bootstrap, errors={}
        )
        worker = WorkerProcess(pipeline, tmp_path)
        try:
            await worker.wait_ready()
            ends = await end_offsets(kafka_bootstrap, names.topic, 2)

            async def done() -> bool:
                return await committed_offsets(kafka_bootstrap, names.group) == ends

            await wait_for(done, 180, "the offsets to reach the end of the topic")
            assert worker.terminate() == 0, worker.log_tail()
        finally:
            worker.ensure_stopped()
        letters = await engine_client.docs(default_index)
        assert sorted(v["source"]["key"] for v in letters.values()) == [
            "poison-10",
            "poison-150",
            "poison-90",
        ]
        assert {v["error"]["type"] for v in letters.values()} == {"not_an_object"}
        assert len(await engine_client.docs(names.index, False)) == DOCS


async def test_tolerance_none_stops_at_the_first_poison_with_its_offset_uncommitted(
    opensearch_url: str, engine_client: Engine, kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = Names()
    engine_client.own(names.index, f"it-{names.tag}-dead-letter")
    docs = scifact_titles(DOCS)
    async with kafka_topics(kafka_bootstrap, names.topic, partitions=1):
        produced = await produce(kafka_bootstrap, names.topic, stream(docs, [120]))
        [poison_offset] = [o for (_, o), m in produced.at.items() if m.malformed]
        pipeline = write_pipeline(
            tmp_path / "p.yaml",
            names,
            "opensearch",
            opensearch_url,
            kafka_bootstrap,
            errors={"tolerance": "none"},
            source__kafka__max_poll_records=50,
        )
        worker = WorkerProcess(pipeline, tmp_path)
        try:

            async def exited() -> bool:
                return worker.proc.poll() is not None

            await wait_for(exited, 180, "the worker to stop at the poison message")
            assert worker.proc.returncode == 1, worker.log_tail()
            log = worker.log_path.read_text()
            assert f"tolerance exceeded at {names.topic}-0 offset {poison_offset} (not_an_object" in log
            assert "Traceback" not in log
            committed = (await committed_offsets(kafka_bootstrap, names.group)).get(0, 0)
            assert committed <= poison_offset
            assert await engine_client.count(f"it-{names.tag}-dead-letter") == 0
        finally:
            worker.ensure_stopped()


async def test_a_refusing_dead_letter_index_pauses_and_commits_nothing_past_it(
    opensearch_url: str, engine_client: Engine, kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = Names()
    engine_client.own(names.index, names.dlq_index)
    blocked = await engine_client.client.put(
        f"/{names.dlq_index}", json={"settings": {"index.blocks.write": True}}
    )
    assert blocked.status_code == 200, blocked.text
    docs = scifact_titles(DOCS)
    async with kafka_topics(kafka_bootstrap, names.topic, partitions=1):
        produced = await produce(kafka_bootstrap, names.topic, stream(docs, [60]))
        [poison_offset] = [o for (_, o), m in produced.at.items() if m.malformed]
        pipeline = write_pipeline(
            tmp_path / "p.yaml",
            names,
            "opensearch",
            opensearch_url,
            kafka_bootstrap,
            errors={"dead_letter_index": names.dlq_index, "backoff": {"initial_ms": 100, "max_ms": 1000}},
            source__kafka__max_poll_records=50,
        )
        worker = WorkerProcess(pipeline, tmp_path)
        try:

            async def refused() -> bool:
                if worker.proc.poll() is not None:
                    raise AssertionError(f"worker exited {worker.proc.returncode}:\n{worker.log_tail()}")
                state = await health(worker)
                return bool(state.get("dead_letter_failing")) and "dead_letter" in state.get(
                    "pause_reasons", []
                )

            await wait_for(refused, 180, "health to report the refusing dead-letter index")
            state = await health(worker)
            assert "cluster_block_exception" in state["dead_letter_failing"]
            # Other batches may finish meanwhile; the commit never passes the refused record.
            committed = (await committed_offsets(kafka_bootstrap, names.group)).get(0, 0)
            assert committed <= poison_offset
            assert await worker.metric("sidecar_worker_retried_total", kind="dead_letter") >= 1

            lifted = await engine_client.client.put(
                f"/{names.dlq_index}/_settings", json={"index.blocks.write": False}
            )
            assert lifted.status_code == 200, lifted.text
            ends = await end_offsets(kafka_bootstrap, names.topic, 1)

            async def done() -> bool:
                return await committed_offsets(kafka_bootstrap, names.group) == ends

            await wait_for(done, 180, "the offsets to reach the end once the index accepts")
            assert not (await health(worker)).get("dead_letter_failing")
            assert worker.terminate() == 0, worker.log_tail()
        finally:
            worker.ensure_stopped()
        letters = await engine_client.docs(names.dlq_index)
        assert [v["source"]["offset"] for v in letters.values()] == [poison_offset]
        assert len(await engine_client.docs(names.index, False)) == DOCS
