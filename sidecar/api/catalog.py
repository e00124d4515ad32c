"""`GET /_inference/_services`: the inference services endpoints can use, in Elasticsearch's shape.

Built from the inference layer's own service catalog, so the list cannot drift from what `PUT`
accepts.
"""

from __future__ import annotations

from typing import Any

from sidecar.inference.services.base import SERVICES, ServiceSpec
from sidecar.inference.types import TaskType

_NAMES = {
    "hugging_face": "Hugging Face",
    "openai": "OpenAI",
    "cohere": "Cohere",
    "elasticsearch": "Elasticsearch",
}


def _field(key: str, spec: ServiceSpec, task_types: list[str]) -> dict[str, Any]:
    return {
        "label": key.replace("_", " ").title().replace("Id", "ID").replace("Api", "API"),
        "required": key in spec.required,
        "sensitive": key in spec.secrets,
        "updatable": key not in ("model_id", "url"),
        "type": "str",
        "supported_task_types": task_types,
    }


def service_configurations(task_type: TaskType | None = None) -> list[dict[str, Any]]:
    services = []
    for name in sorted(SERVICES):
        spec = SERVICES[name]
        if task_type is not None and task_type not in spec.task_types:
            continue
        task_types = sorted(str(t) for t in spec.task_types)
        keys = [*spec.required, *sorted(spec.optional - set(spec.required))]
        services.append(
            {
                "service": name,
                "name": _NAMES.get(name, name),
                "description": spec.doc,
                "task_types": task_types,
                "configurations": {key: _field(key, spec, task_types) for key in keys},
            }
        )
    return services
