"""Selection of documents and fields, checkpoints in a file, throttling, dead-letter records."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sidecar.backfill.checkpoint import FileCheckpointStore
from sidecar.backfill.deadletters import BackfillDeadLetter
from sidecar.backfill.pacing import CountingService, Throttle
from sidecar.backfill.runner import BackfillOptions, run_key
from sidecar.backfill.selection import Mode, build_query, fields_to_do, source_paths
from sidecar.enrichment import Enricher, content_hash
from tests.unit.worker.fakes import FakeService, pipeline

CONFIG = pipeline(
    fields=[
        {"input": ["title"], "endpoint": ".splade-tiny", "target": "ml.tokens"},
        {"input": ["body"], "endpoint": ".splade-tiny", "target": "body_tokens", "hash_field": "h.body"},
    ]
)
TITLE, BODY = CONFIG.fields


def enricher() -> Enricher:
    return Enricher(CONFIG.fields, FakeService(), pipeline="unit")


def test_missing_mode_queries_the_hashes_and_keeps_the_users_query() -> None:
    user = {"term": {"lang": "en"}}
    assert build_query(Mode.MISSING, CONFIG.fields, user) == {
        "bool": {
            "filter": [
                user,
                {
                    "bool": {
                        "should": [
                            {"bool": {"must_not": [{"exists": {"field": "ml.tokens_hash"}}]}},
                            {"bool": {"must_not": [{"exists": {"field": "h.body"}}]}},
                        ],
                        "minimum_should_match": 1,
                    }
                },
            ]
        }
    }
    assert build_query(Mode.ALL, CONFIG.fields, None) == {"match_all": {}}
    assert build_query(Mode.CHANGED, CONFIG.fields, user) == {"bool": {"filter": [user]}}


def test_the_scan_reads_only_what_selection_needs() -> None:
    assert source_paths(Mode.CHANGED, CONFIG.fields) == ["body", "h.body", "ml.tokens_hash", "title"]
    assert "ml.tokens" in source_paths(Mode.MISSING, CONFIG.fields)
    assert source_paths(Mode.ALL, CONFIG.fields, full=True) is True


def test_fields_to_do_per_mode() -> None:
    e = enricher()
    fresh = {"title": "t", "body": "b"}
    title_done = {**fresh, "ml": {"tokens": {"t": 1.0}, "tokens_hash": content_hash(TITLE, "t")}}
    vector_without_hash = {**fresh, "body_tokens": {"b": 1.0}}
    assert fields_to_do(Mode.MISSING, e, fresh) == [0, 1]
    assert fields_to_do(Mode.MISSING, e, title_done) == [1]
    assert fields_to_do(Mode.MISSING, e, vector_without_hash) == [0]  # a vector written elsewhere is kept
    both = {**title_done, "h": {"body": content_hash(BODY, "b")}}
    assert fields_to_do(Mode.CHANGED, e, both) == []
    assert fields_to_do(Mode.CHANGED, e, {**both, "title": "new"}) == [0]
    assert fields_to_do(Mode.ALL, e, both) == [0, 1]


def test_run_keys_differ_by_what_is_selected_not_by_slice() -> None:
    base = run_key(CONFIG, BackfillOptions())
    assert base == run_key(CONFIG, BackfillOptions(slices=4, slice_id=3, batch_size=9))
    assert base != run_key(CONFIG, BackfillOptions(mode=Mode.ALL))
    assert base != run_key(CONFIG, BackfillOptions(query={"term": {"a": 1}}))
    assert run_key(CONFIG, BackfillOptions(reindex_to="new")).startswith("unit.all.")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slices": 2, "slice_id": 2}, "--slice"),
        ({"batch_size": 0}, "--batch-size"),
        ({"alias": "a"}, "--alias"),
    ],
)
def test_options_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackfillOptions(**kwargs)  # type: ignore[arg-type]


async def test_file_checkpoints_hold_each_slice(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path / "sub" / "cp.json")
    assert await store.load("k") is None
    await store.save("run.slice-0-of-2", {"run": "run", "done": True, "cursor": [3, "x"]})
    await store.save("run.slice-1-of-2", {"run": "run", "done": False})
    await store.save("other", {"run": "other"})
    assert await store.load("run.slice-0-of-2") == {"run": "run", "done": True, "cursor": [3, "x"]}
    assert sorted(s["done"] for s in await store.load_run("run")) == [False, True]
    assert json.loads((tmp_path / "sub" / "cp.json").read_text())["other"] == {"run": "other"}
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["cp.json"]  # no temporary files left


async def test_throttle_spaces_documents() -> None:
    throttle = Throttle(200.0)
    started = time.monotonic()
    for _ in range(4):
        await throttle.wait(20)  # 80 documents at 200/s: the last batch may start after 0.3 s
    assert 0.28 <= time.monotonic() - started < 1.0
    with pytest.raises(ValueError):
        Throttle(0)


async def test_counting_service_counts_texts() -> None:
    counter = CountingService(FakeService())
    await counter.infer(".splade-tiny", ["a", "b"])
    await counter.infer(".splade-tiny", ["c"])
    assert counter.texts == 3


def test_dead_letter_records_name_the_document() -> None:
    letter = BackfillDeadLetter.of("idx", "d/1", {"title": None}, "missing_input_field", "no title", "enrich")
    assert letter.coordinates == "backfill+idx+d/1"
    document = letter.document("p")
    assert document["source"] == {"index": "idx", "id": "d/1", "key": "d/1"}
    assert document["error"] == {"type": "missing_input_field", "reason": "no title", "stage": "enrich"}
    assert dict(letter.kafka_headers("p"))["sidecar.source.id"] == b"d/1"
