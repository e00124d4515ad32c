"""Rows of the service table for services whose runtime registers itself by name (`runtime`).
`defaults.requests_per_minute` is Elasticsearch's default rate limit of the service (by task type
where it has several); `rate_limit.requests_per_minute` in the settings overrides it.

Each row holds `ServiceSpec`'s fields; `sidecar.inference.services.base` adds them to `SERVICES`.
Kept apart from `base` so that adding a provider touches only this table and its own module.
Required and optional keys follow Elasticsearch's inference specification for each service;
`url` is accepted by every hosted provider (Elasticsearch lacks it for some, e.g. `mistral`, `groq`)
so that a gateway, a self-hosted compatible server or a test server can stand in.
"""

from __future__ import annotations

from typing import Any

from sidecar.inference.types import TaskType

SPARSE, DENSE, RERANK = TaskType.SPARSE_EMBEDDING, TaskType.TEXT_EMBEDDING, TaskType.RERANK
COMPLETION, CHAT = TaskType.COMPLETION, TaskType.CHAT_COMPLETION
_REMOTE = frozenset({"rate_limit", "timeout"})
_DENSE = frozenset({"dimensions", "similarity", "max_input_tokens"})
_API_KEY = frozenset({"api_key"})
_OPENAI_LIKE = "sidecar.inference.services.openai_compatible:"


