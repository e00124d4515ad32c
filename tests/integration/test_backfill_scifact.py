"""`sidecar backfill` as a real subprocess over the 5,183 SciFact documents (titles as the input).

Inference runs in a real sidecar API that counts every text it encodes; the backfill processes use it
as their remote inference. Killed with SIGKILL twice and resumed, the backfill enriches every
document while encoding at most the corpus plus one batch per kill; a re-run encodes nothing. Two
slices run as two concurrent processes (2,000 documents) update every document exactly once between them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.backfill.runner import PART_DOCS, PARTS_IN_FLIGHT
from sidecar.enrichment import content_hash
from sidecar.pipelines.loader import load_pipeline
from tests.integration.hook_harness import (
    CliProcess,
    CountingService,
    EngineClient,
    scifact,
    sidecar_server,
    sidecar_settings,
    unique,
    wait_until,
)

pytestmark = pytest.mark.integration

BATCH = 128
SLICED_DOCS = 2000  # enough for both slices to get many pages, and quicker on two shared cores
MAPPINGS = {"properties": {"title": {"type": "text"}, "text": {"type": "text"}}}
MISSING_HASH = {"bool": {"must_not": [{"exists": {"field": "ml.tokens_hash"}}]}}
PIPELINE = """
name: scifact-backfill
source:
  ingest_hook: {{indices: ["{index}"]}}
inference:
  url: {inference}
fields:
  - input: title
    endpoint: .splade-tiny
    target: ml.tokens
sink:
  engine: {engine}
  urls: ["{url}"]
  index: {index}
errors:
  dead_letter_index: {index}-dlq
