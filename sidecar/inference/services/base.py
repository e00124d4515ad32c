"""The executable form of one endpoint, and the catalog of services with their settings."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sidecar.errors import SettingsValidationError, StatusError
from sidecar.inference.services.providers import PROVIDER_ROWS
from sidecar.inference.services.remote_settings import check_remote_settings
from sidecar.inference.types import (
    CompletionResult,
    DenseEmbedding,
    InputType,
    RankedDocument,
    SparseEmbedding,
    TaskType,
)

SPARSE, DENSE, RERANK = TaskType.SPARSE_EMBEDDING, TaskType.TEXT_EMBEDDING, TaskType.RERANK
COMPLETION, CHAT = TaskType.COMPLETION, TaskType.CHAT_COMPLETION


class Runtime:
    """One endpoint ready to serve; services override the task types they support."""

    async def sparse(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> list[SparseEmbedding]:
        raise StatusError("this service does not support task type [sparse_embedding]")

    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        """Embeddings and their type: `float`, `byte` or `bit`."""
        raise StatusError("this service does not support task type [text_embedding]")

    async def rerank(
        self,
        query: str,
        documents: list[str],
        *,
        top_n: int | None,
        return_documents: bool,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> list[RankedDocument]:
        raise StatusError("this service does not support task type [rerank]")

    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        raise StatusError("this service does not support task type [completion]")

    def stream_completion(self, texts: list[str], *, task_settings: dict[str, Any]) -> AsyncIterator[str]:
        """Completion deltas as they arrive."""
        raise StatusError("this service does not support streaming task type [completion]")

    async def whole_completion_as_delta(
        self, texts: list[str], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[str]:
        """`stream_completion` for a service whose streaming wire format is not spoken (an AWS binary
        event stream): the whole completion as one delta."""
        for result in await self.complete(texts, task_settings=task_settings, time_limit=None):
            yield result.result

    def stream_chat(
        self, request: dict[str, Any], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """Elasticsearch unified chat-completion chunks for a `messages` request (the endpoint's
        stored task settings beside it)."""
        raise StatusError("this service does not support task type [chat_completion]")

    async def aclose(self) -> None:
        return None

    @classmethod
    def free_task_settings(cls, service_settings: dict[str, Any]) -> bool:
        """Whether task settings beyond the service's own are passed on to the provider (the
        amazon_sagemaker `elastic` api) instead of refused."""
        return False

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        """A service's own checks of its settings at PUT (beyond the keys `ServiceSpec` lists)."""
        return None


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    task_types: frozenset[TaskType]
    required: tuple[str, ...]
    optional: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()
    task_settings: frozenset[str] = frozenset()
    doc: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    # "module:Class" of the service's Runtime, for services that register one here: imported when
    # an endpoint is built; its `check_settings` adds the service's own checks at PUT.
    runtime: str = ""


_REMOTE = frozenset({"rate_limit", "timeout"})
LOCAL_ELASTICSEARCH = ServiceSpec(
    "elasticsearch",
    frozenset({SPARSE, DENSE, RERANK, TaskType.EMBEDDING}),
    ("model_id",),
    frozenset(
        {
            "num_allocations",
            "num_threads",
            "adaptive_allocations",
            "deployment_id",
            "max_seq_length",
            "pruning",
            "device",
            "similarity",
            "dimensions",
        }
    ),
    task_settings=frozenset({"pruning", "return_documents", "top_n"}),
    doc="Local model: built-in alias, package:pkg/dir, a directory, or a Hugging Face id.",
)
REMOTE_ELASTICSEARCH = ServiceSpec(
    "elasticsearch",
    frozenset({SPARSE, DENSE, RERANK}),
    ("url", "model_id"),
    _REMOTE | {"api_key", "pruning"},
    frozenset({"api_key"}),
    frozenset({"pruning", "return_documents", "top_n"}),
    doc="Another cluster's `_inference` endpoint (`model_id` = its inference id).",
)
SERVICES: dict[str, ServiceSpec] = {
    "hugging_face": ServiceSpec(
        "hugging_face",
        frozenset({SPARSE, DENSE, RERANK, COMPLETION, CHAT}),
        ("url",),
        _REMOTE
        | {
            "api_key",
            "model_id",
            "vocab",
            "batch_size",
            "dimensions",
            "similarity",
            "max_input_tokens",
            "pruning",
        },
        frozenset({"api_key"}),
        frozenset({"pruning", "return_documents", "top_n"}),
        doc="Hugging Face Inference Endpoints or text-embeddings-inference (TEI) servers.",
    ),
    "openai": ServiceSpec(
        "openai",
        frozenset({DENSE, TaskType.EMBEDDING, COMPLETION, CHAT}),
        ("model_id",),
        _REMOTE
        | {"api_key", "url", "dimensions", "organization_id", "similarity", "max_input_tokens"}
        | {"client_id", "client_secret", "scopes", "token_url"},
        frozenset({"api_key", "client_secret"}),
        frozenset({"user", "headers"}),
        doc="OpenAI embeddings and chat completions (completion, chat_completion streaming).",
        # Elasticsearch's defaults: 3000 for embeddings, 500 for (chat) completions.
        defaults={"requests_per_minute": {"completion": 500, "chat_completion": 500}},
        runtime="sidecar.inference.services.openai:OpenAIRuntime",
    ),
    "cohere": ServiceSpec(
        "cohere",
        frozenset({DENSE, RERANK, COMPLETION}),
        ("api_key",),
        _REMOTE | {"url", "model_id", "embedding_type", "similarity", "dimensions", "max_input_tokens"},
        frozenset({"api_key"}),
        frozenset({"input_type", "truncate", "top_n", "return_documents"}),
        doc="Cohere embed, rerank and chat (completion) APIs.",
    ),
    "elasticsearch": LOCAL_ELASTICSEARCH,
}


