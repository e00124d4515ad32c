"""A small in-memory inference service implementing `InferenceServiceProtocol`, used only where a
failure must be provoked (overload, a crash, an error in the middle of a stream) or a task type the
packaged models do not offer (completion streaming) must be served.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sidecar.errors import (
    AlreadyExistsError,
    NotFoundError,
    RequestValidationError,
    SidecarError,
    StatusError,
)
from sidecar.inference.types import (
    CompletionResult,
    DenseEmbedding,
    InferenceOutput,
    InputType,
    RankedDocument,
    SparseEmbedding,
    TaskType,
)

FAKE_SPARSE_ID = "fake-sparse-embedding"
FAKE_COMPLETION_ID = "fake-completion"

_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?$")


@dataclass
class FakeEndpoint:
    inference_id: str
    task_type: TaskType
    service: str
    service_settings: dict[str, Any]
    task_settings: dict[str, Any] = field(default_factory=dict)

    def public_dict(self) -> dict[str, Any]:
        return {
            "inference_id": self.inference_id,
            "task_type": str(self.task_type),
            "service": self.service,
            "service_settings": {k: v for k, v in self.service_settings.items() if k != "api_key"},
            "task_settings": self.task_settings,
        }


class FakeRegistry:
    def __init__(self) -> None:
        self.endpoints: dict[str, FakeEndpoint] = {}

    def create(self, inference_id: str, task_type: TaskType | None, body: dict[str, Any]) -> FakeEndpoint:
        if not _ID_RE.match(inference_id) or inference_id == "_all":
            raise RequestValidationError(f"Validation Failed: 1: Invalid inference_id [{inference_id}];")
        if inference_id in self.endpoints:
            raise AlreadyExistsError(f"Inference endpoint [{inference_id}] already exists")
        try:
            typed = task_type or TaskType(body.get("task_type") or "sparse_embedding")
        except ValueError:
            raise StatusError(f"Unknown task_type [{body.get('task_type')}]") from None
        service, settings = body.get("service"), body.get("service_settings")
        if not isinstance(service, str) or not isinstance(settings, dict):
            raise RequestValidationError(
                "Validation Failed: 1: [service] and [service_settings] are required;"
            )
        endpoint = FakeEndpoint(
            inference_id, typed, service, dict(settings), dict(body.get("task_settings") or {})
        )
        self.endpoints[inference_id] = endpoint
        return endpoint

    def prepare_create(
        self, inference_id: str, task_type: TaskType | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        """The real registry validates here and `insert`s after the create-time probe."""
        return {"inference_id": inference_id, "task_type": task_type, "body": body}

    def insert(self, prepared: dict[str, Any]) -> FakeEndpoint:
        return self.create(prepared["inference_id"], prepared["task_type"], prepared["body"])

    def get(
        self, inference_id: str, task_type: TaskType | None = None, *, management: bool = False
    ) -> FakeEndpoint:
        endpoint = self.endpoints.get(inference_id)
        if endpoint is None:
            raise NotFoundError(f"Inference endpoint not found [{inference_id}]")
        if task_type is not None and task_type != endpoint.task_type:
            raise StatusError(
                f"Incompatible task_type, the requested type [{task_type}] does not match "
                f"the model type [{endpoint.task_type}]"
            )
        return endpoint

    def list(self, task_type: TaskType | None = None) -> list[FakeEndpoint]:
        return [e for e in self.endpoints.values() if task_type is None or e.task_type == task_type]

    def delete(
        self, inference_id: str, task_type: TaskType | None = None, dry_run: bool = False, force: bool = False
    ) -> dict[str, Any]:
        self.get(inference_id, task_type)
        if not dry_run:
            del self.endpoints[inference_id]
        return {"acknowledged": True, "pipelines": [], "indexes": []}

    def update(self, inference_id: str, task_type: TaskType | None, body: dict[str, Any]) -> FakeEndpoint:
        endpoint = self.get(inference_id, task_type)
        if not isinstance(body.get("task_settings", {}), dict):
            raise RequestValidationError("Validation Failed: 1: [task_settings] must be an object;")
        endpoint.task_settings.update(body.get("task_settings", {}))
        return endpoint


class FakeInferenceService:
    """Deterministic results; `fail_with` makes every call raise that error instead."""

    def __init__(self) -> None:
        self.registry = FakeRegistry()
        self.fail_with: BaseException | None = None
        self.stream_fail_after: int | None = None
        self.delay = 0.0
        self.calls: list[dict[str, Any]] = []
        builtins: list[dict[str, Any]] = [
            {"service": "fake", "service_settings": {}, "task_type": "sparse_embedding"},
            {"service": "fake", "service_settings": {"dims": 4}, "task_type": "text_embedding"},
            {"service": "fake", "service_settings": {}, "task_type": "rerank"},
            {"service": "fake", "service_settings": {"api_key": "s3cret"}, "task_type": "completion"},
        ]
        for body in builtins:
            self.registry.create(f"fake-{body['task_type'].replace('_', '-')}", None, body)

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
        self.calls.append({"inference_id": inference_id, "inputs": inputs, "input_type": input_type})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        endpoint = self.registry.get(inference_id, task_type)
        task = endpoint.task_type
        if task is TaskType.SPARSE_EMBEDDING:
            results: list[Any] = [
                SparseEmbedding({w: float(len(w)) for w in t.lower().split()}) for t in inputs
            ]
        elif task is TaskType.TEXT_EMBEDDING:
            results = [
                DenseEmbedding([b / 255 for b in hashlib.sha256(t.encode()).digest()[:4]]) for t in inputs
            ]
        elif task is TaskType.RERANK:
            scored = sorted(
                ((len(set(t.split()) & set((query or "").split())), i) for i, t in enumerate(inputs))
            )
            ranked = [
                RankedDocument(i, float(s), inputs[i] if return_documents else None)
                for s, i in reversed(scored)
            ]
            results = ranked[: top_n or len(ranked)]
        else:
            results = [CompletionResult(t.upper()) for t in inputs]
        return InferenceOutput(task_type=task, results=results)

    async def stream_completion(
        self,
        inference_id: str,
        inputs: list[str],
        *,
        task_type: TaskType | None = None,
        task_settings: dict[str, Any] | None = None,
    ) -> AsyncIterator[str]:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        endpoint = self.registry.get(inference_id, task_type)
        if endpoint.task_type is not TaskType.COMPLETION:
            raise StatusError(f"Streaming is not supported for [{endpoint.task_type}]")
        for index, word in enumerate(" ".join(inputs).split()):
            if self.stream_fail_after is not None and index >= self.stream_fail_after:
                raise SidecarError("remote service went away", status=502, es_type="status_exception")
            yield word + " "
