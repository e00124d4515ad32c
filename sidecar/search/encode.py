"""Encode a search query with an inference endpoint (in-process service or a remote sidecar).

Sparse endpoints return token weights, dense ones a vector. `input_type=search` goes with dense
requests only (Elasticsearch accepts it for text_embedding alone; SPLADE encodes queries and
documents alike).
"""

from __future__ import annotations

from typing import Protocol

from sidecar.errors import InferenceFailedError
from sidecar.inference.types import (
    DenseEmbedding,
    InferenceServiceProtocol,
    InputType,
    SparseEmbedding,
    TaskType,
)


class QueryEncoder(Protocol):
    async def sparse(self, endpoint: str, text: str) -> dict[str, float]: ...

    async def dense(self, endpoint: str, text: str) -> list[float]: ...


class ServiceQueryEncoder:
    """Over any `InferenceServiceProtocol`: the in-process service or the worker's `RemoteInference`."""

    def __init__(self, service: InferenceServiceProtocol) -> None:
        self.service = service

    async def sparse(self, endpoint: str, text: str) -> dict[str, float]:
        out = await self.service.infer(endpoint, [text], task_type=TaskType.SPARSE_EMBEDDING)
        result = out.results[0] if out.results else None
        if not isinstance(result, SparseEmbedding):
            raise InferenceFailedError(f"endpoint [{endpoint}] did not return a sparse embedding")
        return dict(result.embedding)

    async def dense(self, endpoint: str, text: str) -> list[float]:
        out = await self.service.infer(
            endpoint, [text], task_type=TaskType.TEXT_EMBEDDING, input_type=InputType.SEARCH
        )
        result = out.results[0] if out.results else None
        if not isinstance(result, DenseEmbedding):
            raise InferenceFailedError(f"endpoint [{endpoint}] did not return a dense embedding")
        return [float(x) for x in result.embedding]
