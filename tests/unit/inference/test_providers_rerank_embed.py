"""Voyage AI, Jina AI and Contextual AI against a local server that answers in their documented formats."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.errors import RemoteServiceError, SettingsValidationError
from sidecar.inference.service import InferenceService
from sidecar.inference.types import InputType

from .remote_fakes import Recorded, fake_provider

VOYAGE_429 = {"detail": "You have exceeded your rate limit. Please slow down."}


def answer(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
    if rec.path.endswith("/embeddings"):
        integer = (
            rec.body.get("output_dtype") in ("int8", "binary") or rec.body.get("embedding_type") == "binary"
        )
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": [len(t), -3] if integer else [float(len(t)), 0.5],
            }
            for i, t in enumerate(x["text"] if isinstance(x, dict) else x for x in rec.body["input"])
        ]
        return (
            200,
            {"object": "list", "data": data[::-1], "model": rec.body["model"], "usage": {"total_tokens": 4}},
            {},
        )
    docs = rec.body["documents"]
    ranked = sorted(range(len(docs)), key=lambda i: -len(docs[i]))
    top = rec.body.get("top_k") or rec.body.get("top_n") or len(docs)
    results = [
        {
            "index": i,
            "relevance_score": float(len(docs[i])),
            **({"document": docs[i]} if rec.body.get("return_documents") else {}),
        }
        for i in ranked[:top]
    ]
    key = "data" if "top_k" in rec.body or rec.path.startswith("/v1/voyage") else "results"
    return 200, {key: results, "model": rec.body["model"], "usage": {"total_tokens": 2}}, {}


def create(
    remote: InferenceService, inference_id: str, task: str, service: str, url: str, **extra: Any
) -> None:
    task_settings = extra.pop("task_settings", {})
    remote.registry.create(
        inference_id,
        task,
        {
            "service": service,
            "service_settings": {"api_key": "key-1", "url": url, **extra},
            "task_settings": task_settings,
        },
    )


async def test_voyage_embeddings_int8_with_input_type_and_429_retry(remote: InferenceService) -> None:
    with fake_provider(answer) as server:
        server.script.append((429, VOYAGE_429, {}))
        create(
            remote,
            "vo",
            "text_embedding",
            "voyageai",
            f"{server.url}/v1/voyage/embeddings",
            model_id="voyage-3-large",
            embedding_type="int8",
            dimensions=512,
        )
        out = await remote.infer("vo", ["ab", "c"], input_type=InputType.SEARCH)
        assert out.embedding_type == "byte"
        assert [r.embedding for r in out.results] == [[2, -3], [1, -3]]
        sent = server.requests[-1]
        assert sent.body == {
            "input": ["ab", "c"],
            "model": "voyage-3-large",
            "input_type": "query",
            "output_dimension": 512,
            "output_dtype": "int8",
        }
        assert sent.headers["authorization"] == "Bearer key-1"
        assert len(server.requests) == 2


async def test_voyage_rerank_top_k_and_documents(remote: InferenceService) -> None:
    with fake_provider(answer) as server:
        create(
            remote,
            "vo-r",
            "rerank",
            "voyageai",
            f"{server.url}/v1/voyage/rerank",
            model_id="rerank-2",
            task_settings={"top_k": 2, "truncation": True},
        )
        docs = ["a", "ccc", "bb"]
        out = await remote.infer("vo-r", docs, query="q", return_documents=True)
        assert [(r.index, r.text) for r in out.results] == [(1, "ccc"), (2, "bb")]
        assert server.requests[0].body == {
            "model": "rerank-2",
            "query": "q",
            "documents": docs,
            "top_k": 2,
            "return_documents": True,
            "truncation": True,
        }


async def test_jina_embeddings_bits_with_task_and_rerank(remote: InferenceService) -> None:
    with fake_provider(answer) as server:
        create(
            remote,
            "ji",
            "text_embedding",
            "jinaai",
            f"{server.url}/v1/embeddings",
            model_id="jina-embeddings-v3",
            embedding_type="bit",
            task_settings={"input_type": "ingest", "late_chunking": True},
        )
        out = await remote.infer("ji", ["abc"])
        assert out.embedding_type == "bit" and out.results[0].embedding == [3, -3]
        assert server.requests[0].body == {
            "model": "jina-embeddings-v3",
            "input": ["abc"],
            "task": "retrieval.passage",
            "embedding_type": "binary",
            "late_chunking": True,
        }
        create(
            remote,
            "ji-r",
            "rerank",
            "jinaai",
            f"{server.url}/v1/rerank",
            model_id="jina-reranker-v2-base-multilingual",
        )
        out = await remote.infer("ji-r", ["x", "yyy"], query="q", top_n=1)
        assert [(r.index, r.text) for r in out.results] == [(1, None)]
        assert server.requests[1].body == {
            "model": "jina-reranker-v2-base-multilingual",
            "query": "q",
            "documents": ["x", "yyy"],
            "top_n": 1,
            "return_documents": False,
        }


async def test_detail_error_bodies_become_the_reason(remote: InferenceService) -> None:
    with fake_provider(lambda rec: (401, {"detail": "Provided API key is invalid."}, {})) as server:
        create(remote, "vo", "text_embedding", "voyageai", server.url, model_id="voyage-3")
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("vo", ["x"])
        assert err.value.reason.endswith("Error message: [Provided API key is invalid.]")


def test_embedding_type_is_checked(remote: InferenceService) -> None:
    with pytest.raises(SettingsValidationError) as err:
        create(remote, "x", "text_embedding", "jinaai", "http://x", model_id="m", embedding_type="int8")
    assert err.value.reason == (
        "Validation Failed: 1: [service_settings] Invalid value [int8] received. [embedding_type] must be one of "
        "[float, bit, binary];"
    )


async def test_contextual_ai_rerank_with_instruction(remote: InferenceService) -> None:
    def contextual(rec: Recorded) -> tuple[int, Any, dict[str, str]]:
        docs = rec.body["documents"]
        results = [{"index": i, "relevance_score": 1.0 - i / 10} for i in range(len(docs))][
            : rec.body.get("top_n")
        ]
        return 200, {"results": results}, {}

    with fake_provider(contextual) as server:
        remote.registry.create(
            "ctx",
            "rerank",
            {
                "service": "contextualai",
                "service_settings": {
                    "api_key": "ctx-key",
                    "model_id": "ctxl-rerank-v2-instruct-multilingual",
                    "url": f"{server.url}/v1/rerank",
                },
                "task_settings": {"instruction": "Prefer recent documents", "top_k": 2},
            },
        )
        out = await remote.infer("ctx", ["a", "b", "c"], query="q", return_documents=True)
        assert [(r.index, r.text) for r in out.results] == [(0, "a"), (1, "b")]
        sent = server.requests[0]
        assert sent.headers["authorization"] == "Bearer ctx-key"
        assert sent.body == {
            "query": "q",
            "documents": ["a", "b", "c"],
            "model": "ctxl-rerank-v2-instruct-multilingual",
            "top_n": 2,
            "instruction": "Prefer recent documents",
        }


async def test_jina_multimodal_model_serves_the_embedding_task_with_text_objects(
    remote: InferenceService,
) -> None:
    with fake_provider(answer) as server:
        create(
            remote,
            "ji-mm",
            "embedding",
            "jinaai",
            f"{server.url}/v1/embeddings",
            model_id="jina-clip-v2",
            multimodal_model=True,
        )
        out = await remote.infer("ji-mm", ["abcd", "ef"], input_type=InputType.SEARCH)
        assert [r.embedding for r in out.results] == [[4.0, 0.5], [2.0, 0.5]]
        assert server.requests[0].body == {
            "model": "jina-clip-v2",
            "input": [{"text": "abcd"}, {"text": "ef"}],
            "task": "retrieval.query",
        }
    with pytest.raises(SettingsValidationError) as err:
        create(remote, "ji-bad", "embedding", "jinaai", "http://x", model_id="m", multimodal_model="yes")
    assert err.value.reason == (
        "Validation Failed: 1: [service_settings] Invalid value [yes]. [multimodal_model] must be a boolean;"
    )
