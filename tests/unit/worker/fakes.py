"""A tiny deterministic inference service implementing `InferenceServiceProtocol` for unit tests.

Sparse: one feature per lowercase word, weight 1 + len(word) / 10 (dots kept, so the writer's
legalisation is exercised). Dense: 4 numbers derived from the text. Failures are injectable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sidecar.errors import InferenceFailedError, NotFoundError, OverloadedError
from sidecar.inference.types import DenseEmbedding, InferenceOutput, InputType, SparseEmbedding, TaskType
from sidecar.pipelines.schema import PipelineConfig

TASK_TYPES = {".splade-tiny": TaskType.SPARSE_EMBEDDING, ".minilm-l6": TaskType.TEXT_EMBEDDING}


def sparse_of(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for word in text.lower().split():
        out[word] = 1.0 + len(word) / 10
    return out


def dense_of(text: str) -> list[float]:
    return [float(len(text)), float(text.count(" ")), float(sum(map(ord, text)) % 97), 1.0]


class FakeService:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], InputType | None]] = []
        self.poison_words: set[str] = set()  # a batch containing one fails permanently
        self.overloaded_calls = 0  # the next N calls raise OverloadedError
        self.usage: dict[str, list[str]] = {}

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
        timeout: float | None = None,
    ) -> InferenceOutput:
        kind = TASK_TYPES.get(inference_id)
        if kind is None:
            raise NotFoundError(f"Inference endpoint not found [{inference_id}]")
        self.calls.append((inference_id, list(inputs), input_type))
        if self.overloaded_calls > 0:
            self.overloaded_calls -= 1
            raise OverloadedError("queue full")
        if any(word in text for text in inputs for word in self.poison_words):
            raise InferenceFailedError("model blew up on this input")
        if kind is TaskType.SPARSE_EMBEDDING:
            return InferenceOutput(kind, [SparseEmbedding(sparse_of(t)) for t in inputs])
        return InferenceOutput(kind, [DenseEmbedding(dense_of(t)) for t in inputs])

    def stream_completion(self, inference_id: str, inputs: list[str], **_: Any) -> AsyncIterator[str]:
        raise NotImplementedError

    # catalog
    async def task_type(self, inference_id: str) -> TaskType | None:
        return TASK_TYPES.get(inference_id)

    async def dimensions(self, inference_id: str) -> int:
        return 4

    def set_pipeline_usage(self, pipeline: str, inference_ids: list[str]) -> None:
        self.usage[pipeline] = list(inference_ids)

    @property
    def texts(self) -> list[str]:
        return [t for _, inputs, _ in self.calls for t in inputs]


def pipeline(**overrides: Any) -> PipelineConfig:
    raw: dict[str, Any] = {
        "name": "unit",
        "source": {"kafka": {"bootstrap_servers": "127.0.0.1:1", "topics": ["docs"], "group_id": "g"}},
        "fields": [{"input": "title", "endpoint": ".splade-tiny", "target": "ml.tokens"}],
        "sink": {"engine": "opensearch", "urls": "http://127.0.0.1:1", "index": "docs"},
    }
    for key, value in overrides.items():
        node = raw
        parts = key.split("__")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return PipelineConfig.model_validate(raw)
