"""What the official clients need from any answer: the product header, media types, `GET /`, `HEAD /`."""

from __future__ import annotations

import httpx
import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.matchers import path_type

from tests.unit.api.conftest import SPARSE_ID

VENDOR = "application/vnd.elasticsearch+json; compatible-with={}"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/", None),
        ("GET", "/_inference", None),
        ("POST", f"/_inference/{SPARSE_ID}", {"input": "x"}),
        ("GET", "/_inference/missing", None),
        ("GET", "/no/route", None),
        ("PATCH", "/_inference", None),
        ("GET", "/metrics", None),
        ("GET", "/_sidecar/health/live", None),
        ("GET", "/_sidecar/health/ready", None),
        ("GET", "/_sidecar/openapi.json", None),
    ],
)
async def test_every_answer_names_the_product(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, str] | None
) -> None:
    response = await client.request(method, path, json=body)
    assert response.headers["x-elastic-product"] == "Elasticsearch"
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("major", [8, 9])
async def test_vendor_media_types_are_accepted_and_mirrored(client: httpx.AsyncClient, major: int) -> None:
    headers = {"accept": VENDOR.format(major), "content-type": VENDOR.format(major)}
    response = await client.post(f"/_inference/{SPARSE_ID}", content=b'{"input": "hello"}', headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"application/vnd.elasticsearch+json;compatible-with={major}"
    plain = await client.post(f"/_inference/{SPARSE_ID}", json={"input": "hello"})
    assert plain.headers["content-type"] == "application/json"
    assert plain.json() == response.json()


async def test_unsupported_compat_version_in_content_type(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/_inference/{SPARSE_ID}", content=b'{"input": "x"}', headers={"content-type": VENDOR.format(7)}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "media_type_header_exception"
    assert "[Content-Type]" in response.json()["error"]["reason"]


@pytest.mark.parametrize("major", [8, 9])
async def test_root_info(client: httpx.AsyncClient, snapshot: SnapshotAssertion, major: int) -> None:
    response = await client.get("/", headers={"accept": VENDOR.format(major)})
    assert response.status_code == 200
    info = response.json()
    assert info["tagline"] == "You Know, for Search"
    assert info["version"]["number"].startswith(f"{major}.")
    assert info["version"]["build_flavor"] == "default"
    assert info == snapshot(
        matcher=path_type({"name": (str,), "cluster_uuid": (str,), "sidecar.version": (str,)})
    )


async def test_head_root_is_a_ping(client: httpx.AsyncClient) -> None:
    response = await client.head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["x-elastic-product"] == "Elasticsearch"


async def test_request_ids_are_taken_from_the_client_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/", headers={"x-opaque-id": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    assert given.headers["x-opaque-id"] == "trace-42"
    made = [await client.get("/") for _ in range(2)]
    assert made[0].headers["x-request-id"] != made[1].headers["x-request-id"]


async def test_pretty_and_filter_path(client: httpx.AsyncClient) -> None:
    pretty = await client.get("/_inference?pretty")
    assert pretty.text.startswith("{\n  ")
    filtered = await client.get("/_inference", params={"filter_path": "endpoints.inference_id"})
    ids = [e["inference_id"] for e in filtered.json()["endpoints"]]
    assert SPARSE_ID in ids
    assert all(set(e) == {"inference_id"} for e in filtered.json()["endpoints"])