"""


@pytest.fixture(scope="module")
def inference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, CountingService]]:
    from sidecar.inference.service import InferenceService

    settings = sidecar_settings(tmp_path_factory.mktemp("inference"))
    counting = CountingService(InferenceService.from_settings(settings))
    with sidecar_server(settings, counting) as url:
        yield url, counting


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    docs = [{"_id": d["_id"], "title": d["title"], "text": d["text"]} for d in scifact()]
    assert len(docs) == 5183
    return docs


def pipeline_file(tmp: Path, engine_name: str, index: str, url: str, inference_url: str) -> Path:
    path = tmp / f"{index}.yaml"
    text = PIPELINE.format(index=index, inference=inference_url, engine=engine_name, url=url)
    path.write_text(text, encoding="utf-8")
    return path


def load_index(engine: EngineClient, name: str, docs: list[dict[str, Any]], **extra: Any) -> None:
    engine.create(name, {"settings": {"number_of_shards": 2}, "mappings": MAPPINGS, **extra})
    engine.index_docs(name, docs)


def check_enriched(
    engine: EngineClient, index: str, pipeline: Path, docs: list[dict[str, Any]]
) -> dict[str, Any]:
    assert engine.count(index, MISSING_HASH) == 0
    stored = engine.all_docs(index)
    assert len(stored) == len(docs)
    spec = load_pipeline(pipeline).fields[0]
    for doc in docs:
        source = stored[doc["_id"]]["_source"]
        assert source["title"] == doc["title"] and source["text"] == doc["text"]
        assert source["ml"]["tokens"], doc["_id"]
        assert source["ml"]["tokens_hash"] == content_hash(spec, doc["title"])
    return stored


def test_killed_twice_then_resumed_enriches_everything_once(
    opensearch_url: str, inference: tuple[str, CountingService], corpus: list[dict[str, Any]], tmp_path: Path
) -> None:
    engine = EngineClient(opensearch_url)
    index, checkpoints = unique("bf-kill"), unique("bf-checkpoints")
    try:
        load_index(engine, index, corpus)
        pipeline = pipeline_file(tmp_path, "opensearch", index, opensearch_url, inference[0])
        counter = inference[1]
        start = counter.texts
        args = [
            "backfill",
            "--pipeline",
            str(pipeline),
            "--batch-size",
            str(BATCH),
            "--checkpoint-index",
            checkpoints,
        ]
        for n, kill_at in enumerate((1500, 3300)):
            process = CliProcess(args, tmp_path / f"killed-{n}.log")
            wait_until(
                lambda: counter.texts - start >= kill_at or process.process.poll() is not None,  # noqa: B023
                300,
                f"{kill_at} texts encoded",
            )
            assert process.process.poll() is None, process.output()
            process.kill()
        summary = tmp_path / "summary.json"
        last = CliProcess([*args, "--summary-json", str(summary)], tmp_path / "last.log")
        assert last.wait(600) == 0, last.output()
        encoded = counter.texts - start
        # Each kill loses at most the parts in flight: those queued and the one being written.
        in_flight = min(BATCH, PART_DOCS) * (PARTS_IN_FLIGHT + 1)
        assert len(corpus) <= encoded <= len(corpus) + 2 * in_flight, encoded
        result = json.loads(summary.read_text())
        assert result["finished"] and result["resumed"]
        # Counted per acknowledged batch: a batch written just before a kill is done but not counted.
        assert len(corpus) - 2 * BATCH <= result["total"]["enriched"] <= len(corpus)
        assert result["total"]["failed"] == 0
        check_enriched(engine, index, pipeline, corpus)
        # A re-run over the finished index reads nothing and encodes nothing.
        again = CliProcess([*args, "--summary-json", str(summary)], tmp_path / "again.log")
        assert again.wait(300) == 0, again.output()
        assert counter.texts - start == encoded
        rerun = json.loads(summary.read_text())
        assert rerun["finished"] and not rerun["resumed"] and rerun["run"]["scanned"] == 0
        assert "scanned" in again.output() and "enriched" in again.output()  # the summary table
    finally:
        engine.delete(index, f"{index}-dlq", checkpoints)
        engine.close()


def test_two_slices_in_two_processes_cover_the_index_exactly_once(
    es_url: str, inference: tuple[str, CountingService], corpus: list[dict[str, Any]], tmp_path: Path
) -> None:
    engine = EngineClient(es_url)
    index, checkpoints = unique("bf-slices"), unique("bf-checkpoints")
    corpus = corpus[:SLICED_DOCS]
    try:
        load_index(engine, index, corpus)
        pipeline = pipeline_file(tmp_path, "elasticsearch", index, es_url, inference[0])
        counter = inference[1]
        start = counter.texts
        args = ["backfill", "--pipeline", str(pipeline), "--slices", "2", "--batch-size", str(BATCH)]
        args += ["--checkpoint-index", checkpoints]
        processes = [
            CliProcess(
                [*args, "--slice", str(i), "--summary-json", str(tmp_path / f"{i}.json")],
                tmp_path / f"{i}.log",
            )
            for i in range(2)
        ]
        for process in processes:
            assert process.wait(600) == 0, process.output()
        summaries = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(2)]
        enriched = [s["run"]["enriched"] for s in summaries]
        assert sum(enriched) == len(corpus) and min(enriched) > 0, enriched
        assert sum(s["run"]["scanned"] for s in summaries) == len(corpus)
        assert counter.texts - start == len(corpus)  # no document encoded twice
        stored = check_enriched(engine, index, pipeline, corpus)
        assert {hit["_version"] for hit in stored.values()} == {2}  # indexed once, updated exactly once
    finally:
        engine.delete(index, f"{index}-dlq", checkpoints)
        engine.close()


def test_reindex_into_a_new_index_then_move_the_alias(
    opensearch_url: str, inference: tuple[str, CountingService], corpus: list[dict[str, Any]], tmp_path: Path
) -> None:
    engine = EngineClient(opensearch_url)
    alias, checkpoints = unique("bf-alias"), unique("bf-checkpoints")
    old, new = f"{alias}-v1", f"{alias}-v2"
    docs = corpus[:400]
    try:
        load_index(engine, old, docs, aliases={alias: {}})
        pipeline = pipeline_file(tmp_path, "opensearch", alias, opensearch_url, inference[0])
        counter = inference[1]
        start = counter.texts
        args = [
            "backfill",
            "--pipeline",
            str(pipeline),
            "--reindex-to",
            new,
            "--alias",
            alias,
            "--slices",
            "2",
        ]
        args += ["--checkpoint-index", checkpoints]
        for i in range(2):
            summary = tmp_path / f"reindex-{i}.json"
            process = CliProcess(
                [*args, "--slice", str(i), "--summary-json", str(summary)], tmp_path / f"r{i}.log"
            )
            assert process.wait(300) == 0, process.output()
            notes = json.loads(summary.read_text())["notes"]
            aliases = engine.http.get(f"/_alias/{alias}").json()
            if i == 0:  # one slice done: searches still see the old index
                assert notes == [f"alias [{alias}] waits for 1 more slice(s)"] and list(aliases) == [old]
        assert notes == [f"alias [{alias}] now points at [{new}]"] and list(aliases) == [new]
        assert counter.texts - start == len(docs)
        moved = engine.all_docs(alias)
        assert len(moved) == len(docs) and all(hit["_index"] == new for hit in moved.values())
        for doc in docs:
            source = moved[doc["_id"]]["_source"]
            assert source["text"] == doc["text"] and source["ml"]["tokens"]
        assert all(
            "ml" not in hit["_source"] for hit in engine.all_docs(old).values()
        )  # the old one untouched
    finally:
        engine.delete(old, new, f"{alias}-dlq", checkpoints)
        engine.close()