def _row(
    runtime: str,
    task_types: set[TaskType],
    required: tuple[str, ...],
    optional: set[str] | frozenset[str] = frozenset(),
    *,
    task_settings: set[str] | frozenset[str] = frozenset(),
    doc: str,
    requests_per_minute: float = 3000.0,
) -> dict[str, Any]:
    return {
        "task_types": frozenset(task_types),
        "required": required,
        "optional": _REMOTE | _API_KEY | frozenset(optional),
        "secrets": _API_KEY,
        "task_settings": frozenset(task_settings),
        "doc": doc,
        "runtime": runtime,
        "defaults": {"requests_per_minute": requests_per_minute},
    }


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
        "defaults": {"requests_per_minute": 10000},
    },
    "azureaistudio": {
        "task_types": frozenset({DENSE, RERANK, COMPLETION}),
        "required": ("api_key", "target", "provider", "endpoint_type"),
        "optional": _REMOTE | _DENSE,
        "secrets": _API_KEY,
        "task_settings": frozenset(
            {"do_sample", "max_new_tokens", "temperature", "top_p", "user", "return_documents", "top_n"}
        ),
        "doc": "Azure AI Studio (Foundry) deployments: embeddings, completions, Cohere reranking.",
        "runtime": "sidecar.inference.services.azure_ai_studio:AzureAIStudioRuntime",
        "defaults": {"requests_per_minute": 240},
    },
    "azureopenai": {
        "task_types": frozenset({DENSE, COMPLETION, CHAT}),
        "required": ("resource_name", "deployment_id", "api_version"),
        "optional": _REMOTE
        | _DENSE
        | {"api_key", "entra_id", "url", "client_id", "client_secret", "tenant_id", "scopes"},
        "secrets": frozenset({"api_key", "entra_id", "client_secret"}),
        "task_settings": frozenset({"user", "headers"}),
        "doc": "Azure OpenAI deployments: embeddings and chat completions (api-key, Entra ID token or client credentials).",
        "runtime": "sidecar.inference.services.azure_openai:AzureOpenAIRuntime",
        "defaults": {
            "requests_per_minute": {"text_embedding": 1440, "completion": 120, "chat_completion": 120}
        },
    },
    "amazonbedrock": {
        "task_types": frozenset({DENSE, COMPLETION, CHAT}),
        "required": ("access_key", "secret_key", "region", "model"),
        "optional": _REMOTE | _DENSE | {"provider", "url"},
        "secrets": frozenset({"access_key", "secret_key"}),
        "task_settings": frozenset({"max_new_tokens", "temperature", "top_k", "top_p", "truncate"}),
        "doc": "Amazon Bedrock: Titan and Cohere embeddings, completions through the Converse API (SigV4).",
        "runtime": "sidecar.inference.services.amazon_bedrock:AmazonBedrockRuntime",
        "defaults": {"requests_per_minute": 240},
    },
    "googlevertexai": {
        "task_types": frozenset({DENSE, RERANK, COMPLETION, CHAT}),
        "required": ("service_account_json",),
        "optional": _REMOTE
        | _DENSE
        | {"project_id", "location", "model_id", "max_batch_size", "provider", "url", "streaming_url"},
        "secrets": frozenset({"service_account_json"}),
        "task_settings": frozenset(
            {"auto_truncate", "input_type", "top_n", "return_documents", "thinking_config", "max_tokens"}
        ),
        "doc": "Google Vertex AI embeddings, Gemini completions and the ranking API (service-account key).",
        "runtime": "sidecar.inference.services.google:GoogleVertexAIRuntime",
        "defaults": {
            "requests_per_minute": {
                "text_embedding": 30000,
                "rerank": 300,
                "completion": 1000,
                "chat_completion": 1000,
            }
        },
    },
    "googleaistudio": _row(
        "sidecar.inference.services.google:GoogleAIStudioRuntime",
        {DENSE, COMPLETION},
        ("api_key", "model_id"),
        _DENSE,
        doc="Google AI Studio (Gemini API) embeddings and completions.",
        requests_per_minute=360,
    ),
    "voyageai": _row(
        "sidecar.inference.services.embedding_providers:VoyageAIRuntime",
        {DENSE, RERANK},
        ("api_key", "model_id"),
        _DENSE | {"embedding_type", "url"},
        task_settings={"input_type", "return_documents", "top_k", "truncation"},
        doc="Voyage AI embeddings (float, int8, bit) and reranking.",
        requests_per_minute=2000,
    ),
    "jinaai": _row(
        "sidecar.inference.services.embedding_providers:JinaAIRuntime",
        {DENSE, RERANK, TaskType.EMBEDDING},
        ("api_key", "model_id"),
        _DENSE | {"embedding_type", "multimodal_model", "url"},
        task_settings={"input_type", "late_chunking", "return_documents", "top_n"},
        doc="Jina AI embeddings (float, bit) and reranking.",
        requests_per_minute=2000,
    ),
    "watsonxai": _row(
        "sidecar.inference.services.watsonx:WatsonxRuntime",
        {DENSE, RERANK, COMPLETION, CHAT},
        ("api_key", "api_version", "model_id", "project_id", "url"),
        _DENSE,
        task_settings={"truncate_input_tokens", "return_documents", "top_n"},
        doc="IBM watsonx.ai embeddings, reranking and chat (IBM Cloud IAM tokens).",
        requests_per_minute=120,
    ),
    "alibabacloud-ai-search": _row(
        "sidecar.inference.services.alibaba:AlibabaCloudSearchRuntime",
        {SPARSE, DENSE, RERANK, COMPLETION},
        ("api_key", "host", "service_id", "workspace"),
        _DENSE | {"http_schema"},
        task_settings={"input_type", "return_token", "parameters", "top_n"},
        doc="AlibabaCloud AI Search: dense and sparse embeddings, reranking, text generation.",
        requests_per_minute=1000,
    ),
    "contextualai": _row(
        "sidecar.inference.services.contextual_ai:ContextualAIRuntime",
        {RERANK},
        ("api_key", "model_id"),
        {"url"},
        task_settings={"instruction", "top_k", "top_n", "return_documents"},
        doc="Contextual AI instruction-following reranker.",
        requests_per_minute=1000,
    ),
    "anthropic": _row(
        "sidecar.inference.services.anthropic:AnthropicRuntime",
        {COMPLETION, CHAT},
        ("api_key", "model_id"),
        {"url"},
        task_settings={"max_tokens", "temperature", "top_p", "top_k"},
        doc="Anthropic Messages API completions and chat completions (max_tokens task setting required).",
        requests_per_minute=50,
    ),
    "amazon_sagemaker": {
        "task_types": frozenset({DENSE, SPARSE, RERANK, COMPLETION, CHAT}),
        "required": ("access_key", "secret_key", "endpoint_name", "api", "region"),
        "optional": _REMOTE
        | _DENSE
        | {
            "element_type",
            "target_model",
            "target_container_hostname",
            "inference_component_name",
            "batch_size",
            "url",
        },
        "secrets": frozenset({"access_key", "secret_key"}),
        "task_settings": frozenset(
            {
                "custom_attributes",
                "enable_explanations",
                "inference_id",
                "session_id",
                "target_variant",
                "user",
            }
        ),
        "doc": "Amazon SageMaker endpoints speaking OpenAI's or Elasticsearch's formats (SigV4).",
        "runtime": "sidecar.inference.services.sagemaker:SageMakerRuntime",
        "defaults": {"requests_per_minute": 3000},
    },
    "mistral": _row(
        _OPENAI_LIKE + "MistralRuntime",
        {DENSE, COMPLETION, CHAT},
        ("api_key", "model"),
        _DENSE | {"url"},
        doc="Mistral AI embeddings and chat completions.",
        requests_per_minute=240,
    ),
    "deepseek": _row(
        _OPENAI_LIKE + "DeepSeekRuntime",
        {COMPLETION, CHAT},
        ("api_key", "model_id"),
        {"url"},
        doc="DeepSeek chat completions.",
    ),
    "groq": _row(
        _OPENAI_LIKE + "GroqRuntime",
        {CHAT},
        ("model_id",),
        {"url"},
        doc="Groq chat completions (OpenAI-compatible API).",
        requests_per_minute=1000,
    ),
    "fireworksai": _row(
        _OPENAI_LIKE + "FireworksAIRuntime",
        {DENSE, COMPLETION, CHAT},
        ("api_key", "model_id"),
        _DENSE | {"url"},
        task_settings={"user", "headers"},
        doc="Fireworks AI embeddings and chat completions.",
        requests_per_minute=6000,
    ),
    "ai21": _row(
        _OPENAI_LIKE + "AI21Runtime",
        {COMPLETION, CHAT},
        ("model_id",),
        {"url"},
        doc="AI21 Jamba chat completions.",
        requests_per_minute=200,
    ),
    "nvidia": _row(
        _OPENAI_LIKE + "NvidiaRuntime",
        {DENSE, COMPLETION, CHAT, RERANK},
        ("api_key", "model_id"),
        _DENSE | {"url"},
        task_settings={"input_type", "truncate"},
        doc="NVIDIA NIM / API catalog embeddings, reranking and chat completions.",
    ),
    "llama": _row(
        _OPENAI_LIKE + "LlamaRuntime",
        {DENSE, COMPLETION, CHAT},
        ("url", "model_id"),
        _DENSE,
        doc="Llama Stack servers: embeddings and chat completions.",
    ),
    "openshift_ai": _row(
        _OPENAI_LIKE + "OpenShiftAIRuntime",
        {DENSE, COMPLETION, CHAT, RERANK},
        ("api_key", "url"),
        _DENSE | {"model_id"},
        task_settings={"return_documents", "top_n"},
        doc="Red Hat OpenShift AI model servers: embeddings, reranking and chat completions.",
    ),
}
