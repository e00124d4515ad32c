"""The local SPLADE / dense / rerank services with the real packaged tiny models."""

import math
from pathlib import Path

import pytest
import torch

from sidecar.errors import NotFoundError, RequestValidationError, StatusError
from sidecar.inference.batching import Encoded
from sidecar.inference.service import InferenceService
from sidecar.inference.types import DenseEmbedding, SparseEmbedding, TaskType


def reference_splade(service: InferenceService, texts: list[str]) -> list[dict[str, float]]:
    """Textbook SPLADE: full logits, log1p(relu), masked max, in float32."""
    engine = next(e for k, e in service.pool._engines.items() if k[0] == "sparse")
    backend = engine.backend
    encoded: list[Encoded] = backend.tokenize(texts)
    out = []
    for enc in encoded:
        ids = torch.tensor([list(enc.ids)])
        with torch.inference_mode():
            logits = backend.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0]
        weights = torch.log1p(torch.relu(logits)).amax(dim=0)
        out.append({backend.vocab[i]: float(weights[i]) for i in torch.nonzero(weights).flatten().tolist()})
    return out


async def test_sparse_matches_textbook_splade_within_bf16_precision(service: InferenceService) -> None:
    texts = [
        "The quick brown fox jumps over the lazy dog.",
        "Vitamin D deficiency and bone density in adults.",
    ]
    output = await service.infer(".splade-tiny", texts)
    assert output.task_type == TaskType.SPARSE_EMBEDDING
    for got, want in zip(output.results, reference_splade(service, texts), strict=True):
        assert isinstance(got, SparseEmbedding) and not got.is_truncated
        strong = {t for t, w in want.items() if w > 0.3}
        assert strong <= set(got.embedding)
        for token in strong:
            assert math.isclose(got.embedding[token], want[token], rel_tol=0.05, abs_tol=0.08)
        assert all("." not in t and w > 0 for t, w in got.embedding.items())
        assert list(got.embedding.values()) == sorted(got.embedding.values(), reverse=True)


async def test_sparse_chunks_are_max_combined_and_truncation_is_flagged(service: InferenceService) -> None:
    service.registry.create(
        "sparse-none",
        "sparse_embedding",
        {
            "service": "elasticsearch",
            "service_settings": {"model_id": ".splade_tiny", "max_seq_length": 16},
            "chunking_settings": {"strategy": "none"},
        },
    )
    service.registry.create(
        "sparse-words",
        "sparse_embedding",
        {
            "service": "elasticsearch",
            "service_settings": {"model_id": ".splade_tiny", "max_seq_length": 16},
            "chunking_settings": {"strategy": "word", "max_chunk_size": 10, "overlap": 0},
        },
    )
    first, second = " ".join(["apple"] * 10), " ".join(["zebra"] * 10)
    long_text = f"{first} {second}"
    cut = (await service.infer("sparse-none", [long_text, "short"])).results
    assert [r.is_truncated for r in cut] == [True, False]
    chunked = (await service.infer("sparse-words", [long_text])).results[0]
    parts = (await service.infer("sparse-words", [first, second])).results
    assert not chunked.is_truncated
    expected = {t: max(p.embedding.get(t, 0.0) for p in parts) for p in parts for t in p.embedding}
    assert chunked.embedding.keys() == expected.keys()
    assert all(math.isclose(chunked.embedding[t], w, rel_tol=1e-6) for t, w in expected.items())


async def test_pruning_from_task_settings(service: InferenceService) -> None:
    pruned = await service.infer(".splade-tiny", ["protein folding"], task_settings={"pruning": {"top_k": 3}})
    full = await service.infer(".splade-tiny", ["protein folding"])
    assert list(pruned.results[0].embedding) == list(full.results[0].embedding)[:3]


async def test_dense_equals_sentence_transformers(service: InferenceService) -> None:
    from sentence_transformers import SentenceTransformer

    from sidecar.inference.models import resolve_model_path

    service.registry.create(
        "dense-unchunked",
        "text_embedding",
        {
            "service": "elasticsearch",
            "service_settings": {"model_id": ".minilm_l6"},
            "chunking_settings": {"strategy": "none"},
        },
    )
    texts = ["hello world", "A longer sentence about retrieval. " * 60]
    output = await service.infer("dense-unchunked", texts)
    reference = SentenceTransformer(resolve_model_path(".minilm_l6"), device="cpu").encode(texts)
    for got, want in zip(output.results, reference, strict=True):
        assert isinstance(got, DenseEmbedding) and len(got.embedding) == 384
        assert max(abs(a - float(b)) for a, b in zip(got.embedding, want, strict=True)) < 1e-5
    assert [r.is_truncated for r in output.results] == [False, True]
    assert await service.dimensions(".minilm-l6") == 384


