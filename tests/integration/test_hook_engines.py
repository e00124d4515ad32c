"""The ingest hook in front of the real engines (OpenSearch and the Elasticsearch-wire server).

The same 1,000 SciFact documents go to one index directly and to another through the hook: the
hooked sources equal the direct ones plus the enriched fields, and every engine error comes back at
the same position; documents the hook cannot enrich get their own 400 there. The official client's
`helpers.bulk` / `async_bulk` and document APIs work through the hook, and updates replace vectors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from elasticsearch import AsyncElasticsearch, Elasticsearch, helpers

from tests.integration.hook_harness import (
    EngineClient,
    ndjson,
    scifact,
    sidecar_server,
    sidecar_settings,
    unique,
)

pytestmark = pytest.mark.integration

MAPPINGS = {
    "properties": {
        "title": {"type": "text"},
        "text": {"type": "text"},
        "year": {"type": "integer"},
        "ml": {
            "properties": {
                "tokens": {"type": "rank_features"},
                "tokens_hash": {"type": "keyword", "index": False},
            }
        },
    }
}
PIPELINE = """
name: hook-it
source:
  ingest_hook:
    indices: ["{prefix}-hooked*"]
fields:
  - input: title
    endpoint: .splade-tiny
    target: ml.tokens
    skip_if_unchanged: true
sink:
  engine: {engine}
  urls: ["{url}"]
  index: {prefix}-hooked
