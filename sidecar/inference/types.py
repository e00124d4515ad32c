"""The contract between the inference layer and everything that calls it (API, worker, hook, backfill).

Callers depend on these types and on `InferenceServiceProtocol` only; the concrete service lives in
`sidecar.inference.service`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class TaskType(StrEnum):
    SPARSE_EMBEDDING = "sparse_embedding"
    TEXT_EMBEDDING = "text_embedding"
    EMBEDDING = "embedding"  # 9.4+: dense vectors under `embeddings` (text content only here)
    RERANK = "rerank"
    COMPLETION = "completion"
    CHAT_COMPLETION = "chat_completion"


class InputType(StrEnum):
    INGEST = "ingest"
    SEARCH = "search"
    CLASSIFICATION = "classification"
    CLUSTERING = "clustering"


@dataclass(frozen=True)
class SparseEmbedding:
    """token -> weight, already legal for `rank_features` (see `sidecar.rank_features`)."""

    embedding: dict[str, float]
    is_truncated: bool = False


@dataclass(frozen=True)
class DenseEmbedding:
    embedding: list[float] | list[int]
    is_truncated: bool = False


@dataclass(frozen=True)
class RankedDocument:
    index: int
    relevance_score: float
    text: str | None = None


@dataclass(frozen=True)
class CompletionResult:
    result: str


@dataclass
class InferenceOutput:
    """What one perform-inference call returns; `results` are in input order (rerank: by score)."""

    task_type: TaskType
    results: list[Any] = field(default_factory=list)
    # For text_embedding: "float" | "byte" | "bit" (selects the response key).
    embedding_type: str = "float"


class InferenceServiceProtocol(Protocol):
    """What the enricher, search and eval call. Sparse answers already follow the `rank_features`
    rules (legal names and weights, weight-descending order): callers only prune."""

    async def infer(
        self,
        inference_id: str,
        inputs: list[str],
        *,
        task_type: TaskType | None = None,
        query: str | None = None,
        input_type: InputType | None = None,
        task_settings: dict[str, Any] | None = None,
        top_n: int | None = None,
        return_documents: bool | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - Elasticsearch's parameter name
    ) -> InferenceOutput: ...

    def stream_completion(
        self,
        inference_id: str,
        inputs: list[str],
        *,
        task_type: TaskType | None = None,
        task_settings: dict[str, Any] | None = None,
    ) -> AsyncIterator[str]: ...


@runtime_checkable
class ChatService(Protocol):
    """A service that can also stream `chat_completion` (the in-process one; not the worker's)."""

    def stream_chat(
        self, inference_id: str, request: dict[str, Any], *, task_type: TaskType | None = None
    ) -> AsyncIterator[dict[str, Any]]: ...
