"""Every failure answers with Elasticsearch's status, error type and envelope (`ErrorResponseBase` in
https://github.com/elastic/elasticsearch-specification/blob/main/specification/_types/Errors.ts)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from syrupy.assertion import SnapshotAssertion

from sidecar.errors import ModelNotReadyError, OverloadedError, RemoteServiceError, TimeoutError_
from tests.unit.api.conftest import DENSE_ID, RERANK_ID, SPARSE_ID, ClientFactory
from tests.unit.api.fake_service import FAKE_SPARSE_ID, FakeInferenceService

JSON = {"content-type": "application/json"}
VALIDATION, PARSE, STATUS = (
    "action_request_validation_exception",
    "x_content_parse_exception",
    "status_exception",
)
LOCAL_SPLADE = {"service": "elasticsearch", "service_settings": {"model_id": ".splade_tiny"}}
SPARSE, TYPED_SPARSE, TYPED_DENSE = (
    f"/_inference/{SPARSE_ID}",
    f"/_inference/sparse_embedding/{SPARSE_ID}",
    (f"/_inference/text_embedding/{DENSE_ID}"),
)
COMPAT_6 = {"accept": "application/vnd.elasticsearch+json; compatible-with=6"}


def case(name: str, method: str, path: str, body: Any, status: int, es_type: str, **headers: str) -> Any:
    """body: a dict is sent as JSON, a str as raw bytes with a JSON content type, None as nothing."""
    return pytest.param(method, path, body, headers, status, es_type, id=name)


CASES = [
    case("unknown_id", "POST", "/_inference/nope", {"input": "x"}, 404, "resource_not_found_exception"),
    case("get_unknown_id", "GET", "/_inference/nope", None, 404, "resource_not_found_exception"),
    case("delete_unknown_id", "DELETE", "/_inference/nope", None, 404, "resource_not_found_exception"),
    case("unknown_task_type", "POST", f"/_inference/bogus/{SPARSE_ID}", {"input": "x"}, 400, STATUS),
    case("unknown_task_type_get", "GET", "/_inference/bogus/_all", None, 400, STATUS),
    case(
        "task_type_mismatch", "POST", f"/_inference/text_embedding/{SPARSE_ID}", {"input": "x"}, 400, STATUS
    ),
    case("invalid_id", "PUT", "/_inference/sparse_embedding/Bad!Id", LOCAL_SPLADE, 400, VALIDATION),
    case("reserved_id", "PUT", f"/_inference/sparse_embedding/{SPARSE_ID}", LOCAL_SPLADE, 400, VALIDATION),
    case(
        "unknown_service",
        "PUT",
        "/_inference/sparse_embedding/x1",
        {"service": "magic", "service_settings": {}},
        400,
        STATUS,
    ),
    case(
        "missing_setting",
        "PUT",
        "/_inference/sparse_embedding/x2",
        {"service": "hugging_face", "service_settings": {"api_key": "k"}},
        400,
        "validation_exception",
    ),
    case(
        "unknown_setting",
        "PUT",
        "/_inference/sparse_embedding/x3",
        {"service": "elasticsearch", "service_settings": {"model_id": ".splade_tiny", "colour": "red"}},
        400,
        STATUS,
    ),
    case(
        "unknown_body_field_put",
        "PUT",
        "/_inference/sparse_embedding/x4",
        {**LOCAL_SPLADE, "extra": 1},
        400,
        PARSE,
    ),
    case(
        "task_type_conflict",
        "PUT",
        "/_inference/sparse_embedding/x5",
        {**LOCAL_SPLADE, "task_type": "text_embedding"},
        400,
        STATUS,
    ),
    case("update_reserved", "PUT", f"/_inference/{SPARSE_ID}/_update", {"task_settings": {}}, 400, STATUS),
    case("delete_reserved", "DELETE", f"/_inference/{SPARSE_ID}", None, 400, STATUS),
    case("missing_body", "POST", SPARSE, None, 400, "parse_exception"),
    case("missing_body_put", "PUT", "/_inference/sparse_embedding/new-one", None, 400, "parse_exception"),
    case("bad_json", "POST", SPARSE, '{"input": ', 400, PARSE),
    case("not_an_object", "POST", SPARSE, "[1, 2]", 400, PARSE),
    case("duplicate_field", "POST", SPARSE, '{"input": "a", "input": "b"}', 400, PARSE),
    case("unknown_field", "POST", SPARSE, {"inptu": "x"}, 400, PARSE),
    case("wrong_type", "POST", SPARSE, {"input": 42}, 400, PARSE),
    case("input_null", "POST", SPARSE, {"input": None}, 400, VALIDATION),
    case("input_missing", "POST", SPARSE, {}, 400, VALIDATION),
    case("input_empty", "POST", SPARSE, {"input": []}, 400, VALIDATION),
    case("rerank_no_query", "POST", f"/_inference/rerank/{RERANK_ID}", {"input": ["a"]}, 400, VALIDATION),
    case("rerank_untyped_no_query", "POST", f"/_inference/{RERANK_ID}", {"input": ["a"]}, 400, VALIDATION),
    case("query_on_sparse", "POST", TYPED_SPARSE, {"input": "a", "query": "q"}, 400, VALIDATION),
    case("top_n_on_sparse", "POST", TYPED_SPARSE, {"input": "a", "top_n": 1}, 400, VALIDATION),
    case(
        "input_type_on_sparse", "POST", TYPED_SPARSE, {"input": "a", "input_type": "search"}, 400, VALIDATION
    ),
    case("bad_input_type", "POST", TYPED_DENSE, {"input": "a", "input_type": "sideways"}, 400, PARSE),
    case("unknown_task_setting", "POST", SPARSE, {"input": "a", "task_settings": {"shade": 1}}, 400, STATUS),
    case("unknown_param", "GET", "/_inference?foo=1", None, 400, "illegal_argument_exception"),
    case("bad_boolean", "DELETE", f"{SPARSE}?dry_run=yes", None, 400, "illegal_argument_exception"),
    case("bad_timeout", "POST", f"{SPARSE}?timeout=soon", {"input": "a"}, 400, "parse_exception"),
    case(
        "bad_timeout_in_body", "POST", SPARSE, {"input": "a", "timeout": "10 parsecs"}, 400, "parse_exception"
    ),
    case("unsupported_compat", "GET", "/_inference", None, 400, "media_type_header_exception", **COMPAT_6),
    case("stream_not_allowed", "POST", f"{TYPED_SPARSE}/_stream", {"input": "a"}, 405, STATUS),
    case("stream_unsupported_task", "POST", f"{SPARSE}/_stream", {"input": "a"}, 405, STATUS),
]


async def _send(
    client: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    if isinstance(body, dict):
        return await client.request(method, path, json=body, headers=headers)
    if isinstance(body, str):
        return await client.request(method, path, content=body.encode(), headers={**JSON, **headers})
    return await client.request(method, path, headers=headers)


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "es_type"), CASES)
async def test_error_envelope(
    client: httpx.AsyncClient,
    snapshot: SnapshotAssertion,
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


async def test_an_existing_id_cannot_be_created_again(
    client: httpx.AsyncClient, snapshot: SnapshotAssertion
) -> None:
    path = "/_inference/sparse_embedding/twice"
    assert (await client.put(path, json=LOCAL_SPLADE)).status_code == 200
    again = await client.put(path, json=LOCAL_SPLADE)
    assert again.status_code == 400
    assert again.json() == snapshot
    assert (await client.delete(path)).status_code == 200


@pytest.mark.parametrize(
    ("error", "status", "es_type"),
    [
        (
            OverloadedError("rejected execution of inference: queue full [4096]"),
            429,
            "es_rejected_execution_exception",
        ),
        (TimeoutError_("Request timed out after [30.0s]"), 408, "elasticsearch_timeout_exception"),
        (ModelNotReadyError("model [.splade_tiny] is loading"), 409, "status_exception"),
        (
            RemoteServiceError("Received a server error status code [503]", retriable=True),
            502,
            "status_exception",
        ),
    ],
)
async def test_service_failures_keep_their_status(
    fake_client: httpx.AsyncClient, fake: FakeInferenceService, error: Exception, status: int, es_type: str
) -> None:
    """Failures the packaged models cannot be made to produce on demand, from the in-test service."""
    fake.fail_with = error
    response = await fake_client.post(f"/_inference/{FAKE_SPARSE_ID}", json={"input": "x"})
    assert response.status_code == status
    assert response.json()["error"]["type"] == es_type
    assert response.json()["error"]["reason"] == str(error)


async def test_a_bug_answers_500_with_an_es_body(
    fake_client: httpx.AsyncClient, fake: FakeInferenceService
) -> None:
    fake.fail_with = ZeroDivisionError("division by zero")
    response = await fake_client.post(f"/_inference/{FAKE_SPARSE_ID}", json={"input": "x"})
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
    async with open_client(**overrides) as client:
        response = await client.post(f"/_inference/{SPARSE_ID}", json=body)
        hook = await client.post(f"/_sidecar/hugging_face/{SPARSE_ID}", json={"inputs": body["input"]})
    for answer in (response, hook):
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["type"] == "request_entity_too_large_exception"
        assert fragment in answer.json()["error"]["reason"]


async def test_body_limit_applies_to_streamed_bodies_without_length(open_client: ClientFactory) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield json.dumps({"input": "y" * 20}).encode()

    async with open_client(max_body_bytes=100) as client:
        response = await client.post(f"/_inference/{SPARSE_ID}", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_entity_too_large_exception"


async def test_in_flight_limit_answers_429(open_client: ClientFactory) -> None:
    slow = FakeInferenceService()
    slow.delay = 0.2  # holds each request long enough for the others to arrive
    async with open_client(service=slow, max_concurrent_requests=2) as client:
        answers = await asyncio.gather(
            *(client.post(f"/_inference/{FAKE_SPARSE_ID}", json={"input": f"t{i}"}) for i in range(6))
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 429, 429, 429, 429]
    rejected = next(a for a in answers if a.status_code == 429)
    assert rejected.json()["error"]["type"] == "es_rejected_execution_exception"
