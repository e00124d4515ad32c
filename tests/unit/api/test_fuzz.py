"""Fuzzing: every operation of the OpenAPI document (schemathesis) and the request models (hypothesis).

Whatever arrives, the answer is never a 5xx, and the server is still ready and serving afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi

from sidecar.api.app import OPENAPI_URL, create_app
from sidecar.settings import load_settings
from tests.unit.api.conftest import DENSE_ID, RERANK_ID, SPARSE_ID

OWN_PATHS = r"^/(_inference|_sidecar|metrics|$)"
FUZZ_LIMITS = {"max_inputs_per_request": 8, "max_input_chars": 300, "max_body_bytes": 64 * 1024}


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    registry = tmp_path_factory.mktemp("fuzz") / "endpoints.sqlite3"
    return create_app(load_settings(registry_path=registry, preload_endpoints=[], **FUZZ_LIMITS))


@pytest.fixture(scope="module")
def fuzz_client(fuzz_app: Any) -> Iterator[Any]:
    # schemathesis's client runs the app (and its lifespan) on one shared event loop.
    with asgi.get_client(fuzz_app) as client:
        yield client


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_operations_never_answer_5xx(fuzz_app: Any, fuzz_client: Any, mode: GenerationMode) -> None:
    # The inference API's own operations (the ingest hook's document routes have their own tests).
    schema = schemathesis.openapi.from_asgi(OPENAPI_URL, fuzz_app).include(path_regex=OWN_PATHS)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 20  # every route is documented

    @given(case=schema.as_strategy(generation_mode=mode))
    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    def call(case: Any) -> None:
        response = case.call_and_validate(checks=[not_a_server_error])
        assert response.headers["x-elastic-product"] == ["Elasticsearch"]

    call()
    ready = fuzz_client.get("/_sidecar/health/ready")
    assert ready.status_code == 200, ready.text


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["input", "query", "input_type", "task_settings", "top_n", "return_documents", "timeout", "inputs"]
FIELD_VALUES = {
    "input": st.text(max_size=50) | st.lists(st.text(max_size=50), max_size=10),
    "inputs": st.text(max_size=50) | st.lists(st.text(max_size=50), max_size=10),
    "query": st.text(max_size=30),
    "input_type": st.sampled_from(["ingest", "search", "SEARCH", "other", ""]),
    "top_n": st.integers(-3, 10),
    "timeout": st.sampled_from(["30s", "1ms", "-1", "0", "soon", "5"]),
}
BODIES = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8),
    st.one_of(JSON_VALUES, *FIELD_VALUES.values()),
    max_size=5,
)
PATHS = st.sampled_from(
    [
        f"/_inference/{SPARSE_ID}",
        f"/_inference/sparse_embedding/{SPARSE_ID}",
        f"/_inference/{DENSE_ID}",
        f"/_inference/text_embedding/{DENSE_ID}",
        f"/_inference/rerank/{RERANK_ID}",
        f"/_inference/{RERANK_ID}",
        f"/_sidecar/hugging_face/{SPARSE_ID}",
        f"/_sidecar/custom/{DENSE_ID}",
        "/_inference/sparse_embedding/missing",
    ]
)


def test_request_models_never_answer_5xx(fuzz_client: Any) -> None:
    @given(path=PATHS, body=BODIES | JSON_VALUES, raw=st.booleans())
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def post(path: str, body: Any, raw: bool) -> None:
        data = json.dumps(body).encode() if not raw else json.dumps(body)[:-1].encode()  # raw: truncated
        response = fuzz_client.post(path, data=data, headers={"content-type": "application/json"})
        assert response.status_code < 500, response.text
        answer = response.json()
        if response.status_code >= 400:
            assert answer["status"] == response.status_code
        else:
            assert answer  # a non-empty success body

    post()
    # Still healthy and still serving after all that.
    assert fuzz_client.get("/_sidecar/health/ready").status_code == 200
    ok = fuzz_client.post(f"/_inference/{SPARSE_ID}", json={"input": "still here"})
    assert ok.status_code == 200
    assert ok.json()["sparse_embedding"][0]["embedding"]