"""


@dataclass
class Stack:
    engine: EngineClient
    sidecar: str
    prefix: str

    @property
    def direct(self) -> str:
        return f"{self.prefix}-direct"

    @property
    def hooked(self) -> str:
        return f"{self.prefix}-hooked"


@pytest.fixture(scope="module", params=["opensearch", "elasticsearch"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    engine_name = str(request.param)
    url = str(request.getfixturevalue("opensearch_url" if engine_name == "opensearch" else "es_url"))
    prefix = unique("hook-it")
    tmp = tmp_path_factory.mktemp(f"hook-{engine_name}")
    pipeline = tmp / "hook.yaml"
    pipeline.write_text(PIPELINE.format(prefix=prefix, engine=engine_name, url=url), encoding="utf-8")
    engine = EngineClient(url)
    for index in (f"{prefix}-direct", f"{prefix}-hooked", f"{prefix}-hooked-client"):
        engine.create(index, {"mappings": MAPPINGS})
    try:
        with sidecar_server(
            sidecar_settings(tmp, hook_pipelines=[pipeline], hook_upstream_url=url)
        ) as sidecar:
            yield Stack(engine, sidecar, prefix)
    finally:
        engine.delete(f"{prefix}-direct", f"{prefix}-hooked", f"{prefix}-hooked-client")
        engine.close()


def corpus_bulk() -> tuple[bytes, set[int], set[int], set[int]]:
    """1,000 index actions (no `_index`: the path names it) and 5 creates of existing ids.

    Returns the body and the positions of engine errors (bad `year`, duplicate create) and of
    documents without the input field (the hook refuses them).
    """
    lines: list[Any] = []
    bad_year, no_title, duplicate = set(), set(), set()
    docs = scifact(1000)
    for i, doc in enumerate(docs):
        source: dict[str, Any] = {"title": doc["title"], "text": doc["text"], "year": 2000 + i % 20}
        if i % 100 == 7:
            source["year"] = "not a year"
            bad_year.add(i)
        if i % 100 == 57:
            del source["title"]
            no_title.add(i)
        lines += [{"index": {"_id": doc["_id"]}}, source]
    for n, doc in enumerate(docs[:5]):
        lines += [{"create": {"_id": doc["_id"]}}, {"title": doc["title"]}]
        duplicate.add(1000 + n)
    return ndjson(lines), bad_year, no_title, duplicate


def item(entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    op, body = next(iter(entry.items()))
    return op, body


def test_the_same_documents_direct_and_through_the_hook(stack: Stack) -> None:
    body, bad_year, no_title, duplicate = corpus_bulk()
    direct = stack.engine.http.post(
        f"/{stack.direct}/_bulk?refresh=true", content=body, headers={"content-type": "application/x-ndjson"}
    ).json()
    hooked = httpx.post(
        f"{stack.sidecar}/{stack.hooked}/_bulk?refresh=true",
        content=body,
        headers={"content-type": "application/x-ndjson"},
        timeout=300,
    ).json()
    assert len(direct["items"]) == len(hooked["items"]) == 1005
    assert direct["errors"] is True and hooked["errors"] is True
    for position, (mine, theirs) in enumerate(zip(hooked["items"], direct["items"], strict=True)):
        (op, got), (op_direct, want) = item(mine), item(theirs)
        assert op == op_direct
        if position in no_title:
            assert want["status"] == 201
            assert got["status"] == 400 and got["error"]["caused_by"]["type"] == "missing_input_field"
            continue
        assert got["status"] == want["status"], (position, got, want)
        assert got["_id"] == want["_id"] and got["_index"] == stack.hooked
        if position in bad_year or position in duplicate:
            assert got["error"]["type"] == want["error"]["type"]
    direct_docs = stack.engine.all_docs(stack.direct)
    hooked_docs = stack.engine.all_docs(stack.hooked)
    assert len(direct_docs) == 1000 - len(bad_year)
    assert set(hooked_docs) == set(direct_docs) - {scifact(1000)[i]["_id"] for i in no_title}
    for doc_id, hit in hooked_docs.items():
        source = dict(hit["_source"])
        ml = source.pop("ml")
        assert source == direct_docs[doc_id]["_source"]
        assert ml["tokens"] and all(w > 0 for w in ml["tokens"].values()) and len(ml["tokens_hash"]) == 32
    # The stored vectors are the endpoint's encoding of the titles.
    sample = list(hooked_docs.values())[:16]
    answer = httpx.post(
        f"{stack.sidecar}/_inference/sparse_embedding/.splade-tiny",
        json={"input": [h["_source"]["title"] for h in sample]},
        timeout=120,
    ).json()
    for hit, expected in zip(sample, answer["sparse_embedding"], strict=True):
        assert_same_features(hit["_source"]["ml"]["tokens"], expected["embedding"])


def assert_same_features(got: dict[str, float], want: dict[str, float]) -> None:
    """Equal within what a `rank_features` field keeps: Lucene stores 9 significant bits (relative
    error up to 2**-8). Batch composition moves weights in the last float bits, so a token that is
    barely above zero may appear in one encoding only; such a token must weigh next to nothing."""
    tolerance = 2**-8
    for token in got.keys() & want.keys():
        assert got[token] == pytest.approx(want[token], rel=tolerance), token
    largest = max([*got.values(), *want.values()])
    for token in got.keys() ^ want.keys():
        assert got.get(token, want.get(token, 0.0)) <= tolerance * largest, token


def test_the_official_clients_helpers_and_document_apis(stack: Stack) -> None:
    index = f"{stack.hooked}-client"
    docs = scifact(303)
    actions = [
        {
            "_index": index,
            "_id": d["_id"],
            "_source": {"title": d["title"]} if n % 101 else {"text": d["text"]},
        }
        for n, d in enumerate(docs)
    ]
    with Elasticsearch(stack.sidecar, request_timeout=300) as client:
        ok, errors = helpers.bulk(client, actions, chunk_size=100, raise_on_error=False, refresh="wait_for")
        assert ok == 300 and isinstance(errors, list) and len(errors) == 3
        causes = [(e["index"]["status"], e["index"]["error"]["caused_by"]["type"]) for e in errors]
        assert causes == [(400, "missing_input_field")] * 3
        created = client.index(index=index, id="single/1", document={"title": "Vitamin D and bone density"})
        assert created["result"] == "created"
        assert (
            client.create(index=index, id="single-2", document={"title": "Gut flora"}, refresh=True)["result"]
            == "created"
        )
    stored = stack.engine.all_docs(index)
    assert len(stored) == 302
    assert all(hit["_source"]["ml"]["tokens"] for hit in stored.values())
    assert "vitamin" in stored["single/1"]["_source"]["ml"]["tokens"]


async def test_async_bulk_and_updates_replace_vectors(stack: Stack) -> None:
    index = f"{stack.hooked}-client"
    async with AsyncElasticsearch(stack.sidecar, request_timeout=300) as client:
        actions = [
            {"_index": index, "_id": f"a{n}", "_source": {"title": f"Malaria vaccine trial {n}"}}
            for n in range(50)
        ]
        ok, errors = await helpers.async_bulk(client, actions, refresh="wait_for")
        assert ok == 50 and errors == []
        before = stack.engine.all_docs(index)["a7"]["_source"]["ml"]["tokens"]
        answer = await client.bulk(
            operations=[
                {"update": {"_index": index, "_id": "a7"}},
                {"doc": {"title": "Influenza antiviral"}},
            ],
            refresh="wait_for",
        )
    assert answer["errors"] is False and [next(iter(i)) for i in answer["items"]] == ["update"]
    after = stack.engine.all_docs(index)["a7"]["_source"]
    assert after["title"] == "Influenza antiviral"
    assert "malaria" in before and "malaria" not in after["ml"]["tokens"]  # replaced, not merged
    assert "influenza" in after["ml"]["tokens"]
