"""Inference results rendered in the three wire formats the API speaks.

- `inference_body`: Elasticsearch's perform-inference answer (8.12+ shapes).
- `hugging_face_body`: what Elasticsearch's `hugging_face` service parses
  (`[{"token": weight}]` for sparse, `[[floats]]` for dense).
- `custom_body`: the shape the documented `custom` service definition's JSON paths read
  (sparse entries as `[{"token", "weight"}]` lists, since JSON paths cannot walk map keys).
"""

from __future__ import annotations

from typing import Any

from sidecar.errors import StatusError
from sidecar.inference.types import (
    CompletionResult,
    DenseEmbedding,
    InferenceOutput,
    RankedDocument,
    SparseEmbedding,
    TaskType,
)

_DENSE_KEYS = {"float": "text_embedding", "byte": "text_embedding_bytes", "bit": "text_embedding_bits"}


def inference_body(output: InferenceOutput) -> dict[str, Any]:
    task = TaskType(output.task_type)
    if task is TaskType.SPARSE_EMBEDDING:
        return {"sparse_embedding": [_sparse(r) for r in output.results]}
    if task is TaskType.TEXT_EMBEDDING:
        key = _DENSE_KEYS.get(output.embedding_type, "text_embedding")
        return {key: [{"embedding": list(_dense(r).embedding)} for r in output.results]}
    if task is TaskType.RERANK:
        return {"rerank": [_ranked(r) for r in output.results]}
    return {"completion": [{"result": _completion(r).result} for r in output.results]}


def hugging_face_body(output: InferenceOutput) -> list[Any]:
    task = TaskType(output.task_type)
    if task is TaskType.SPARSE_EMBEDDING:
        return [dict(_sparse_embedding(r).embedding) for r in output.results]
    if task is TaskType.TEXT_EMBEDDING:
        return [list(_dense(r).embedding) for r in output.results]
    raise StatusError(f"The hugging_face format serves sparse_embedding and text_embedding, not [{task}]")


def custom_body(output: InferenceOutput) -> dict[str, Any]:
    task = TaskType(output.task_type)
    if task is TaskType.SPARSE_EMBEDDING:
        entries = []
        for result in output.results:
            sparse = _sparse_embedding(result)
            tokens = [{"token": token, "weight": weight} for token, weight in sparse.embedding.items()]
            entries.append({"is_truncated": sparse.is_truncated, "embedding": tokens})
        return {"sparse_embedding": entries}
    return inference_body(output)


def completion_chunk(delta: str) -> dict[str, Any]:
    """One streamed completion message, as Elasticsearch sends it."""
    return {"completion": [{"delta": delta}]}


def _sparse(result: Any) -> dict[str, Any]:
    sparse = _sparse_embedding(result)
    return {"is_truncated": sparse.is_truncated, "embedding": dict(sparse.embedding)}


def _sparse_embedding(result: Any) -> SparseEmbedding:
    if isinstance(result, SparseEmbedding):
        return result
    raise TypeError(f"expected SparseEmbedding, got {type(result).__name__}")


def _dense(result: Any) -> DenseEmbedding:
    if isinstance(result, DenseEmbedding):
        return result
    raise TypeError(f"expected DenseEmbedding, got {type(result).__name__}")


def _ranked(result: Any) -> dict[str, Any]:
    if not isinstance(result, RankedDocument):
        raise TypeError(f"expected RankedDocument, got {type(result).__name__}")
    entry: dict[str, Any] = {"index": result.index, "relevance_score": result.relevance_score}
    if result.text is not None:
        entry["text"] = result.text
    return entry


def _completion(result: Any) -> CompletionResult:
    if isinstance(result, CompletionResult):
        return result
    raise TypeError(f"expected CompletionResult, got {type(result).__name__}")