SERVICES.update({name: ServiceSpec(name, **row) for name, row in PROVIDER_ROWS.items()})


def _streams(runtime: Runtime, task: TaskType) -> bool:
    method = "stream_chat" if task == CHAT else "stream_completion"
    return getattr(type(runtime), method) is not getattr(Runtime, method)


def streaming_refusal(
    service: str, spec: ServiceSpec, runtime: Runtime, task: TaskType
) -> StatusError | None:
    """Elasticsearch's 405 for a streamed request the service cannot stream, else None."""
    if _streams(runtime, task):
        return None
    supported = [str(t) for t in (COMPLETION, CHAT) if t in spec.task_types and _streams(runtime, t)]
    if not supported:
        return StatusError(f"Streaming is not allowed for service [{service}].", status=405)
    return StatusError(
        f"Streaming is not allowed for service [{service}] and task [{task}]. "
        f"Supported tasks: [{','.join(supported)}]",
        status=405,
    )


def runtime_class(spec: ServiceSpec) -> type[Runtime]:
    module, _, name = spec.runtime.partition(":")
    cls: type[Runtime] = getattr(importlib.import_module(module), name)
    return cls


def default_requests_per_minute(spec: ServiceSpec, task_type: TaskType) -> float:
    """Elasticsearch's default rate limit of a service (`defaults`, per task type where it has several)."""
    value = spec.defaults.get("requests_per_minute", 3000.0)
    return float(value.get(str(task_type), 3000.0) if isinstance(value, dict) else value)


def spec_for(service: str, service_settings: dict[str, Any], inference_id: str) -> ServiceSpec:
    if service == "elasticsearch" and "url" in service_settings:
        return REMOTE_ELASTICSEARCH
    spec = SERVICES.get(service)
    if spec is None:
        raise StatusError(f"Unknown service [{service}] for model [{inference_id}]")
    return spec


def _java_map(settings: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in settings.items()) + "}"


def validate_settings(
    inference_id: str,
    task_type: TaskType,
    service: str,
    service_settings: dict[str, Any],
    task_settings: dict[str, Any],
) -> ServiceSpec:
    """Elasticsearch's checks and messages for a service's settings."""
    spec = spec_for(service, service_settings, inference_id)
    if task_type not in spec.task_types:
        raise StatusError(f"The [{service}] service does not support task type [{task_type}]")
    missing = [k for k in spec.required if service_settings.get(k) in (None, "")]
    if missing:
        body = " ".join(
            f"{i}: [service_settings] does not contain the required setting [{k}];"
            for i, k in enumerate(missing, 1)
        )
        raise SettingsValidationError(f"Validation Failed: {body}")
    unknown = {k: v for k, v in service_settings.items() if k not in spec.required and k not in spec.optional}
    if unknown:
        shown = {k: ("<redacted>" if k in spec.secrets else v) for k, v in unknown.items()}
        raise StatusError(
            f"Model configuration contains settings {_java_map(shown)} unknown to the [{service}] service"
        )
    unknown_task = unknown_task_settings(spec, service_settings, task_settings)
    if unknown_task:
        raise StatusError(
            f"Model configuration contains settings {_java_map(unknown_task)} "
            f"unknown to the [{service}] service"
        )
    if spec is not LOCAL_ELASTICSEARCH:
        check_remote_settings(service_settings, spec.secrets)
    if spec.runtime:
        runtime_class(spec).check_settings(task_type, service_settings, task_settings)
    return spec


# Task settings that are maps merged key by key (request or update wins per key), as Elasticsearch
# merges the custom service's `parameters`; every other task setting is replaced whole.
_MERGED_MAPS = {"custom": ("parameters",)}


def merge_task_settings(service: str, stored: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Stored task settings overridden by a request's or an update's."""
    merged = {**stored, **new}
    for key in _MERGED_MAPS.get(service, ()):
        old, extra = stored.get(key), new.get(key)
        if isinstance(old, dict) and isinstance(extra, dict):
            merged[key] = {**old, **extra}
    return merged


def unknown_task_settings(
    spec: ServiceSpec, service_settings: dict[str, Any], task_settings: dict[str, Any]
) -> dict[str, Any]:
    """Task settings the service does not know (none for services that pass them on)."""
    if spec.runtime and runtime_class(spec).free_task_settings(service_settings):
        return {}
    return {k: v for k, v in task_settings.items() if k not in spec.task_settings}


def secret_keys(service: str, service_settings: dict[str, Any]) -> frozenset[str]:
    spec = SERVICES.get(service)
    if service == "elasticsearch" and "url" in service_settings:
        spec = REMOTE_ELASTICSEARCH
    return spec.secrets if spec else frozenset({"api_key"})
