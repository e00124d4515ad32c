"""The inference side of the worker: in-process `InferenceService` or a remote sidecar's `_inference` API.

Both are used through `InferenceServiceProtocol` for encoding, plus a small catalog interface the
worker needs at start-up: an endpoint's task type, a dense endpoint's dimensions, and recording
which pipelines use which endpoints (so the registry refuses to delete them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx

from sidecar.errors import NotFoundError, OverloadedError, RemoteServiceError, SidecarError, TimeoutError_
from sidecar.inference.types import (
    DenseEmbedding,
    InferenceOutput,
    InputType,
    SparseEmbedding,
    TaskType,
)
from sidecar.pipelines.schema import InferenceConfig


class EndpointCatalog(Protocol):
    async def task_type(self, inference_id: str) -> TaskType | None: ...

    async def dimensions(self, inference_id: str) -> int: ...

    def set_pipeline_usage(self, pipeline: str, inference_ids: list[str]) -> None: ...


class LocalCatalog:
    """Catalog over the in-process service (`service.registry`, `service.dimensions`)."""

    def __init__(self, service: Any) -> None:
        self.service = service

    async def task_type(self, inference_id: str) -> TaskType | None:
        try:
            return TaskType(self.service.registry.get(inference_id).task_type)
        except NotFoundError:
            return None

    async def dimensions(self, inference_id: str) -> int:
        return int(await self.service.dimensions(inference_id))

    def set_pipeline_usage(self, pipeline: str, inference_ids: list[str]) -> None:
        self.service.registry.set_pipeline_usage(pipeline, inference_ids)


class RemoteInference:
    """`InferenceServiceProtocol` and `EndpointCatalog` over another sidecar's HTTP API."""

    def __init__(self, config: InferenceConfig, client: httpx.AsyncClient | None = None) -> None:
        if config.url is None:
            raise ValueError("remote inference needs a URL")
        headers = {"Authorization": f"ApiKey {config.api_key.get_secret_value()}"} if config.api_key else {}
        self.client = client or httpx.AsyncClient(
            base_url=config.url.rstrip("/"),
            headers=headers,
            timeout=config.timeout_s,
            verify=config.ca_file or True,
        )
        self._task_types: dict[str, TaskType] = {}

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = await self.client.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise TimeoutError_(f"remote inference timed out: {exc}") from exc
        except httpx.HTTPError as exc:
            raise RemoteServiceError(f"remote inference unreachable: {exc}", retriable=True) from exc
        if response.status_code == 200:
            return dict(response.json())
        reason = _error_reason(response)
        if response.status_code == 404:
            raise NotFoundError(reason)
        if response.status_code == 429:
            raise OverloadedError(reason)
        retriable = response.status_code >= 500 or response.status_code == 408
        raise RemoteServiceError(reason, status=response.status_code, retriable=retriable)

    async def task_type(self, inference_id: str) -> TaskType | None:
        if inference_id not in self._task_types:
            try:
                body = await self._call("GET", f"/_inference/{inference_id}")
            except NotFoundError:
                return None
            self._task_types[inference_id] = TaskType(body["endpoints"][0]["task_type"])
        return self._task_types[inference_id]

    async def dimensions(self, inference_id: str) -> int:
        body = await self._call("GET", f"/_inference/{inference_id}")
        dims = body["endpoints"][0].get("service_settings", {}).get("dimensions")
        if isinstance(dims, int):
            return dims
        probe = await self.infer(inference_id, ["dimensions probe"], task_type=TaskType.TEXT_EMBEDDING)
        return len(probe.results[0].embedding)

    def set_pipeline_usage(self, pipeline: str, inference_ids: list[str]) -> None:
        """The remote registry is not ours to lock; nothing to record."""

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
        timeout: float | None = None,  # noqa: ASYNC109 - the protocol's signature
    ) -> InferenceOutput:
        kind = task_type or await self.task_type(inference_id)
        if kind not in (TaskType.SPARSE_EMBEDDING, TaskType.TEXT_EMBEDDING):
            raise SidecarError(f"the worker encodes with sparse or text embeddings, not [{kind}]")
        body: dict[str, Any] = {"input": inputs}
        if input_type is not None and kind is TaskType.TEXT_EMBEDDING:
            body["input_type"] = input_type.value
        if task_settings:
            body["task_settings"] = task_settings
        answer = await self._call("POST", f"/_inference/{kind.value}/{inference_id}", body)
        if kind is TaskType.SPARSE_EMBEDDING:
            results: list[Any] = [
                SparseEmbedding(dict(r["embedding"]), bool(r.get("is_truncated", False)))
                for r in answer["sparse_embedding"]
            ]
        else:
            results = [DenseEmbedding(list(r["embedding"])) for r in answer["text_embedding"]]
        return InferenceOutput(kind, results)

    def stream_completion(
        self,
        inference_id: str,
        inputs: list[str],
        *,
        task_type: TaskType | None = None,
        task_settings: dict[str, Any] | None = None,
    ) -> AsyncIterator[str]:
        raise SidecarError("the worker does not stream completions")

    async def close(self) -> None:
        await self.client.aclose()


def _error_reason(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"
    return f"HTTP {response.status_code}: {error}"
