"""`sidecar setup` mappings and templates, dense vectors, and `skip_if_unchanged` on the real engines."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

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
    produce,
    scifact_titles,
    wait_for,
    write_pipeline,
)

pytestmark = pytest.mark.integration


async def encode(texts: list[str]) -> list[dict[str, float]]:
    from sidecar.inference.types import TaskType
    from sidecar.settings import load_settings
    from sidecar.worker.main import open_local_service

    service = await open_local_service(load_settings())
    try:
        answer = await service.infer(".splade-tiny", texts, task_type=TaskType.SPARSE_EMBEDDING)
        return [dict(r.embedding) for r in answer.results]
    finally:
        await service.close()


async def test_setup_creates_template_index_and_dead_letter_mappings(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    pipeline = write_pipeline(
        tmp_path / "p.yaml",
        names,
        engine_name,
        url,
        kafka_bootstrap,
        sink__index=f"<{names.index}-{{now/d}}>",
        fields=[
            {"input": "title", "endpoint": ".splade-tiny", "target": "ml.tokens", "skip_if_unchanged": True}
        ],
    )
    today = f"{names.index}-{datetime.now(UTC):%Y.%m.%d}"
    try:
        done = subprocess.run(
            [str(SIDECAR), "setup", "--pipeline", str(pipeline)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert f"put index template [sidecar-it-{names.tag}] for [{names.index}-*]" in done.stdout
        # The dead-letter index `wt-<tag>-dlq` lies inside `wt-<tag>-*`: its own template still goes in.
        assert (
            f"put index template [sidecar-it-{names.tag}-dead-letter] for [{names.dlq_index}]" in done.stdout
        )
        template = (await client.client.get(f"/_index_template/sidecar-it-{names.tag}")).json()
        body = template["index_templates"][0]["index_template"]
        assert body["index_patterns"] == [f"{names.index}-*"]
        for index in (today, f"{names.index}-2001.01.01"):  # today's index, and one the template makes
            await client.client.put(f"/{index}")
            mapping = (await client.client.get(f"/{index}/_mapping")).json()[index]["mappings"]["properties"]
            assert mapping["ml"]["properties"]["tokens"]["type"] == "rank_features"
            assert mapping["ml"]["properties"]["tokens_hash"]["type"] == "keyword"
        dlq = (await client.client.get(f"/{names.dlq_index}/_mapping")).json()[names.dlq_index]["mappings"]
        assert dlq["properties"]["error"]["properties"]["type"]["type"] == "keyword"
        assert dlq["properties"]["message"]["enabled"] is False
        again = subprocess.run(
            [str(SIDECAR), "setup", "--pipeline", str(pipeline)], capture_output=True, text=True
        )
        assert again.returncode == 0, again.stderr  # idempotent
        assert f"updated the mapping of index [{today}]" in again.stdout
    finally:
        await client.delete(today, f"{names.index}-2001.01.01", names.dlq_index)
        await client.client.delete(f"/_index_template/sidecar-it-{names.tag}")


async def test_unchanged_text_is_not_encoded_again_and_dense_vectors_are_written(
    engine: tuple[str, str, Engine], kafka_bootstrap: str, tmp_path: Path
) -> None:
    engine_name, url, client = engine
    names = Names()
    client.own(names.index, names.dlq_index)
    docs = scifact_titles(200)
    fields = [
        {"input": "title", "endpoint": ".splade-tiny", "target": "ml.tokens", "skip_if_unchanged": True},
        {"input": "title", "endpoint": ".minilm-l6", "target": "ml.title_vector", "type": "dense_vector"},
    ]
    # OpenSearch runs the update script that replaces sparse vectors whole; the ES-wire emulator's
    # painless subset cannot, so there documents are re-indexed whole.
    operation = "update" if engine_name == "opensearch" else "index"
    pipeline = write_pipeline(
        tmp_path / "p.yaml",
        names,
        engine_name,
        url,
        kafka_bootstrap,
        fields=fields,
        sink__operation=operation,
    )
    first = [Outgoing(d["id"].encode(), json.dumps(d).encode()) for d in docs]
    changed = [
        Outgoing(d["id"].encode(), json.dumps({**d, "title": d["title"] + " (revised)"}).encode())
        for d in docs[:20]
    ]
    async with kafka_topics(kafka_bootstrap, names.topic, names.dlq_topic):
        await produce(kafka_bootstrap, names.topic, first)
        worker = WorkerProcess(pipeline, tmp_path)
        try:
            await worker.wait_ready()

            async def caught_up() -> bool:
                ends = await end_offsets(kafka_bootstrap, names.topic, 4)
                return await committed_offsets(kafka_bootstrap, names.group) == ends

            await wait_for(caught_up, 300, "the first pass")
            assert await worker.metric("sidecar_worker_skipped_unchanged_total") == 0
            await produce(kafka_bootstrap, names.topic, first[20:] + changed)  # 180 unchanged, 20 revised
            await wait_for(caught_up, 300, "the second pass")
            assert await worker.metric("sidecar_worker_skipped_unchanged_total") == 180
            assert worker.terminate() == 0, worker.log_tail()
        finally:
            worker.ensure_stopped()
        try:
            stored = await client.docs(names.index)
            assert len(stored) == 200
            revised = {d["id"] for d in docs[:20]}
            fresh = await encode([d["title"] + " (revised)" for d in docs[:20]])
            for doc_id, source in stored.items():
                assert source["title"].endswith(" (revised)") == (doc_id in revised)
                assert source["ml"]["tokens"] and len(source["ml"]["tokens_hash"]) == 32
            for doc, tokens in zip(docs[:20], fresh, strict=True):
                assert set(stored[doc["id"]]["ml"]["tokens"]) == set(tokens)  # no stale tokens kept
                assert len(stored[doc["id"]]["ml"]["title_vector"]) == 384
        finally:
            await client.delete(names.index, names.dlq_index)
