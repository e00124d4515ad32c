"""Compressed request bodies (`Content-Encoding: gzip`, the official client's `http_compress=True`)."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx

from tests.unit.api.conftest import ClientFactory
from tests.unit.api.fake_service import FAKE_SPARSE_ID, FakeInferenceService

PATH = f"/_inference/sparse_embedding/{FAKE_SPARSE_ID}"


def _headers(encoding: str) -> dict[str, str]:
    return {"content-type": "application/json", "content-encoding": encoding}


async def test_gzip_and_deflate_bodies_are_read(fake_client: httpx.AsyncClient) -> None:
    body = json.dumps({"input": ["red fox", "blue whale"]}).encode()
    plain = await fake_client.post(PATH, content=body, headers={"content-type": "application/json"})
    assert plain.status_code == 200, plain.text
    for encoding, data in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        answer = await fake_client.post(PATH, content=data, headers=_headers(encoding))
        assert answer.status_code == 200, answer.text
        assert answer.json() == plain.json()


async def test_the_body_limit_counts_inflated_bytes(open_client: ClientFactory) -> None:
    # 10 MB of one repeated byte compress to about 10 KB: a small request, a large body.
    bomb = gzip.compress(b'{"input": "' + b"a" * 10_000_000 + b'"}')
    assert len(bomb) < 20_000
    async with open_client(service=FakeInferenceService(), max_body_bytes=1_000_000) as client:
        answer = await client.post(PATH, content=bomb, headers=_headers("gzip"))
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["type"] == "request_entity_too_large_exception"
    assert "exceeds the limit of [1000000] bytes" in answer.json()["error"]["reason"]


async def test_corrupt_or_truncated_compression_is_a_400(fake_client: httpx.AsyncClient) -> None:
    whole = gzip.compress(json.dumps({"input": "x" * 1000}).encode())
    for data in (b"not gzip at all", whole[: len(whole) // 2]):
        answer = await fake_client.post(PATH, content=data, headers=_headers("gzip"))
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "x_content_parse_exception"
        assert error["reason"].startswith("request body is not valid compressed data")
