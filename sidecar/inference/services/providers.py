"""Rows of the service table for services whose runtime registers itself by name (`runtime`).

Each row holds `ServiceSpec`'s fields; `sidecar.inference.services.base` adds them to `SERVICES`.
Kept apart from `base` so that adding a provider touches only this table and its own module.
"""

from __future__ import annotations

from typing import Any

from sidecar.inference.types import TaskType

SPARSE, DENSE, RERANK = TaskType.SPARSE_EMBEDDING, TaskType.TEXT_EMBEDDING, TaskType.RERANK
COMPLETION, CHAT = TaskType.COMPLETION, TaskType.CHAT_COMPLETION
_REMOTE = frozenset({"rate_limit", "timeout"})
_DENSE = frozenset({"dimensions", "similarity", "max_input_tokens"})

PROVIDER_ROWS: dict[str, dict[str, Any]] = {
    "custom": {
        "task_types": frozenset({SPARSE, DENSE, RERANK, COMPLETION}),
        "required": ("url", "request", "response"),
        "optional": _REMOTE
        | _DENSE
        | {"headers", "query_parameters", "input_type", "batch_size", "secret_parameters"},
        "secrets": frozenset({"secret_parameters"}),
        "task_settings": frozenset({"parameters"}),
        "doc": "Any JSON-over-HTTP provider, described by a request template and response paths.",
        "runtime": "sidecar.inference.services.custom:CustomRuntime",
    },
}
