"""The endpoint record and the storage protocol behind `EndpointRegistry`.

The registry owns Elasticsearch's semantics (validation, built-ins, errors); a store only keeps
records: `SqliteEndpointStore` (one host) or `IndexEndpointStore` (an index of the engine, shared by
replicas). Both keep the same record shape, built by `endpoint_config` / `endpoint_from_parts`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sidecar.errors import AlreadyExistsError, NotFoundError
from sidecar.inference.chunking import ChunkingSettings
from sidecar.inference.types import TaskType


@dataclass(frozen=True)
class Endpoint:
    inference_id: str
    task_type: TaskType
    service: str
    service_settings: dict[str, Any]
    task_settings: dict[str, Any] = field(default_factory=dict)
    chunking_settings: dict[str, Any] | None = None
    secrets: dict[str, Any] = field(default_factory=dict, repr=False)
    builtin: bool = False

    def public_dict(self) -> dict[str, Any]:
        """The Elasticsearch endpoint object, without secrets."""
        body: dict[str, Any] = {
            "inference_id": self.inference_id,
            "task_type": str(self.task_type),
            "service": self.service,
            "service_settings": dict(self.service_settings),
            "task_settings": dict(self.task_settings),
        }
        if self.chunking_settings is not None:
            body["chunking_settings"] = dict(self.chunking_settings)
        return body

    @property
    def chunking(self) -> ChunkingSettings:
        return (
            ChunkingSettings.from_dict(self.chunking_settings)
            if self.chunking_settings
            else (ChunkingSettings(strategy="none"))
        )

    def config_key(self) -> str:
        """Changes whenever anything that affects serving changes (runtime cache key)."""
        return json.dumps(
            [self.service, self.service_settings, self.task_settings, self.secrets],
            sort_keys=True,
            default=str,
        )


def endpoint_config(e: Endpoint) -> dict[str, Any]:
    """Everything but the id, type, service and secrets: what a store keeps as `config`."""
    return {
        "service_settings": e.service_settings,
        "task_settings": e.task_settings,
        "chunking_settings": e.chunking_settings,
    }


def endpoint_from_parts(
    inference_id: str, task_type: str, service: str, config: dict[str, Any], secrets: dict[str, Any]
) -> Endpoint:
    return Endpoint(
        inference_id,
        TaskType(task_type),
        service,
        config["service_settings"],
        config.get("task_settings") or {},
        config.get("chunking_settings"),
        secrets,
    )


def not_found(inference_id: str) -> NotFoundError:
    return NotFoundError(f"Inference endpoint not found [{inference_id}]")


def already_exists(inference_id: str) -> AlreadyExistsError:
    return AlreadyExistsError(f"Inference endpoint [{inference_id}] already exists")


class EndpointStore(Protocol):
    """Where user-created endpoints and pipeline references live (never built-ins)."""

    def load(self, inference_id: str) -> Endpoint | None: ...

    def load_all(self) -> list[Endpoint]: ...

    def insert(self, endpoint: Endpoint) -> None:
        """Add a new endpoint; `already_exists(id)` when the id is taken."""

    def update(self, inference_id: str, change: Callable[[Endpoint], Endpoint]) -> Endpoint:
        """Replace the stored endpoint by `change(current)`, atomically; `not_found(id)` when gone."""
        ...

    def remove(self, inference_id: str) -> None:
        """Delete the endpoint; `not_found(id)` when it is already gone."""

    def set_pipeline_usage(self, pipeline: str, inference_ids: Iterable[str]) -> None: ...

    def pipelines_using(self, inference_id: str) -> list[str]: ...

    def ping(self) -> None:
        """Reach the storage now (readiness); raise a `SidecarError` when it does not answer."""

    def close(self) -> None: ...
