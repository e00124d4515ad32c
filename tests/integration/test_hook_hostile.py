"""Hostile writes through the ingest hook, against the real OpenSearch of the local stack.

OpenSearch stores a document with the id `..` and accepts comments in documents; through the
hook the same must happen, with the enrichment. Documents the hook cannot read get their own
400 in the bulk answer while the rest are stored; compressed bulks and date-math index names in
the path work as they do against the engine.
"""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from elasticsearch import Elasticsearch, helpers

from tests.integration.hook_harness import EngineClient, ndjson, sidecar_server, sidecar_settings, unique

pytestmark = pytest.mark.integration

MAPPINGS = {
    "properties": {
        "title": {"type": "text"},
        "ml": {"properties": {"tokens": {"type": "rank_features"}, "tokens_hash": {"type": "keyword"}}},
    }
}
PIPELINE = """
name: hook-hostile
source:
  ingest_hook:
    indices: ["{prefix}*"]
fields:
  - input: title
    endpoint: .splade-tiny
    target: ml.tokens
    skip_if_unchanged: true
sink:
  engine: opensearch
  urls: ["{url}"]
  index: {prefix}
"""
NDJSON = {"content-type": "application/x-ndjson"}


@dataclass
class Hooked:
    engine: EngineClient
    sidecar: str
    index: str


@pytest.fixture(scope="module")
def hooked(opensearch_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooked]:
    index = unique("hook-hostile")
    tmp = tmp_path_factory.mktemp("hook-hostile")
    pipeline = tmp / "hook.yaml"
    pipeline.write_text(PIPELINE.format(prefix=index, url=opensearch_url), encoding="utf-8")
    engine = EngineClient(opensearch_url)
    engine.http.put(
        "/_index_template/" + index,
        json={"index_patterns": [f"{index}*"], "template": {"mappings": MAPPINGS}},
    )
    try:
        with sidecar_server(sidecar_settings(tmp, hook_pipelines=[pipeline])) as sidecar:
            yield Hooked(engine, sidecar, index)
    finally:
        engine.http.delete(f"/{index}*")
        engine.http.delete("/_index_template/" + index)
        engine.close()


