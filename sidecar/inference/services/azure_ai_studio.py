"""Azure AI Studio (Azure AI Foundry) deployments, as Elasticsearch's `azureaistudio` service calls them.

Every request goes to the deployment's `target` URL. Auth: `api-key: <api_key>` for the `openai`
provider; otherwise `Authorization: Bearer <api_key>` on `realtime` endpoints and
`Authorization: <api_key>` on `token` (pay-as-you-go) ones, as Elasticsearch sends them.
- text_embedding: `{"input", "user"?, "dimensions"?, "input_type"?: "document" | "query"}`
  answered in OpenAI's `data[]` shape;
- completion: `token` endpoints `{"messages": [{"content", "role": "user"}], "parameters"?:
  {"temperature", "top_p", "do_sample", "max_new_tokens"}}` answered in OpenAI's chat format (and
  streamed as OpenAI's chunks); `realtime` endpoints `{"input_data": {"input_string": [...],
  "parameters"?}}` answered by `{"output"}`;
- rerank (Cohere models): `{"documents", "query", "return_documents"?, "top_n"?}` answered by
  `{"results": [{"index", "relevance_score"}]}`.
Which provider serves which task and endpoint type follows Elasticsearch's table (`_CAPABILITIES`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sidecar.errors import StatusError
from sidecar.inference.services.openai_compatible import OpenAICompatibleRuntime, ranked_documents
from sidecar.inference.services.remote import RemoteCaller
from sidecar.inference.services.remote_settings import url_problem
from sidecar.inference.services.validation import Errors
from sidecar.inference.types import CompletionResult, InputType, RankedDocument, TaskType

PROVIDERS = ("openai", "mistral", "meta", "microsoft_phi", "cohere", "databricks")
ENDPOINT_TYPES = ("token", "realtime")
# (task type, provider) -> the endpoint types Elasticsearch accepts for them.
_CAPABILITIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("text_embedding", "openai"): ("token",),
    ("text_embedding", "cohere"): ("token",),
    ("rerank", "cohere"): ("token",),
    ("completion", "openai"): ("token",),
    ("completion", "cohere"): ("token",),
    ("completion", "meta"): ("token", "realtime"),
    ("completion", "mistral"): ("realtime",),
    ("completion", "microsoft_phi"): ("realtime",),
    ("completion", "databricks"): ("realtime",),
}
_PARAMETERS = ("temperature", "top_p", "do_sample", "max_new_tokens")


class AzureAIStudioRuntime(OpenAICompatibleRuntime):
    service = "azureaistudio"

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        super().__init__(inference_id, settings, {}, caller)
        target = str(settings["target"])
        self.endpoints = {"embeddings": target, "chat": target, "rerank": target}
        self.provider = str(settings["provider"]).lower()
        self.realtime = str(settings["endpoint_type"]).lower() == "realtime"
        key = str(secrets["api_key"])
        if self.provider == "openai":
            self.headers = {"api-key": key}
        else:
            self.headers = {"Authorization": f"Bearer {key}" if self.realtime else key}

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        errors = Errors()
        errors.one_of(service_settings, "provider", PROVIDERS)
        errors.one_of(service_settings, "endpoint_type", ENDPOINT_TYPES)
        errors.positive_int(task_settings, "max_new_tokens", "task_settings")
        why = url_problem(service_settings.get("target"))
        if why is not None:
            errors.add(f"[service_settings] Invalid url received for field [target]: {why}")
        errors.raise_any()
        provider = str(service_settings["provider"]).lower()
        endpoint_type = str(service_settings["endpoint_type"]).lower()
        allowed = _CAPABILITIES.get((str(task_type), provider))
        if allowed is None:
            raise StatusError(f"The [{task_type}] task type for provider [{provider}] is not available")
        if endpoint_type not in allowed:
            raise StatusError(
                f"The [{endpoint_type}] endpoint type with [{task_type}] task type "
                f"for provider [{provider}] is not available"
            )
        super().check_settings(task_type, service_settings, task_settings)

    def embedding_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"input": texts}
        if task_settings.get("user"):
            body["user"] = task_settings["user"]
        if self.settings.get("dimensions"):
            body["dimensions"] = self.settings["dimensions"]
        if input_type in (InputType.INGEST, InputType.SEARCH):
            body["input_type"] = "document" if input_type == InputType.INGEST else "query"
        return body

    def completion_body(
        self, texts: list[str], task_settings: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        messages = [{"content": t, "role": "user"} for t in texts]
        parameters = {k: task_settings[k] for k in _PARAMETERS if task_settings.get(k) is not None}
        inner: dict[str, Any] = {"input_string" if self.realtime else "messages": messages}
        if parameters:
            inner["parameters"] = parameters
        body: dict[str, Any] = {"input_data": inner} if self.realtime else inner
        if stream:
            body["stream"] = True
        return body

    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        if not self.realtime:
            return await super().complete(texts, task_settings=task_settings, time_limit=time_limit)
        answer = await self._post("chat", self.completion_body(texts, task_settings, False), task_settings)
        if not isinstance(answer, dict) or not isinstance(answer.get("output"), str):
            raise self._fail("a realtime answer without an [output] string")
        return [CompletionResult(answer["output"])]

    async def stream_completion(
        self, texts: list[str], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[str]:
        if self.realtime:
            raise StatusError("The [azureaistudio] service streams only from [token] endpoints")
        async for delta in super().stream_completion(texts, task_settings=task_settings):
            yield delta

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
        body: dict[str, Any] = {"documents": documents, "query": query, "return_documents": return_documents}
        top = top_n or task_settings.get("top_n")
        if top:
            body["top_n"] = top
        answer = await self._post("rerank", body, task_settings)
        try:
            pairs = [(int(r["index"]), float(r["relevance_score"])) for r in answer["results"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc
        return ranked_documents(self._fail, pairs, documents, top, return_documents)
