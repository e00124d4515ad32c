"""The engine clients' orjson bodies: the same JSON as the clients' own encoders, and their encoders
for whatever orjson refuses."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from sidecar.pipelines.schema import SinkConfig
from sidecar.sinks.elasticsearch import make_client as es_client
from sidecar.sinks.fastjson import EsJson, EsNdjson, OsJson
from sidecar.sinks.opensearch import make_client as os_client

BODIES: list[Any] = [
    {"update": {"_index": "docs", "_id": "1"}},
    {"doc": {"ml": {"tokens": {"hello": 1.5, "big__world": 0.001953125, "é": 3e-7}}}},
    {"title": "naïve ✓", "n": [1, 2.5, None, True], "nested": {"a": {"b": []}}},
]
# orjson refuses these: the clients' own encoders take them.
REFUSED: list[Any] = [{"id": 10**30}, {"text": "half a pair \udc00"}, {"price": Decimal("1.10")}]


@pytest.mark.parametrize("body", BODIES)
def test_bodies_read_back_as_they_were(body: Any) -> None:
    assert json.loads(EsJson().dumps(body)) == body
    assert json.loads(OsJson().dumps(body)) == body


@pytest.mark.parametrize("body", REFUSED)
def test_what_orjson_refuses_goes_to_the_clients_encoder(body: Any) -> None:
    from elasticsearch.serializer import JsonSerializer
    from opensearchpy.serializer import JSONSerializer

    assert EsJson().dumps(body) == JsonSerializer().dumps(body)
    assert OsJson().dumps(body) == JSONSerializer().dumps(body)


def test_ndjson_lines_and_big_integers_read_back_exactly() -> None:
    # Responses keep the standard library's reading: orjson would turn this integer into a float.
    assert EsNdjson().dumps(BODIES[:2]) == b"".join(EsJson().dumps(b) + b"\n" for b in BODIES[:2])
    assert EsJson().loads(b'{"seq": 123456789012345678901234567890}') == {
        "seq": 123456789012345678901234567890
    }
    assert OsJson().loads('{"seq": 123456789012345678901234567890}') == {
        "seq": 123456789012345678901234567890
    }
    assert OsJson().dumps("already a string") == "already a string"


async def test_both_sinks_clients_use_them() -> None:
    os = os_client(
        SinkConfig.model_validate({"engine": "opensearch", "urls": "http://127.0.0.1:1", "index": "i"})
    )
    es = es_client(
        SinkConfig.model_validate({"engine": "elasticsearch", "urls": "http://127.0.0.1:1", "index": "i"})
    )
    try:
        assert isinstance(os.transport.serializer, OsJson)
        serializers = es.transport.serializers
        for mimetype in ("application/json", "application/vnd.elasticsearch+json"):
            assert isinstance(serializers.get_serializer(mimetype), EsJson), mimetype
        assert isinstance(serializers.get_serializer("application/x-ndjson"), EsNdjson)
    finally:
        await os.close()
        await es.close()