def _raw_put(base: str, raw_path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A PUT whose path goes out exactly as written (httpx would resolve `..` before sending)."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
    try:
        connection.request("PUT", raw_path, json.dumps(body), {"content-type": "application/json"})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def _stored(hooked: Hooked, doc_id: str, index: str | None = None) -> dict[str, Any]:
    answer = hooked.engine.http.get(
        f"/{index or hooked.index}/_doc/{quote(doc_id, safe='').replace('.', '%2E')}"
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["_source"])


def test_a_dot_dot_id_is_a_document_not_a_path(hooked: Hooked) -> None:
    # Before: `PUT /x/_doc/..` went to the engine as `PUT /x` (the body applied as index settings).
    status, body = _raw_put(hooked.sidecar, f"/{hooked.index}/_doc/..?refresh=true", {"title": "Zinc"})
    assert status == 201, body
    assert body["_id"] == ".."
    assert "zinc" in _stored(hooked, "..")["ml"]["tokens"]
    status, body = _raw_put(hooked.sidecar, f"/{hooked.index}/_doc/%2E?refresh=true", {"title": "Iron"})
    assert status == 201 and body["_id"] == ".", body
    settings = hooked.engine.http.get(f"/{hooked.index}/_settings").json()
    assert "title" not in json.dumps(settings)


def test_documents_with_comments_are_enriched_and_updates_replace_vectors(hooked: Hooked) -> None:
    lines = (
        b'{"index": {"_id": "c1"}}\n'
        b'{"title": "Vitamin D /* not a comment */ deficiency" /* a comment */} // trailing }\n'
        b'{"index": {"_id": "c2"}}\n'
        b'{"title": "Malaria vaccine" // to the end of the line\n'
    )
    # The second document spans two lines in no bulk; build it on one line with a block comment.
    lines = lines.replace(b"// to the end of the line\n", b"/* end */}\n")
    answer = httpx.post(
        f"{hooked.sidecar}/{hooked.index}/_bulk?refresh=true", content=lines, headers=NDJSON, timeout=120
    )
    assert answer.status_code == 200 and answer.json()["errors"] is False, answer.text
    first = _stored(hooked, "c1")
    assert first["title"] == "Vitamin D /* not a comment */ deficiency"
    assert "vitamin" in first["ml"]["tokens"] and first["ml"]["tokens_hash"]
    before = _stored(hooked, "c2")
    update = b'{"update": {"_id": "c2"}}\n{"doc": {"title": "Influenza antiviral"} /* c */}\n'
    answer = httpx.post(
        f"{hooked.sidecar}/{hooked.index}/_bulk?refresh=true", content=update, headers=NDJSON, timeout=120
    )
    assert answer.status_code == 200 and answer.json()["errors"] is False, answer.text
    after = _stored(hooked, "c2")
    assert "malaria" in before["ml"]["tokens"] and "malaria" not in after["ml"]["tokens"]
    assert "influenza" in after["ml"]["tokens"] and after["ml"]["tokens_hash"] != before["ml"]["tokens_hash"]


def test_unreadable_documents_get_their_own_400_the_rest_are_stored(hooked: Hooked) -> None:
    bad = {
        "deep": b'{"title": "a", "x": ' + b'{"y": ' * 5000 + b"1" + b"}" * 5001,
        "escaped": b'{"title": "\\udc00"}',
        "raw": b'{"title": "\xed\xa0\x80"}',
        "array": b"[1, 2]",
    }
    body = b""
    for n, (name, source) in enumerate(bad.items()):
        body += ndjson([{"index": {"_id": f"good{n}"}}, {"title": f"Good document {n}"}])
        body += json.dumps({"index": {"_id": name}}).encode() + b"\n" + source + b"\n"
    answer = httpx.post(
        f"{hooked.sidecar}/{hooked.index}/_bulk?refresh=true", content=body, headers=NDJSON, timeout=120
    )
    assert answer.status_code == 200, answer.text
    items = [item["index"] for item in answer.json()["items"]]
    assert [i["status"] for i in items] == [201, 400] * len(bad)
    for item in items[1::2]:
        assert item["error"]["type"] == "mapper_parsing_exception"
    stored = hooked.engine.all_docs(hooked.index)
    assert not set(bad) & set(stored)
    for n in range(len(bad)):
        assert "good" in stored[f"good{n}"]["_source"]["ml"]["tokens"]


def test_compressed_bulks_and_date_math_paths_like_the_engine(hooked: Hooked) -> None:
    actions = [
        {"_index": hooked.index, "_id": f"z{n}", "_source": {"title": f"Compressed bulk {n}"}}
        for n in range(20)
    ]
    with Elasticsearch(hooked.sidecar, request_timeout=120, http_compress=True) as client:
        ok, errors = helpers.bulk(client, actions, refresh="wait_for")
    assert ok == 20 and errors == []
    assert "compressed" in _stored(hooked, "z3")["ml"]["tokens"]
    body = gzip.compress(ndjson([{"index": {"_id": "dm1"}}, {"title": "Date math"}]))
    before = datetime.now(UTC).strftime("%Y.%m.%d")
    answer = httpx.post(
        f"{hooked.sidecar}/{quote('<' + hooked.index + '-{now/d}>', safe='')}/_bulk?refresh=true",
        content=body,
        headers={**NDJSON, "content-encoding": "gzip"},
        timeout=120,
    )
    after = datetime.now(UTC).strftime("%Y.%m.%d")
    assert answer.status_code == 200 and answer.json()["errors"] is False, answer.text
    index = answer.json()["items"][0]["index"]["_index"]
    assert index in {f"{hooked.index}-{before}", f"{hooked.index}-{after}"}
    assert "date" in _stored(hooked, "dm1", index)["ml"]["tokens"]


def test_emptying_the_input_removes_the_vector(hooked: Hooked) -> None:
    """An input with no content gets no vector (as semantic_text): on index, and on a partial update,
    which must not leave the old text's vector behind."""
    lines = ndjson(
        [{"index": {"_id": "e1"}}, {"title": "Zinc supplements"}, {"index": {"_id": "e2"}}, {"title": " "}]
    )
    answer = httpx.post(
        f"{hooked.sidecar}/{hooked.index}/_bulk?refresh=true", content=lines, headers=NDJSON, timeout=120
    )
    assert answer.status_code == 200 and answer.json()["errors"] is False, answer.text
    assert "zinc" in _stored(hooked, "e1")["ml"]["tokens"]
    assert _stored(hooked, "e2") == {"title": " "}
    update = ndjson([{"update": {"_id": "e1"}}, {"doc": {"title": ""}}])
    answer = httpx.post(
        f"{hooked.sidecar}/{hooked.index}/_bulk?refresh=true", content=update, headers=NDJSON, timeout=120
    )
    assert answer.status_code == 200 and answer.json()["errors"] is False, answer.text
    assert _stored(hooked, "e1") == {"title": "", "ml": {}}
