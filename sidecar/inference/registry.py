"""Inference endpoints with Elasticsearch's semantics, over a pluggable store.

`EndpointRegistry` validates and shapes endpoints exactly like Elasticsearch (id rule, task types,
service settings, errors) and keeps them in an `EndpointStore`: SQLite by default
(`SqliteEndpointStore`, one host), or an index of the target engine shared by every replica
(`IndexEndpointStore`, when `registry_index` is set). Secrets (`api_key`, ...) are stored apart
from the settings and never appear in `public_dict()`, logs or error messages.

Built-in endpoints exist without setup and cannot be changed or deleted (ids start with `.`):
`.splade-tiny` (sparse_embedding), `.minilm-l6` (text_embedding, 384 dims),
`.minilm-l6-rerank` (rerank by dense cosine), and Elasticsearch's preconfigured
`.elser-2-elasticsearch`, `.multilingual-e5-small-elasticsearch`, `.rerank-v1-elasticsearch` (whose
model ids resolve through the alias table, `sidecar.inference.aliases`).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sidecar.errors import (
    IllegalArgumentError,
    ParseError,
    RequestValidationError,
    StatusError,
)
from sidecar.inference.aliases import E5_IDS, ELSER_DEFAULT_ID, RERANK_ID
from sidecar.inference.chunking import ChunkingSettings
from sidecar.inference.endpoints import Endpoint, EndpointStore, already_exists, not_found
from sidecar.inference.registry_sqlite import SqliteEndpointStore
from sidecar.inference.services.base import merge_task_settings, secret_keys, validate_settings
from sidecar.inference.types import TaskType

if TYPE_CHECKING:
    from sidecar.settings import Settings

__all__ = ["BUILTIN_ENDPOINTS", "Endpoint", "EndpointRegistry", "EndpointStore", "with_task_settings"]

ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?")
# Elasticsearch stores an endpoint as the document `model_<id>`, and document ids are limited to
# 512 bytes: a longer inference id fails that document's validation.
_DOC_ID_PREFIX = "model_"
MAX_DOC_ID_BYTES = 512


def check_id_length(inference_id: str) -> None:
    doc_id = _DOC_ID_PREFIX + inference_id
    size = len(doc_id.encode())
    if size > MAX_DOC_ID_BYTES:
        raise RequestValidationError(
            f"Validation Failed: 1: id [{doc_id}] is too long, must be no longer than "
            f"{MAX_DOC_ID_BYTES} bytes but was: {size};"
        )


CHUNKED_TASKS = (TaskType.SPARSE_EMBEDDING, TaskType.TEXT_EMBEDDING, TaskType.EMBEDDING)
ELSER_SERVICE = "elser"
_CREATE_KEYS = {"service", "service_settings", "task_settings", "chunking_settings", "task_type"}
_UPDATE_KEYS = {"service_settings", "task_settings", "chunking_settings", "task_type"}


def _builtin(
    inference_id: str,
    task: TaskType,
    settings: dict[str, Any],
    task_settings: dict[str, Any] | None = None,
) -> Endpoint:
    chunking = ChunkingSettings().to_dict() if task in CHUNKED_TASKS else None
    return Endpoint(
        inference_id, task, "elasticsearch", settings, task_settings or {}, chunking, builtin=True
    )


_ONE = {"num_allocations": 1, "num_threads": 1}
# Elasticsearch's preconfigured endpoints answer with these settings (its defaults off Linux x86_64).
_ADAPTIVE = {"enabled": True, "min_number_of_allocations": 0, "max_number_of_allocations": 32}
BUILTIN_ENDPOINTS: dict[str, Endpoint] = {
    e.inference_id: e
    for e in (
        _builtin(".splade-tiny", TaskType.SPARSE_EMBEDDING, {"model_id": ".splade_tiny", **_ONE}),
        _builtin(".minilm-l6", TaskType.TEXT_EMBEDDING, {"model_id": ".minilm_l6", **_ONE}),
        _builtin(".minilm-l6-rerank", TaskType.RERANK, {"model_id": ".minilm_l6", **_ONE}),
        _builtin(
            ".elser-2-elasticsearch",
            TaskType.SPARSE_EMBEDDING,
            {"num_threads": 1, "model_id": ELSER_DEFAULT_ID, "adaptive_allocations": _ADAPTIVE},
        ),
        _builtin(
            ".multilingual-e5-small-elasticsearch",
            TaskType.TEXT_EMBEDDING,
            {
                "num_threads": 1,
                "model_id": E5_IDS[0],
                "adaptive_allocations": _ADAPTIVE,
                "similarity": "cosine",
                "dimensions": 384,
            },
        ),
        _builtin(
            ".rerank-v1-elasticsearch",
            TaskType.RERANK,
            {"num_threads": 1, "model_id": RERANK_ID, "adaptive_allocations": _ADAPTIVE},
            {"return_documents": True},
        ),
    )
}


def parse_task_type(value: Any) -> TaskType:
    try:
        return TaskType(value)
    except ValueError:
        raise StatusError(f"Unknown task_type [{value}]") from None


def _resolve_task_type(path_type: TaskType | str | None, body_type: Any) -> TaskType:
    url = parse_task_type(path_type) if path_type is not None else None
    if body_type is None:
        if url is None:
            raise StatusError("model is missing required setting [task_type]")
        return url
    body = parse_task_type(body_type)
    if url is not None and url != body:
        raise StatusError(
            f"Cannot resolve conflicting task_type parameter in the request URL [{url}] "
            f"and the request body [{body}]"
        )
    return body


def _object(body: dict[str, Any], key: str, required: bool = False) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        if required:
            raise StatusError(f"Model configuration is missing [{key}]")
        return {}
    if not isinstance(value, dict):
        raise ParseError(f"[{key}] must be an object")
    return dict(value)


class EndpointRegistry:
    def __init__(self, path: Path | str | None = None, *, store: EndpointStore | None = None) -> None:
        if (path is None) == (store is None):
            raise TypeError("EndpointRegistry needs either a SQLite path or a store")
        self.store: EndpointStore = store if store is not None else SqliteEndpointStore(path or "")

    @classmethod
    def from_settings(cls, settings: Settings) -> EndpointRegistry:
        """SQLite at `registry_path`, or the engine index `registry_index` when it is set."""
        if not settings.registry_index:
            return cls(settings.registry_path)
        if not settings.registry_engine_url:
            raise IllegalArgumentError(
                f"registry_index [{settings.registry_index}] needs registry_engine_url "
                "(SIDECAR_REGISTRY_ENGINE_URL), the engine that holds the index"
            )
        from sidecar.inference.registry_index import IndexEndpointStore  # httpx only when used

        store = IndexEndpointStore(
            settings.registry_engine_url, settings.registry_index, cache_s=settings.registry_cache_s
        )
        return cls(store=store)

    def ping(self) -> None:
        """Reach the store now (readiness probe); raises when it does not answer."""
        self.store.ping()

    def close(self) -> None:
        self.store.close()

    # --- reads -------------------------------------------------------------------------------------
    def get(
        self, inference_id: str, task_type: TaskType | str | None = None, *, management: bool = False
    ) -> Endpoint:
        """The endpoint; with `task_type`, it must be of that type (`management`: the GET/DELETE
        APIs' wording of the mismatch, else the perform API's)."""
        endpoint = BUILTIN_ENDPOINTS.get(inference_id) or self.store.load(inference_id)
        if endpoint is None:
            raise not_found(inference_id)
        if task_type is not None:
            wanted = parse_task_type(task_type)
            if management and wanted != endpoint.task_type:
                raise StatusError(
                    f"Requested task type [{wanted}] does not match the inference endpoint's task type "
                    f"[{endpoint.task_type}]"
                )
            _check_task_type(endpoint, wanted)
        return endpoint

    def list(self, task_type: TaskType | str | None = None) -> builtins.list[Endpoint]:
        wanted = parse_task_type(task_type) if task_type is not None else None
        endpoints = [*BUILTIN_ENDPOINTS.values(), *self.store.load_all()]
        return sorted(
            (e for e in endpoints if wanted is None or e.task_type == wanted), key=lambda e: e.inference_id
        )

    # --- writes ------------------------------------------------------------------------------------
    def create(self, inference_id: str, task_type: TaskType | str | None, body: dict[str, Any]) -> Endpoint:
        return self.insert(self.prepare_create(inference_id, task_type, body))

    def prepare_create(
        self, inference_id: str, task_type: TaskType | str | None, body: dict[str, Any]
    ) -> Endpoint:
        """The validated endpoint a create request describes, not stored yet (the API probes it
        first, then calls `insert`)."""
        if (
            not isinstance(inference_id, str)
            or inference_id == "_all"
            or not ID_PATTERN.fullmatch(inference_id)
        ):
            raise RequestValidationError(
                f"Validation Failed: 1: Invalid inference_id; '{inference_id}' must contain only lowercase "
                "alphanumeric (a-z and 0-9), hyphens, underscores or dots; "
                "must start and end with alphanumeric;"
            )
        check_id_length(inference_id)
        endpoint = self._build(inference_id, task_type, body)
        if inference_id in BUILTIN_ENDPOINTS or self.store.load(inference_id) is not None:
            raise already_exists(inference_id)
        return endpoint

    def insert(self, endpoint: Endpoint) -> Endpoint:
        if endpoint.inference_id in BUILTIN_ENDPOINTS:
            raise already_exists(endpoint.inference_id)
        self.store.insert(endpoint)
        return endpoint

    def update(self, inference_id: str, task_type: TaskType | str | None, body: dict[str, Any]) -> Endpoint:
        change = self._update_change(inference_id, task_type, body)
        return self.store.update(inference_id, change)

    def prepare_update(
        self, inference_id: str, task_type: TaskType | str | None, body: dict[str, Any]
    ) -> Endpoint:
        """The endpoint an update would store, validated but not stored (the API probes it first)."""
        return self._update_change(inference_id, task_type, body)(self.get(inference_id))

    def _update_change(
        self, inference_id: str, task_type: TaskType | str | None, body: dict[str, Any]
    ) -> Callable[[Endpoint], Endpoint]:
        if not isinstance(body, dict):
            raise ParseError("request body must be an object")
        if not body:
            raise StatusError("Request body is empty")
        unknown = {k: v for k, v in body.items() if k not in _UPDATE_KEYS}
        if unknown:  # `service` included: an endpoint's service never changes
            raise StatusError(
                "Request contained fields which cannot be updated, remove these fields and try again "
                f"{java_map(unknown)}"
            )
        wanted = [parse_task_type(t) for t in (task_type, body.get("task_type")) if t is not None]
        current = self.get(inference_id)
        if current.builtin:
            raise StatusError(f"Cannot update inference endpoint [{inference_id}]: it is a reserved endpoint")

        def change(stored: Endpoint) -> Endpoint:
            # `stored` is the latest version (another replica may have changed it since `get`).
            if any(t != stored.task_type for t in wanted):
                raise StatusError("Task type must match the task type of the existing endpoint")
            merged = {
                "service": stored.service,
                "task_type": str(stored.task_type),
                "service_settings": {
                    **stored.service_settings,
                    **stored.secrets,
                    **_object(body, "service_settings"),
                },
                "task_settings": merge_task_settings(
                    stored.service, stored.task_settings, _object(body, "task_settings")
                ),
                "chunking_settings": body.get("chunking_settings", stored.chunking_settings),
            }
            return self._build(inference_id, stored.task_type, merged)

        return change

    def delete(
        self,
        inference_id: str,
        task_type: TaskType | str | None = None,
        *,
        dry_run: bool = False,
        force: bool = False,
    ) -> dict[str, Any]:
        endpoint = self.get(inference_id, task_type, management=True)
        if endpoint.builtin:
            raise StatusError(
                f"[{inference_id}] is a reserved inference endpoint. "
                "Cannot delete a reserved inference endpoint."
            )
        pipelines = self.pipelines_using(inference_id)
        if dry_run:
            return {"acknowledged": False, "pipelines": pipelines, "indexes": []}
        if pipelines and not force:
            raise StatusError(
                f"Inference endpoint {inference_id} is referenced by pipelines: {pipelines}. "
                "Ensure that no pipelines are using this inference endpoint, or use force to ignore "
                "this warning and delete the inference endpoint."
            )
        self.store.remove(inference_id)
        return {"acknowledged": True, "pipelines": pipelines, "indexes": []}

    # --- pipeline references -----------------------------------------------------------------------
    def set_pipeline_usage(self, pipeline: str, inference_ids: Iterable[str]) -> None:
        """Record which endpoints a pipeline uses (replaces its previous set; empty clears it)."""
        self.store.set_pipeline_usage(pipeline, builtins.list(dict.fromkeys(inference_ids)))

    def pipelines_using(self, inference_id: str) -> builtins.list[str]:
        return sorted(self.store.pipelines_using(inference_id))

    # --- validation --------------------------------------------------------------------------------
    def _build(self, inference_id: str, task_type: TaskType | str | None, body: dict[str, Any]) -> Endpoint:
        if not isinstance(body, dict):
            raise ParseError("request body must be an object")
        for key in body:
            if key not in _CREATE_KEYS:
                raise ParseError(f"unknown field [{key}]")
        task = _resolve_task_type(task_type, body.get("task_type"))
        service = body.get("service")
        if not service or not isinstance(service, str):
            raise StatusError("Model configuration is missing [service]")
        settings = _object(body, "service_settings", required=True)
        task_settings = _object(body, "task_settings")
        if (
            service == "elasticsearch"
            and "url" not in settings
            and isinstance(settings.get("deployment_id"), str)
        ):
            _model_from_deployment(settings)
        if service == ELSER_SERVICE:  # deprecated: Elasticsearch keeps it as `elasticsearch` + ELSER
            if task != TaskType.SPARSE_EMBEDDING:
                raise StatusError(f"The [{service}] service does not support task type [{task}]")
            service = "elasticsearch"
            settings.setdefault("model_id", ELSER_DEFAULT_ID)
        validate_settings(inference_id, task, service, settings, task_settings)
        raw_chunking = body.get("chunking_settings")
        chunking: dict[str, Any] | None = None
        if task in CHUNKED_TASKS:
            chunking = ChunkingSettings.from_dict(raw_chunking).to_dict()
        elif raw_chunking is not None:
            raise StatusError(f"Chunking settings are not supported for task type [{task}]")
        secret_names = secret_keys(service, settings)
        secrets = {k: settings.pop(k) for k in builtins.list(settings) if k in secret_names}
        return Endpoint(inference_id, task, service, settings, task_settings, chunking, secrets)


def _model_from_deployment(settings: dict[str, Any]) -> None:
    """Elasticsearch takes the model of an existing deployment; here each model is its own
    deployment, so `deployment_id` names the model (and must agree with a given `model_id`)."""
    deployment = settings["deployment_id"]
    model_id = settings.setdefault("model_id", deployment)
    if model_id != deployment:
        raise StatusError(
            f"Deployment [{deployment}] uses model [{deployment}] which does not match the model "
            f"[{model_id}] in the request."
        )


def java_map(value: Any) -> str:
    """A map as Elasticsearch's messages print one (Java's `Map.toString`): `{key=value, ...}`."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_map(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(java_map(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def creation_warnings(body: Any) -> builtins.list[str]:
    """Elasticsearch's deprecation warnings for a create request (sent as `Warning` headers)."""
    if not isinstance(body, dict) or body.get("service") != ELSER_SERVICE:
        return []
    settings = body.get("service_settings")
    model_id = settings.get("model_id") if isinstance(settings, dict) else None
    warnings = []
    if model_id is None:
        warnings.append(
            "Putting elasticsearch service inference endpoints (including elser service) without a "
            "model_id field is deprecated and will be removed in a future release. Please specify a "
            "model_id field."
        )
    warnings.append(
        f"The [{ELSER_SERVICE}] service is deprecated and will be removed in a future release. Use the "
        f"[elasticsearch] service instead, with [model_id] set to [{ELSER_DEFAULT_ID}] in the "
        "[service_settings]"
    )
    return warnings


def _check_task_type(endpoint: Endpoint, wanted: TaskType) -> None:
    if wanted != endpoint.task_type:
        raise StatusError(
            f"Incompatible task_type, the requested type [{wanted}] does not match "
            f"the model type [{endpoint.task_type}]"
        )


def with_task_settings(endpoint: Endpoint, overrides: dict[str, Any] | None) -> Endpoint:
    """The endpoint as one request sees it (request task_settings override stored ones)."""
    if not overrides:
        return endpoint
    return replace(
        endpoint, task_settings=merge_task_settings(endpoint.service, endpoint.task_settings, overrides)
    )
