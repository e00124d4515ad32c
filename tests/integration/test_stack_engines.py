"""Both engines are real enough for our writer: rank_features, bulk, rank_feature dot products.

The edge cases below pin down what each engine does with values our writer could produce; the
rank_features safety module (`sidecar.rank_features`) is built on these facts.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.integration

DOCS = {
    "d1": {"apple": 2.0, "banana": 0.5, "cherry": 1.0},
    "d2": {"apple": 0.25, "banana": 3.0},
    "d3": {"cherry": 4.0, "durian": 1.5},
    "d4": {"durian": 0.1},
}
QUERY = {"apple": 1.5, "banana": 0.7, "cherry": 0.2}


@pytest.fixture(params=["opensearch", "elasticsearch"])
def engine(request: pytest.FixtureRequest) -> Iterator[tuple[str, httpx.Client, str]]:
    url = request.getfixturevalue("opensearch_url" if request.param == "opensearch" else "es_url")
    client = httpx.Client(base_url=url, timeout=30)
    index = f"smoke-{uuid.uuid4().hex[:8]}"
    created = client.put(f"/{index}", json={"mappings": {"properties": {"f": {"type": "rank_features"}}}})
    assert created.status_code == 200, created.text
    yield request.param, client, index
    client.delete(f"/{index}")
    client.close()


def put_doc(client: httpx.Client, index: str, doc_id: str, raw: str) -> httpx.Response:
    return client.put(f"/{index}/_doc/{doc_id}", content=raw, headers={"content-type": "application/json"})


def error_reason(resp: httpx.Response) -> str:
    error = resp.json()["error"]
    return json.dumps(error)


def test_bulk_and_rank_feature_dot_product_ranking(engine: tuple[str, httpx.Client, str]) -> None:
    _, client, index = engine
    lines = []
    for doc_id, features in DOCS.items():
        lines.append(json.dumps({"index": {"_index": index, "_id": doc_id}}))
        lines.append(json.dumps({"f": features}))
    resp = client.post(
        "/_bulk?refresh=true",
        content="\n".join(lines) + "\n",
        headers={"content-type": "application/x-ndjson"},
    )
    body = resp.json()
    assert resp.status_code == 200 and body["errors"] is False, body
    assert [item["index"]["status"] for item in body["items"]] == [201] * len(DOCS)

    query = {
        "bool": {
            "should": [
                {"rank_feature": {"field": f"f.{token}", "linear": {}, "boost": weight}}
                for token, weight in QUERY.items()
            ]
        }
    }
    hits = client.post(f"/{index}/_search", json={"query": query, "size": 10}).json()["hits"]["hits"]
    expected = {
        doc_id: sum(w * features.get(t, 0.0) for t, w in QUERY.items()) for doc_id, features in DOCS.items()
    }
    expected = {d: s for d, s in expected.items() if s > 0}
    assert [h["_id"] for h in hits] == sorted(expected, key=lambda d: -expected[d])
    for hit in hits:
        # Lucene stores feature values with 9 significant bits: about 0.4% relative error.
        assert math.isclose(hit["_score"], expected[hit["_id"]], rel_tol=0.01)


@pytest.mark.parametrize(
    ("case", "raw"),
    [
        ("zero", '{"f": {"a": 0.0}}'),
        ("negative", '{"f": {"a": -1.0}}'),
        ("nan", '{"f": {"a": NaN}}'),
        ("infinity", '{"f": {"a": Infinity}}'),
        ("float32_subnormal", '{"f": {"a": 1e-39}}'),
        ("float32_overflow", '{"f": {"a": 1e39}}'),
    ],
)
def test_weights_must_be_positive_normal_finite_floats(
    engine: tuple[str, httpx.Client, str], case: str, raw: str
) -> None:
    _, client, index = engine
    resp = put_doc(client, index, case, raw)
    assert resp.status_code == 400, resp.text
    if case in {"zero", "negative", "float32_subnormal"}:
        assert "positive normal float" in error_reason(resp)


def test_smallest_normal_float32_and_many_features_are_accepted(
    engine: tuple[str, httpx.Client, str],
) -> None:
    _, client, index = engine
    assert put_doc(client, index, "tiny", '{"f": {"a": 1.2e-38}}').status_code == 201
    many = {f"t{i}": 1.0 + i / 10_000 for i in range(10_000)}
    resp = put_doc(client, index, "many", json.dumps({"f": many}))
    assert resp.status_code == 201, resp.text[:500]


def test_dotted_feature_names(engine: tuple[str, httpx.Client, str]) -> None:
    name, client, index = engine
    resp = put_doc(client, index, "dotted", '{"f": {"a.b": 1.0}}')
    if name == "elasticsearch":
        # Elasticsearch (and the emulator) reject dots, as documented for rank_features.
        assert resp.status_code == 400
        assert "do not support dots in feature names" in error_reason(resp)
    else:
        # OpenSearch 2.19 accepts the document, but the feature can never be queried: silently lost.
        assert resp.status_code == 201
        client.post(f"/{index}/_refresh")
        query = {"query": {"rank_feature": {"field": "f.a.b", "linear": {}}}}
        assert client.post(f"/{index}/_search", json=query).json()["hits"]["hits"] == []


def test_immense_token(engine: tuple[str, httpx.Client, str]) -> None:
    name, client, index = engine
    assert put_doc(client, index, "max", json.dumps({"f": {"z" * 32766: 1.0}})).status_code == 201
    resp = put_doc(client, index, "over", json.dumps({"f": {"z" * 32767: 1.0}}))
    if name == "opensearch":
        # Lucene's hard limit on one term: 32766 UTF-8 bytes.
        assert resp.status_code == 400
        assert "immense term" in error_reason(resp) or "32766" in error_reason(resp)
    else:
        # Difference of the emulator: it does not enforce Lucene's term length limit.
        assert resp.status_code == 201
