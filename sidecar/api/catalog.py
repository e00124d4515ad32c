"""`GET /_inference/_services`: the inference services endpoints can use, in Elasticsearch's shape.

Built from the inference layer's own service catalog, so the list cannot drift from what `PUT`
accepts.
"""

from __future__ import annotations

from typing import Any

from sidecar.inference.services.base import SERVICES, ServiceSpec
from sidecar.inference.types import TaskType

# Elasticsearch's display name of each service (its `SERVICE_NAME`).
_NAMES = {
    "ai21": "AI21",
    "alibabacloud-ai-search": "AlibabaCloud AI Search",
    "amazon_sagemaker": "Amazon SageMaker",
    "amazonbedrock": "Amazon Bedrock",
    "anthropic": "Anthropic",
    "azureaistudio": "Azure AI Studio",
    "azureopenai": "Azure OpenAI",
    "cohere": "Cohere",
    "contextualai": "Contextual AI",
    "custom": "Custom",
    "deepseek": "DeepSeek",
    "elasticsearch": "Elasticsearch",
    "fireworksai": "FireworksAI",
    "googleaistudio": "Google AI Studio",
    "googlevertexai": "Google Vertex AI",
    "groq": "Groq",
    "hugging_face": "Hugging Face",
    "jinaai": "Jina AI",
    "llama": "Llama",
    "mistral": "Mistral",
    "nvidia": "Nvidia",
    "openai": "OpenAI",
    "openshift_ai": "OpenShift AI",
    "voyageai": "Voyage AI",
    "watsonxai": "IBM watsonx",
}
# Setting types other than Elasticsearch's default `str`.
_INTS = {"dimensions", "max_input_tokens", "num_allocations", "num_threads", "batch_size", "max_batch_size"}
_MAPS = {
    "rate_limit",
    "adaptive_allocations",
    "headers",
    "request",
    "response",
    "input_type",
    "secret_parameters",
}


def _type(key: str) -> str:
    if key in _INTS:
        return "int"
    if key in ("query_parameters", "scopes"):
        return "list"
    return "map" if key in _MAPS else "str"


def _field(key: str, spec: ServiceSpec, task_types: list[str]) -> dict[str, Any]:
    return {
        "label": key.replace("_", " ").title().replace("Id", "ID").replace("Api", "API"),
        "required": key in spec.required,
        "sensitive": key in spec.secrets,
        "updatable": key not in ("model_id", "url"),
        "type": _type(key),
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
