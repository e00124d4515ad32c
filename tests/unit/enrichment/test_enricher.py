from __future__ import annotations

import pytest

from sidecar.enrichment import Enricher, content_hash
from sidecar.errors import DocumentError, RetriableInferenceError
from sidecar.inference.types import InputType
from sidecar.pipelines.schema import FieldConfig
from tests.unit.worker.fakes import FakeService, dense_of, sparse_of


def spec(**kwargs: object) -> FieldConfig:
    raw = {"input": "title", "endpoint": ".splade-tiny", "target": "ml.tokens", **kwargs}
    return FieldConfig.model_validate(raw)


async def test_rank_features_written_at_nested_target_with_legal_names(service: FakeService) -> None:
    writer = Enricher([spec()], service)
    [doc] = await writer.write([{"title": "Hello big.world", "other": 1}])
    assert isinstance(doc, dict)
    assert doc["other"] == 1 and doc["title"] == "Hello big.world"
    # "big.world" is not a legal rank_features name: the service's answer has "__" instead.
    assert doc["ml"]["tokens"] == {"big__world": pytest.approx(1.9), "hello": pytest.approx(1.5)}


async def test_input_document_is_not_mutated(service: FakeService) -> None:
    original = {"title": "a b", "ml": {"kept": True}}
    [doc] = await Enricher([spec()], service).write([original])
    assert original == {"title": "a b", "ml": {"kept": True}}
    assert isinstance(doc, dict) and doc["ml"]["kept"] is True and "tokens" in doc["ml"]


async def test_several_inputs_are_joined_and_pruned(service: FakeService) -> None:
    field = spec(input=["title", "body.text"], pruning={"top_k": 2})
    [doc] = await Enricher([field], service).write([{"title": "aa bbbb", "body": {"text": "c dddddd"}}])
    assert service.texts == ["aa bbbb\nc dddddd"]
    assert isinstance(doc, dict)
    assert list(doc["ml"]["tokens"]) == ["dddddd", "bbbb"]


async def test_chunks_are_encoded_separately_and_combined_by_max(service: FakeService) -> None:
    field = spec(chunking={"strategy": "word", "max_chunk_size": 10, "overlap": 0})
    text = " ".join(["alpha"] * 10 + ["omega"] * 5)
    [doc] = await Enricher([field], service).write([{"title": text}])
    assert service.texts == [" ".join(["alpha"] * 10), " ".join(["omega"] * 5)]
    assert isinstance(doc, dict) and set(doc["ml"]["tokens"]) == {"alpha", "omega"}


async def test_dense_vector_uses_ingest_input_type(service: FakeService) -> None:
    field = spec(endpoint=".minilm-l6", target="vec", type="dense_vector")
    [doc] = await Enricher([field], service).write([{"title": "dense text"}])
    assert isinstance(doc, dict) and doc["vec"] == dense_of("dense text")
    assert service.calls[0][2] is InputType.INGEST


@pytest.mark.parametrize(
    ("doc", "error_type"),
    [
        ({"other": "x"}, "missing_input_field"),
        ({"title": None}, "missing_input_field"),
        ({"title": 42}, "invalid_input_field"),
        ({"title": ["a"]}, "invalid_input_field"),
        ({"title": "x" * 101}, "input_too_large"),
        ({"title": "ok", "ml": "not an object"}, "target_conflict"),
    ],
)
async def test_bad_documents_fail_alone(
    service: FakeService, doc: dict[str, object], error_type: str
) -> None:
    writer = Enricher([spec()], service, max_input_chars=100)
    bad, good = await writer.write([doc, {"title": "fine"}])
    assert isinstance(bad, DocumentError) and bad.error_type == error_type
    assert isinstance(good, dict) and good["ml"]["tokens"] == sparse_of("fine")


async def test_optional_input_missing_skips_the_field(service: FakeService) -> None:
    [doc] = await Enricher([spec(required=False)], service).write([{"other": 1}])
    assert doc == {"other": 1}
    assert service.calls == []


async def test_permanent_inference_failure_is_isolated_to_its_document(service: FakeService) -> None:
    service.poison_words = {"boom"}
    docs = [{"title": f"doc {i}"} for i in range(7)] + [{"title": "boom here"}]
    results = await Enricher([spec()], service, max_inputs_per_request=4).write(docs)
    assert [isinstance(r, DocumentError) for r in results] == [False] * 7 + [True]
    failure = results[-1]
    assert isinstance(failure, DocumentError) and "model blew up" in failure.reason


async def test_retriable_inference_failure_is_raised(service: FakeService) -> None:
    service.overloaded_calls = 1
    with pytest.raises(RetriableInferenceError):
        await Enricher([spec()], service).write([{"title": "x"}])


async def test_requests_are_split_by_max_inputs(service: FakeService) -> None:
    docs = [{"title": f"t{i}"} for i in range(10)]
    results = await Enricher([spec()], service, max_inputs_per_request=3).write(docs)
    assert [len(inputs) for _, inputs, _ in service.calls] == [3, 3, 3, 1]
    assert [r["ml"]["tokens"] for r in results if isinstance(r, dict)] == [
        sparse_of(f"t{i}") for i in range(10)
    ]


async def test_skip_if_unchanged_reuses_stored_vector_and_writes_hash(service: FakeService) -> None:
    field = spec(skip_if_unchanged=True)
    writer = Enricher([field], service)
    assert writer.lookup_paths == ["ml.tokens", "ml.tokens_hash"]
    [first] = await writer.write([{"title": "same text"}])
    assert isinstance(first, dict)
    digest = first["ml"]["tokens_hash"]
    assert digest == content_hash(field, "same text")
    stored = {"ml": {"tokens": {"stored": 9.0}, "tokens_hash": digest}}
    calls = len(service.calls)
    unchanged, changed = await writer.write([{"title": "same text"}, {"title": "new text"}], [stored, stored])
    assert isinstance(unchanged, dict) and unchanged["ml"]["tokens"] == {"stored": 9.0}
    assert isinstance(changed, dict) and changed["ml"]["tokens"] == sparse_of("new text")
    assert service.texts[calls:] == ["new text"]
    assert writer.skipped_unchanged == 1


def test_hash_changes_with_endpoint_settings() -> None:
    assert content_hash(spec(), "t") != content_hash(spec(pruning={"top_k": 5}), "t")
    assert content_hash(spec(), "t") != content_hash(spec(), "u")
    assert content_hash(spec(), "t") == content_hash(spec(), "t")


@pytest.mark.parametrize("required", [True, False])
async def test_an_input_with_no_content_is_like_an_absent_optional_one(
    service: FakeService, required: bool
) -> None:
    """Empty or whitespace-only text gets no value (as Elasticsearch's semantic_text), not an error."""
    docs = await Enricher([spec(required=required)], service).write([{"title": ""}, {"title": " \n "}])
    assert docs == [{"title": ""}, {"title": " \n "}]
    assert service.calls == []
