"""A tiny deterministic inference service implementing `InferenceServiceProtocol` for unit tests.

Sparse: one feature per lowercase word, weight 1 + len(word) / 10, made legal for `rank_features`
("a.b" becomes "a__b") as the protocol promises of every service. Dense: 4 numbers derived from the
text. Failures are injectable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sidecar.errors import InferenceFailedError, NotFoundError, OverloadedError
from sidecar.inference.types import DenseEmbedding, InferenceOutput, InputType, SparseEmbedding, TaskType
from sidecar.pipelines.schema import ErrorsConfig, PipelineConfig, SinkConfig
from sidecar.rank_features import clean_features
from sidecar.sinks.base import BulkSink, RequestFailure

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
            return InferenceOutput(kind, [SparseEmbedding(clean_features(sparse_of(t))) for t in inputs])
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


class Unreachable(Exception):
    def __init__(self, status: int | None = None) -> None:
        super().__init__(f"unreachable {status}")
        self.status = status


Answer = int | dict[str, Any]
Plan = list[Answer] | tuple[list[Answer], Unreachable]


class ScriptedSink(BulkSink):
    engine_name = "scripted"

    def __init__(self, plans: list[Plan], **errors: Any) -> None:
        self.pushbacks: list[bool] = []
        config = SinkConfig.model_validate({"engine": "opensearch", "urls": "http://x:1", "index": "i"})
        super().__init__(
            config,
            ErrorsConfig.model_validate({"backoff": {"initial_ms": 1, "max_ms": 2}, **errors}),
            on_pushback=self.pushbacks.append,
        )
        self.plans = plans
        self.sent: list[list[str]] = []

    async def _stream(
        self, actions: list[dict[str, Any]], max_bytes: int
    ) -> AsyncIterator[tuple[bool, dict[str, Any]]]:
        self.sent.append([a["_id"] for a in actions])
        plan = self.plans.pop(0)
        answers, failure = plan if isinstance(plan, tuple) else (plan, None)
        for action, answer in zip(actions, answers, strict=False):
            body = answer if isinstance(answer, dict) else {"status": answer}
            if not isinstance(answer, dict) and answer >= 300:
                body = {"status": answer, "error": {"type": f"type_{answer}", "reason": f"reason {answer}"}}
            yield 200 <= body["status"] < 300, {action["_op_type"]: {"_id": action["_id"], **body}}
        if failure is not None:
            raise failure

    def _request_failure(self, exc: Exception) -> RequestFailure | None:
        return RequestFailure(exc.status, str(exc)) if isinstance(exc, Unreachable) else None

    async def _mget(self, index: str, docs: list[dict[str, Any]], paths: list[str]) -> list[dict[str, Any]]:
        raise Unreachable()

    async def _field_mapping(self, index: str, paths: list[str]) -> dict[str, Any] | None:
        raise Unreachable()

    async def index_exists(self, index: str) -> bool:
        return True

    async def create_index(self, index: str, body: dict[str, Any]) -> None: ...

    async def put_mapping(self, index: str, mappings: dict[str, Any]) -> None: ...

    async def put_index_template(self, name: str, body: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


class RecordingSink(ScriptedSink):
    """Answers every item 201 unless `answers[doc_id]` says otherwise; records every action sent."""

    def __init__(self, answers: dict[str, int] | None = None) -> None:
        super().__init__([])
        self.answers = answers or {}
        self.actions: list[dict[str, Any]] = []

    async def _stream(
        self, actions: list[dict[str, Any]], max_bytes: int
    ) -> AsyncIterator[tuple[bool, dict[str, Any]]]:
        self.actions += actions
        for action in actions:
            status = self.answers.get(action["_id"], 201)
            body: dict[str, Any] = {"_id": action["_id"], "status": status}
            if status >= 300:
                body["error"] = {"type": "mapper_parsing_exception", "reason": f"refused {action['_id']}"}
            yield status < 300, {action["_op_type"]: body}
