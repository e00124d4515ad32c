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
_EMBEDDING_KEYS = {"float": "embeddings", "byte": "embeddings_bytes", "bit": "embeddings_bits"}


def inference_body(output: InferenceOutput) -> dict[str, Any]:
    task = TaskType(output.task_type)
    if task is TaskType.SPARSE_EMBEDDING:
        return {"sparse_embedding": [_sparse(r) for r in output.results]}
    if task in (TaskType.TEXT_EMBEDDING, TaskType.EMBEDDING):
        keys = _DENSE_KEYS if task is TaskType.TEXT_EMBEDDING else _EMBEDDING_KEYS
        key = keys.get(output.embedding_type, keys["float"])
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


def chat_completion_body(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """One `chat.completion` object from unified chat chunks (the non-streaming answer): contents,
    reasoning and tool-call arguments concatenated per choice, the last finish reason and usage."""
    body: dict[str, Any] = {"id": None, "choices": [], "model": None, "object": "chat.completion"}
    choices: dict[int, dict[str, Any]] = {}
    calls: dict[int, dict[int, dict[str, Any]]] = {}
    for chunk in chunks:
        for key in ("id", "model", "created"):
            if chunk.get(key) is not None and body.get(key) is None:
                body[key] = chunk[key]
        if chunk.get("usage"):
            body["usage"] = chunk["usage"]
        for choice in chunk.get("choices") or []:
            index = int(choice.get("index", 0))
            entry = choices.setdefault(
                index,
                {"finish_reason": None, "index": index, "message": {"content": None, "role": "assistant"}},
            )
            message, delta = entry["message"], choice.get("delta") or {}
            if delta.get("role"):
                message["role"] = delta["role"]
            for key in ("content", "reasoning", "refusal"):
                if isinstance(delta.get(key), str):
                    message[key] = (message.get(key) or "") + delta[key]
            for call in delta.get("tool_calls") or []:
                merged = calls.setdefault(index, {}).setdefault(
                    int(call.get("index", 0)), {"function": {"arguments": "", "name": None}}
                )
                for key in ("id", "type"):
                    if call.get(key):
                        merged[key] = call[key]
                function = call.get("function") or {}
                if function.get("name"):
                    merged["function"]["name"] = function["name"]
                merged["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                entry["finish_reason"] = choice["finish_reason"]
    for index, by_position in calls.items():
        choices[index]["message"]["tool_calls"] = [by_position[i] for i in sorted(by_position)]
    body["choices"] = [choices[i] for i in sorted(choices)]
    return body


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
