"""What the worker, backfill and setup need to know about endpoints before encoding: an endpoint's
task type, a dense endpoint's dimensions, and which pipelines use which endpoints (so the registry
refuses to delete them). `LocalCatalog` answers from the in-process service; the remote
`sidecar.inference.api_client.RemoteInference` answers from another sidecar's API.
"""

from __future__ import annotations

from typing import Any, Protocol

from sidecar.errors import NotFoundError
from sidecar.inference.types import TaskType


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
