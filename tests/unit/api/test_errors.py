"""Every failure answers with Elasticsearch's status, error type and envelope (REFERENCE.md section 4)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from syrupy.assertion import SnapshotAssertion

from sidecar.errors import OverloadedError, TimeoutError_
from tests.unit.api.conftest import DENSE_ID, RERANK_ID, SPARSE_ID, ClientFactory
from tests.unit.api.fake_service import FakeInferenceService

JSON = {"content-type": "application/json"}

# (name, method, path, body (dict -> JSON, str/bytes -> raw), headers, status, error type)
CASES: list[tuple[str, str, str, Any, dict[str, str], int, str]] = [
    ("unknown_id", "POST", "/_inference/nope", {"input": "x"}, {}, 404, "resource_not_found_exception"),
    ("get_unknown_id", "GET", "/_inference/nope", None, {}, 404, "resource_not_found_exception"),
    ("delete_unknown_id", "DELETE", "/_inference/nope", None, {}, 404, "resource_not_found_exception"),
    (
        "unknown_task_type",
        "POST",
        f"/_inference/bogus/{SPARSE_ID}",
        {"input": "x"},
        {},
        400,
        "status_exception",
    ),
    ("unknown_task_type_get", "GET", "/_inference/bogus/_all", None, {}, 400, "status_exception"),
    (
        "task_type_mismatch",
        "POST",
        f"/_inference/text_embedding/{SPARSE_ID}",
        {"input": "x"},
        {},
        400,
        "status_exception",
    ),
    (
        "already_exists",
        "PUT",
        f"/_inference/sparse_embedding/{SPARSE_ID}",
        {"service": "fake", "service_settings": {}},
        {},
        400,
        "resource_already_exists_exception",
    ),
    (
        "invalid_id",
        "PUT",
        "/_inference/sparse_embedding/Bad!Id",
        {"service": "fake", "service_settings": {}},
        {},
        400,
        "action_request_validation_exception",
    ),
    ("missing_body", "POST", f"/_inference/{SPARSE_ID}", None, {}, 400, "parse_exception"),
    ("missing_body_put", "PUT", "/_inference/sparse_embedding/new-one", None, {}, 400, "parse_exception"),
    ("bad_json", "POST", f"/_inference/{SPARSE_ID}", '{"input": ', JSON, 400, "x_content_parse_exception"),
    ("not_an_object", "POST", f"/_inference/{SPARSE_ID}", "[1, 2]", JSON, 400, "x_content_parse_exception"),
    (
        "duplicate_field",
        "POST",
        f"/_inference/{SPARSE_ID}",
        '{"input": "a", "input": "b"}',
        JSON,
        400,
        "x_content_parse_exception",
    ),
    (
        "unknown_field",
        "POST",
        f"/_inference/{SPARSE_ID}",
        {"inptu": "x"},
        {},
        400,
        "x_content_parse_exception",
    ),
    ("wrong_type", "POST", f"/_inference/{SPARSE_ID}", {"input": 42}, {}, 400, "x_content_parse_exception"),
    (
        "input_null",
        "POST",
        f"/_inference/{SPARSE_ID}",
        {"input": None},
        {},
        400,
        "action_request_validation_exception",
    ),
    ("input_missing", "POST", f"/_inference/{SPARSE_ID}", {}, {}, 400, "action_request_validation_exception"),
    (
        "input_empty",
        "POST",
        f"/_inference/{SPARSE_ID}",
        {"input": []},
        {},
        400,
        "action_request_validation_exception",
    ),
    (
        "rerank_no_query",
        "POST",
        f"/_inference/rerank/{RERANK_ID}",
        {"input": ["a"]},
        {},
        400,
        "action_request_validation_exception",
    ),
    (
        "rerank_untyped_no_query",
        "POST",
        f"/_inference/{RERANK_ID}",
        {"input": ["a"]},
        {},
        400,
        "action_request_validation_exception",
    ),
    (
        "query_on_sparse",
        "POST",
        f"/_inference/sparse_embedding/{SPARSE_ID}",
        {"input": "a", "query": "q"},
        {},
        400,
        "action_request_validation_exception",
    ),
    (
        "top_n_on_sparse",
        "POST",
        f"/_inference/sparse_embedding/{SPARSE_ID}",
        {"input": "a", "top_n": 1},
        {},
        400,
        "action_request_validation_exception",
    ),
    (
        "input_type_on_sparse",
        "POST",
        f"/_inference/sparse_embedding/{SPARSE_ID}",
        {"input": "a", "input_type": "search"},
        {},
        400,
        "action_request_validation_exception",
    ),
    (
        "bad_input_type",
        "POST",
        f"/_inference/text_embedding/{DENSE_ID}",
        {"input": "a", "input_type": "sideways"},
        {},
        400,
        "x_content_parse_exception",
    ),
    ("unknown_param", "GET", "/_inference?foo=1", None, {}, 400, "illegal_argument_exception"),
    (
        "bad_boolean",
        "DELETE",
        f"/_inference/{SPARSE_ID}?dry_run=yes",
        None,
        {},
        400,
        "illegal_argument_exception",
    ),
    (
        "bad_timeout",
        "POST",
        f"/_inference/{SPARSE_ID}?timeout=soon",
        {"input": "a"},
        {},
        400,
        "parse_exception",
    ),
    (
        "bad_timeout_in_body",
        "POST",
        f"/_inference/{SPARSE_ID}",
        {"input": "a", "timeout": "10 parsecs"},
        {},
        400,
        "parse_exception",
    ),
    (
        "unsupported_compat",
        "GET",
        "/_inference",
        None,
        {"accept": "application/vnd.elasticsearch+json; compatible-with=6"},
        400,
        "media_type_header_exception",
    ),
    (
        "stream_not_allowed",
        "POST",
        f"/_inference/sparse_embedding/{SPARSE_ID}/_stream",
        {"input": "a"},
        {},
        405,
        "status_exception",
    ),
]


async def _send(
    client: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    if isinstance(body, dict):
        return await client.request(method, path, json=body, headers=headers)
    return await client.request(method, path, content=body, headers=headers)


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "headers", "status", "es_type"), CASES, ids=[c[0] for c in CASES]
)
async def test_error_envelope(
    client: httpx.AsyncClient,
    snapshot: SnapshotAssertion,
    name: str,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    es_type: str,
) -> None:
    response = await _send(client, method, path, body, headers)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["status"] == status
    assert error["error"]["type"] == es_type
    assert error["error"]["root_cause"] == [{"type": es_type, "reason": error["error"]["reason"]}]
    assert response.headers["x-elastic-product"] == "Elasticsearch"
    assert error == snapshot


async def test_unrouted_path_answers_like_elasticsearch(
    client: httpx.AsyncClient, snapshot: SnapshotAssertion
) -> None:
    response = await client.get("/_nothing/here?x=1")
    assert response.status_code == 400
    assert response.json() == {
        "error": "no handler found for uri [/_nothing/here?x=1] and method [GET]",
        "status": 400,
    }
    assert response.headers["x-elastic-product"] == "Elasticsearch"
    too_deep = await client.post("/_inference/a/b/c/d", json={"input": "x"})
    assert too_deep.json() == snapshot


async def test_wrong_method_lists_the_allowed_ones(
    client: httpx.AsyncClient, snapshot: SnapshotAssertion
) -> None:
    response = await client.patch(f"/_inference/{SPARSE_ID}")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, POST, PUT"
    assert response.json() == snapshot
    root = await client.delete("/")
    assert root.status_code == 405
    assert root.json()["error"].endswith("allowed: [GET, HEAD]")


async def test_body_type_other_than_json_is_refused(
    client: httpx.AsyncClient, snapshot: SnapshotAssertion
) -> None:
    plain = await client.post(
        f"/_inference/{SPARSE_ID}", content=b"input=x", headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 406
    assert plain.json() == snapshot(name="text_plain")
    missing = await client.post(f"/_inference/{SPARSE_ID}", content=b'{"input": "x"}')
    assert missing.status_code == 406
    assert missing.json() == snapshot(name="missing")


async def test_overloaded_service_answers_429(client: httpx.AsyncClient, fake: FakeInferenceService) -> None:
    fake.fail_with = OverloadedError("rejected execution of inference: queue full [4096]")
    response = await client.post(f"/_inference/{SPARSE_ID}", json={"input": "x"})
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "es_rejected_execution_exception"


async def test_timeout_answers_408(client: httpx.AsyncClient, fake: FakeInferenceService) -> None:
    fake.fail_with = TimeoutError_("Request timed out waiting to be sent after [30s]")
    response = await client.post(f"/_inference/{SPARSE_ID}", json={"input": "x"})
    assert response.status_code == 408
    assert response.json()["error"]["type"] == "elasticsearch_timeout_exception"


async def test_a_bug_answers_500_with_an_es_body(
    client: httpx.AsyncClient, fake: FakeInferenceService
) -> None:
    fake.fail_with = ZeroDivisionError("division by zero")
    response = await client.post(f"/_inference/{SPARSE_ID}", json={"input": "x"})
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["type"] == "exception"
    assert "ZeroDivisionError" in body["error"]["reason"]
    assert response.headers["x-elastic-product"] == "Elasticsearch"


@pytest.mark.parametrize(
    ("overrides", "body", "fragment"),
    [
        ({"max_body_bytes": 64}, {"input": "x" * 100}, "exceeds the limit of [64] bytes"),
        ({"max_inputs_per_request": 2}, {"input": ["a", "b", "c"]}, "[3] inputs, more than the limit of [2]"),
        ({"max_input_chars": 5}, {"input": ["short", "too long"]}, "input [1] has [8] characters"),
    ],
)
async def test_limits_answer_413(
    open_client: ClientFactory, overrides: dict[str, int], body: dict[str, Any], fragment: str
) -> None:
    async with open_client(service=FakeInferenceService(), **overrides) as client:
        response = await client.post(f"/_inference/{SPARSE_ID}", json=body)
        hook = await client.post(f"/_sidecar/hugging_face/{SPARSE_ID}", json={"inputs": body["input"]})
    for answer in (response, hook):
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["type"] == "request_entity_too_large_exception"
        assert fragment in answer.json()["error"]["reason"]


async def test_body_limit_applies_to_streamed_bodies_without_length(open_client: ClientFactory) -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield json.dumps({"input": "y" * 20}).encode()

    async with open_client(service=FakeInferenceService(), max_body_bytes=100) as client:
        response = await client.post(f"/_inference/{SPARSE_ID}", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_entity_too_large_exception"


async def test_in_flight_limit_answers_429(open_client: ClientFactory) -> None:
    import asyncio

    slow = FakeInferenceService()
    slow.delay = 0.2
    async with open_client(service=slow, max_concurrent_requests=2) as client:
        answers = await asyncio.gather(
            *(client.post(f"/_inference/{SPARSE_ID}", json={"input": f"t{i}"}) for i in range(6))
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 429, 429, 429, 429]
    rejected = next(a for a in answers if a.status_code == 429)
    assert rejected.json()["error"]["type"] == "es_rejected_execution_exception"
