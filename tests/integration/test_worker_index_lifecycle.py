"""The target index deleted, or recreated with a wrong mapping, while the worker runs; a mapping
conflict at start. Valid documents are never dead-lettered for the index's fault, and offsets wait;
poison of every kind around the delete is dead-lettered with a reason, nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.worker_harness import (
    SIDECAR,
    Engine,
    Names,
    Outgoing,
    WorkerProcess,
    committed_offsets,
    end_offsets,
    kafka_topics,
    mixed_stream,
    poison_of_every_kind,
    produce,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4


def messages(docs: list[dict[str, str]]) -> list[Outgoing]:
    return [Outgoing(d["id"].encode(), json.dumps(d).encode()) for d in docs]


async def caught_up(bootstrap: str, names: Names) -> bool:
    ends = await end_offsets(bootstrap, names.topic, PARTITIONS)
    return await committed_offsets(bootstrap, names.group) == ends


async def tokens_type(client: Engine, index: str) -> str | None:
    answer = (await client.client.get(f"/{index}/_mapping/field/ml.tokens")).json()
    fields = answer.get(index, {}).get("mappings", {})
    return fields.get("ml.tokens", {}).get("mapping", {}).get("tokens", {}).get("type")


async def health(worker: WorkerProcess) -> dict[str, Any]:
    response = await worker.get("/_sidecar/health/ready")
    assert response is not None
    return dict(response.json()["pipelines"][0])


async def test_index_deleted_mid_run_is_recreated_with_the_pipeline_mapping(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    docs = scifact_titles(400)
    before, after = docs[:100], docs[100:]
    poison = poison_of_every_kind(24)  # each of the 12 kinds before the delete and after it
    pipeline = write_pipeline(tmp_path / "p.yaml", names, engine_name, url, kafka_bootstrap)
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic, partitions=PARTITIONS):
        produced = await produce(kafka_bootstrap, names.topic, mixed_stream(before, poison[:12]))
        worker = WorkerProcess(pipeline, tmp_path)
        try:
            await worker.wait_ready()
            await wait_for(lambda: caught_up(kafka_bootstrap, names), 300, "the first documents")
            assert (await client.client.delete(f"/{names.index}")).status_code == 200
            # The next bulk recreates the index; by dynamic mapping the sparse vectors would become
            # float fields and, past 1,000 tokens in all, every document a dead letter.
            later = await produce(kafka_bootstrap, names.topic, mixed_stream(after, poison[12:]))
            produced.at.update(later.at)
            await wait_for(lambda: caught_up(kafka_bootstrap, names), 300, "the documents after the delete")
            assert await worker.metric("sidecar_worker_dead_lettered_total") == len(poison)
            assert (await health(worker))["target_problem"] is None
            assert worker.terminate() == 0, worker.log_tail()
        finally:
            worker.ensure_stopped()
        stored = await client.docs(names.index)
        assert sorted(stored) == sorted(d["id"] for d in after)
        assert all(source["ml"]["tokens"] for source in stored.values())
        assert await tokens_type(client, names.index) == "rank_features"
        letters = await client.docs(names.dlq_index)
        found = {(v["source"]["partition"], v["source"]["offset"]): v["error"] for v in letters.values()}
        assert {at: error["type"] for at, error in found.items()} == {
            at: m.malformed for at, m in produced.at.items() if m.malformed
        }
        assert all(error["reason"] for error in found.values())


async def test_a_wrongly_mapped_target_pauses_the_pipeline_until_it_is_fixed(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    docs = scifact_titles(250)
    before, after = docs[:50], docs[50:]
    template = f"/_index_template/sidecar-it-{names.tag}"
    pipeline = write_pipeline(tmp_path / "p.yaml", names, engine_name, url, kafka_bootstrap)
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic, partitions=PARTITIONS):
        await produce(kafka_bootstrap, names.topic, messages(before))
        worker = WorkerProcess(pipeline, tmp_path)
        try:
            await worker.wait_ready()
            await wait_for(lambda: caught_up(kafka_bootstrap, names), 300, "the first documents")
            committed = await committed_offsets(kafka_bootstrap, names.group)
            # Index and template deleted, and the index recreated by dynamic mapping (as a bulk
            # request without the template would): `ml.tokens` is now an object of float fields.
            assert (await client.client.delete(template)).status_code == 200
            assert (await client.client.delete(f"/{names.index}")).status_code == 200
            stray = {"title": "stray", "ml": {"tokens": {"stray": 1.0}}}
            assert (await client.client.put(f"/{names.index}/_doc/stray", json=stray)).status_code == 201
            await produce(kafka_bootstrap, names.topic, messages(after))

            async def paused() -> bool:
                return (await health(worker))["target_problem"] is not None

            await wait_for(paused, 120, "the worker to report the wrong mapping")
            state = await health(worker)
            assert (
                "field [ml.tokens]" in state["target_problem"] and "rank_features" in state["target_problem"]
            )
            assert "target" in state["pause_reasons"]
            ready = await worker.get("/_sidecar/health/ready")
            assert ready is not None and ready.status_code == 503
            assert await worker.metric("sidecar_worker_paused", reason="target") == 1
            # Nothing written meanwhile is acknowledged, nothing dead-lettered.
            assert await committed_offsets(kafka_bootstrap, names.group) == committed
            assert await worker.metric("sidecar_worker_dead_lettered_total") == 0

            # The operator's fix: delete the wrongly mapped index. The worker reinstalls the
            # template, recreates the index and writes the held batches again.
            assert (await client.client.delete(f"/{names.index}")).status_code == 200
            await wait_for(lambda: caught_up(kafka_bootstrap, names), 300, "the held documents")
            assert (await health(worker))["target_problem"] is None
            await worker.wait_ready(30)
            assert await worker.metric("sidecar_worker_paused", reason="target") == 0
            assert await worker.metric("sidecar_worker_dead_lettered_total") == 0
            assert worker.terminate() == 0, worker.log_tail()
        finally:
            worker.ensure_stopped()
            await client.client.delete(template)
        stored = await client.docs(names.index)
        assert sorted(stored) == sorted(d["id"] for d in after)
        assert await tokens_type(client, names.index) == "rank_features"
        assert await client.count(names.dlq_index) == 0


async def test_a_mapping_conflict_at_start_is_one_clear_error(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    wrong = {"mappings": {"properties": {"ml": {"properties": {"tokens": {"type": "float"}}}}}}
    assert (await client.client.put(f"/{names.index}", json=wrong)).status_code == 200
    pipeline = write_pipeline(tmp_path / "p.yaml", names, engine_name, url, kafka_bootstrap)
    env = {**os.environ, "SIDECAR_REGISTRY_PATH": str(tmp_path / "endpoints.sqlite3")}
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic, partitions=1):
        for command in (["worker", "--metrics-port", "0"], ["setup"]):
            done = subprocess.run(
                [str(SIDECAR), *command, "--pipeline", str(pipeline)],
                capture_output=True,
                text=True,
                timeout=300,
                cwd=tmp_path,
                env=env,
            )
            assert done.returncode != 0
            errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            assert len(errors) == 1, done.stderr
            assert f"the engine refused the setup of index [{names.index}]" in errors[0]
            assert "ml.tokens" in errors[0]
            assert "Traceback" not in done.stderr + done.stdout