async def test_dense_chunks_are_averaged_into_one_unit_vector(service: InferenceService) -> None:
    from sentence_transformers import SentenceTransformer

    from sidecar.inference.chunking import ChunkingSettings, chunk_text
    from sidecar.inference.models import resolve_model_path

    # The built-in endpoint chunks like Elasticsearch's default (sentences, 250 words).
    long_text = " ".join(f"Finding {i} concerns protein {i % 9} in cohort {i % 4}." for i in range(70))
    chunks = chunk_text(long_text, ChunkingSettings())
    assert len(chunks) > 1
    result = (await service.infer(".minilm-l6", [long_text])).results[0]
    model = SentenceTransformer(resolve_model_path(".minilm_l6"), device="cpu")
    mean = model.encode(chunks).mean(axis=0)
    want = mean / float((mean**2).sum() ** 0.5)
    assert result.is_truncated == any(len(model.tokenizer(c)["input_ids"]) > 256 for c in chunks)
    assert max(abs(a - float(b)) for a, b in zip(result.embedding, want, strict=True)) < 1e-5
    assert math.isclose(sum(x * x for x in result.embedding), 1.0, rel_tol=1e-6)


async def test_rerank_by_dense_cosine(service: InferenceService) -> None:
    docs = ["Paris is the capital of France.", "Bananas are yellow.", "France's capital city is Paris."]
    output = await service.infer(
        ".minilm-l6-rerank", docs, query="What is the capital of France?", top_n=2, return_documents=True
    )
    assert [r.index for r in output.results] == [0, 2] or [r.index for r in output.results] == [2, 0]
    assert output.results[0].relevance_score >= output.results[1].relevance_score
    assert output.results[0].text == docs[output.results[0].index]


@pytest.mark.parametrize(
    ("inputs", "kwargs", "message"),
    [
        ([], {}, r"Field \[input\] cannot be an empty array"),
        (["ok", 3], {}, r"array of strings"),
        (["x"] * 9, {}, r"more than the maximum of \[8\]"),
        (["x" * 5001], {}, r"characters, more than the maximum of \[5000\]"),
        (["x"], {"query": "q"}, r"Field \[query\] cannot be provided for task type \[sparse_embedding\]"),
        (["x"], {"input_type": "search"}, r"Field \[input_type\] cannot be provided"),
    ],
)
async def test_bad_input_is_a_typed_error(
    service: InferenceService, inputs: list, kwargs: dict, message: str
) -> None:
    with pytest.raises(RequestValidationError, match=message):
        await service.infer(".splade-tiny", inputs, **kwargs)


async def test_rerank_needs_a_query_and_ids_must_exist(service: InferenceService) -> None:
    with pytest.raises(
        RequestValidationError, match=r"Field \[query\] cannot be null for task type \[rerank\]"
    ):
        await service.infer(".minilm-l6-rerank", ["a"])
    with pytest.raises(NotFoundError):
        await service.infer("nope", ["a"])
    with pytest.raises(StatusError, match="Incompatible task_type"):
        await service.infer(".splade-tiny", ["a"], task_type=TaskType.TEXT_EMBEDDING)
    with pytest.raises(StatusError, match=r"unknown to the \[elasticsearch\] service"):
        await service.infer(".splade-tiny", ["a"], task_settings={"colour": 1})


async def test_model_that_fails_to_load_is_a_typed_error(
    service: InferenceService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sidecar.errors import ModelNotReadyError

    monkeypatch.setattr(service.settings, "model_dirs", [Path("/nonexistent")])  # local folders allowed

    service.registry.create(
        "broken",
        "sparse_embedding",
        {
            "service": "elasticsearch",
            "service_settings": {"model_id": "/nonexistent/model-dir"},
        },
    )
    with pytest.raises(ModelNotReadyError, match="cannot load sparse model"):
        await service.infer("broken", ["text"])
    assert (await service.infer(".splade-tiny", ["still fine"])).results
