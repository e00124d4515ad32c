"""Property: whatever the text or the model output, the cleaned vector is accepted as a
`rank_features` value by real OpenSearch and by the Elasticsearch-wire server (which, like
Elasticsearch, also refuses dots in feature names)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.inference.services.splade import SpladeBackend
from sidecar.rank_features import Pruning, clean_features

pytestmark = pytest.mark.integration

# Names: any unicode (dots, spaces, control characters, lone surrogates, very long), plus the
# vocabulary pieces SPLADE really emits. Weights: every float, including the ones Lucene refuses.
NAMES = st.one_of(st.text(max_size=40), st.sampled_from([".", "##s", "u.s.", "[CLS]", "", " ", "a" * 40000]))
WEIGHTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-45, 1e-39, 1.2e-38, 3.4028235e38, 3.5e38, 5.2]),
)


@pytest.fixture(scope="module", params=["opensearch", "elasticsearch"])
def index(request: pytest.FixtureRequest) -> Iterator[tuple[httpx.Client, str]]:
    url = request.getfixturevalue("opensearch_url" if request.param == "opensearch" else "es_url")
    name = f"rank-features-safety-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=url, timeout=30) as client:
        created = client.put(
            f"/{name}", json={"mappings": {"properties": {"tokens": {"type": "rank_features"}}}}
        )
        assert created.status_code == 200, created.text
        yield client, name
        client.delete(f"/{name}")


@pytest.fixture(scope="module")
def splade() -> SpladeBackend:
    return SpladeBackend(".splade_tiny", device="cpu", max_length=128)


def index_ok(client: httpx.Client, name: str, features: dict[str, float]) -> None:
    response = client.post(f"/{name}/_doc", json={"tokens": features})
    assert response.status_code == 201, (features, response.text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    features=st.dictionaries(NAMES, WEIGHTS, max_size=30),
    pruning=st.builds(
        Pruning,
        top_k=st.none() | st.integers(1, 50),
        min_weight=st.none() | st.floats(0, 10),
        max_ratio=st.none() | st.floats(0, 1),
    ),
)
def test_any_model_output_is_accepted(
    index: tuple[httpx.Client, str], features: dict[str, Any], pruning: Pruning
) -> None:
    client, name = index
    index_ok(client, name, clean_features(features, pruning))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(max_size=300), min_size=1, max_size=4))
def test_any_text_through_splade_is_accepted(
    index: tuple[httpx.Client, str], splade: SpladeBackend, texts: list[str]
) -> None:
    client, name = index
    for result in splade.forward(splade.tokenize(texts)):
        cleaned = clean_features(result.embedding)
        assert cleaned, "SPLADE always activates some token"
        index_ok(client, name, cleaned)


def test_rejections_the_rules_prevent_are_real(index: tuple[httpx.Client, str]) -> None:
    """The rules are not superstition: raw values the cleaner drops are refused by the engine."""
    client, name = index
    refused: list[dict[str, float]] = [{"zero": 0.0}, {"neg": -1.0}, {"tiny": 1e-39}, {"huge": 3.5e38}]
    if client.get("/").json()["version"].get("distribution") != "opensearch":
        refused.append({"a.b": 1.0})  # Elasticsearch refuses dots; OpenSearch 2.19 accepts them
    for raw in refused:
        response = client.post(f"/{name}/_doc", json={"tokens": raw})
        assert response.status_code == 400, (raw, response.text)
        assert clean_features(raw) != raw
