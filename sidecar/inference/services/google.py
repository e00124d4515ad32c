"""Google Vertex AI (service-account OAuth tokens) and Google AI Studio (API key), Gemini formats.

Vertex AI (`googlevertexai`), host `https://{location}-aiplatform.googleapis.com/v1/projects/
{project_id}/locations/{location}/publishers/google/models/{model_id}`:
- text_embedding: `:predict` with `{"instances": [{"content", "task_type"?}], "parameters"?:
  {"autoTruncate", "outputDimensionality"}}` -> `{"predictions": [{"embeddings": {"values"}}]}`;
- completion: `:generateContent` (below), streamed through `:streamGenerateContent?alt=sse`;
- chat_completion: `:streamGenerateContent?alt=sse` (`sidecar.inference.services.gemini_chat`);
- rerank: Discovery Engine's ranking API, `POST https://discoveryengine.googleapis.com/v1/projects/
  {project_id}/locations/global/rankingConfigs/default_ranking_config:rank` with `{"model"?, "query",
  "records": [{"id", "content"}], "topN"?, "ignoreRecordDetailsInResponse"?}` -> `{"records": [{"id",
  "score", "content"?}]}`.
Tokens come from the `service_account_json` key (scope cloud-platform) through google-auth and are
reused until they expire.

AI Studio (`googleaistudio`), `https://generativelanguage.googleapis.com/v1beta/models/{model_id}`
with `x-goog-api-key`: `:batchEmbedContents` (`{"requests": [{"model", "content": {"parts":
[{"text"}]}, "taskType"?}]}` -> `{"embeddings": [{"values"}]}`) and `:generateContent` (streamed as
for Vertex AI).

Gemini `:generateContent`: `{"contents": [{"role": "user", "parts": [{"text"}]}],
"generationConfig"?}` -> `{"candidates": [{"content": {"parts": [{"text"}]}}]}`; every input is one
user turn of one request, as Elasticsearch sends them. Errors: `{"error": {"code", "message",
"status"}}`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from sidecar.errors import RemoteServiceError, SettingsValidationError, StatusError
from sidecar.inference.services.base import CHAT, COMPLETION, RERANK, Runtime
from sidecar.inference.services.gemini_chat import (
    gemini_chat_body,
    gemini_finished,
    stream_text,
    unified_chat_chunk,
)
from sidecar.inference.services.openai_compatible import ranked_documents
from sidecar.inference.services.remote import RemoteCaller, parse_failure
from sidecar.inference.services.validation import SIMILARITIES, Errors
from sidecar.inference.services.vertex_garden import PROVIDERS, garden_runtime, sse_url
from sidecar.inference.types import CompletionResult, DenseEmbedding, InputType, RankedDocument, TaskType

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_TASK_TYPES = {
    "ingest": "RETRIEVAL_DOCUMENT",
    "search": "RETRIEVAL_QUERY",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
}
_SERVICE_ACCOUNT_KEYS = ("client_email", "private_key", "token_uri")


def service_account_info(raw: Any) -> dict[str, Any]:
    """The parsed `service_account_json`, refused at PUT when it cannot sign tokens."""
    try:
        info = json.loads(raw) if isinstance(raw, str) else None
    except ValueError as exc:
        raise SettingsValidationError(
            f"Validation Failed: 1: [secret_settings] [service_account_json] is not valid JSON: {exc};"
        ) from exc
    if not isinstance(info, dict):
        raise SettingsValidationError(
            "Validation Failed: 1: [secret_settings] [service_account_json] must be a JSON object as a string;"
        )
    missing = [k for k in _SERVICE_ACCOUNT_KEYS if not info.get(k)]
    if missing:
        raise SettingsValidationError(
            "Validation Failed: 1: [secret_settings] [service_account_json] is not a service account key: "
            f"it lacks {missing};"
        )
    return info


class ServiceAccountToken:
    """OAuth access tokens for a service account, refreshed (in a thread: google-auth blocks) when
    they near expiry."""

    def __init__(self, info: dict[str, Any]) -> None:
        from google.oauth2 import service_account

        self.credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
        self._lock = asyncio.Lock()

    async def header(self, service: str, inference_id: str) -> dict[str, str]:
        from google.auth.exceptions import GoogleAuthError
        from google.auth.transport.requests import Request

        async with self._lock:
            if not self.credentials.valid:
                try:
                    await asyncio.to_thread(self.credentials.refresh, Request())
                except GoogleAuthError as exc:
                    raise RemoteServiceError(
                        f"Failed to get an access token for the [{service}] service for inference entity id "
                        f"[{inference_id}]: {exc}",
                        status=401,
                    ) from exc
        return {"Authorization": f"Bearer {self.credentials.token}"}


def gemini_body(texts: list[str], task_settings: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": t}]} for t in texts]}
    config: dict[str, Any] = {}
    if task_settings.get("max_tokens") is not None:
        config["maxOutputTokens"] = task_settings["max_tokens"]
    budget = (task_settings.get("thinking_config") or {}).get("thinking_budget")
    if budget is not None:
        config["thinkingConfig"] = {"thinkingBudget": budget}
    if config:
        body["generationConfig"] = config
    return body


def gemini_text(answer: Any) -> str:
    """The text of the first candidate (Gemini may split it over several parts)."""
    parts = answer["candidates"][0]["content"]["parts"]
    return "".join(str(p["text"]) for p in parts if "text" in p)


class _Google(Runtime):
    service: ClassVar[str]
    model_url: str  # `.../models/{model_id}`, the Gemini methods' base

    @property
    def stream_url(self) -> str:
        return f"{self.model_url}:streamGenerateContent?alt=sse"

    def __init__(self, inference_id: str, caller: RemoteCaller) -> None:
        self.inference_id = inference_id
        self.caller = caller

    async def aclose(self) -> None:
        await self.caller.aclose()

    def _fail(self, what: str) -> Exception:
        return parse_failure(self.service, self.inference_id, what)

    async def _headers(self) -> dict[str, str]:
        raise NotImplementedError

    async def _post(self, url: str, body: Any) -> Any:
        return await self.caller.post(url, body, await self._headers())

    async def _generate(
        self, url: str, texts: list[str], task_settings: dict[str, Any]
    ) -> list[CompletionResult]:
        answer = await self._post(url, gemini_body(texts, task_settings))
        try:
            return [CompletionResult(gemini_text(answer))]
        except (KeyError, IndexError, TypeError) as exc:
            raise self._fail(f"missing {exc}") from exc

    async def _events(self, url: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Server-sent `streamGenerateContent` responses from `url` until the one with a finish reason."""
        events = self.caller.stream_events(url, body, await self._headers(), last=gemini_finished)
        async for event in events:
            if not isinstance(event, dict) or event.get("error"):
                raise self._fail(f"the stream sent {str(event)[:300]}")
            yield event

    async def stream_completion(
        self, texts: list[str], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[str]:
        async for event in self._events(self.stream_url, gemini_body(texts, task_settings)):
            text = stream_text(event)
            if text:
                yield text


class GoogleVertexAIRuntime(_Google):
    service = "googlevertexai"
    vertex_host: ClassVar[str] = "https://{location}-aiplatform.googleapis.com"
    ranking_host: ClassVar[str] = "https://discoveryengine.googleapis.com"
    max_batch: ClassVar[int] = 250  # instances per predict request

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        super().__init__(inference_id, caller)
        self.settings = settings
        self.project = str(settings.get("project_id", ""))
        location = str(settings.get("location", ""))
        host = self.vertex_host.format(location=location)
        self.model_url = (
            f"{host}/v1/projects/{self.project}/locations/{location}/publishers/google/models/"
            f"{settings.get('model_id', '')}"
        )
        self.token = ServiceAccountToken(service_account_info(secrets["service_account_json"]))
        # Model Garden: another publisher's model at `url` / `streaming_url` (see vertex_garden).
        self.provider = str(settings["provider"]).lower() if settings.get("provider") else None
        self.call_url = str(settings["url"]) if settings.get("url") else None
        self.streaming_url = str(settings["streaming_url"]) if settings.get("streaming_url") else None
        self.garden: dict[str, Runtime] = {}
        if self.provider not in (None, "google"):
            model = str(settings["model_id"]) if settings.get("model_id") else None
            for kind, url in (("call", self.call_url), ("stream", self.streaming_url)):
                if url:
                    self.garden[kind] = garden_runtime(
                        self.provider, inference_id, model, url, self.token, caller
                    )

    @property
    def stream_url(self) -> str:
        if self.provider == "google":
            if not self.streaming_url:
                raise StatusError(
                    "The [googlevertexai] service needs [streaming_url] in [service_settings] for this request"
                )
            return sse_url(self.streaming_url)
        return f"{self.model_url}:streamGenerateContent?alt=sse"

    def _garden(self, kind: str) -> Runtime | None:
        """The Model Garden runtime for plain (`call`) or streamed requests, None for Gemini."""
        if self.provider in (None, "google"):
            return None
        runtime = self.garden.get(kind)
        if runtime is None:
            needed = "url" if kind == "call" else "streaming_url"
            raise StatusError(
                f"The [googlevertexai] service needs [{needed}] in [service_settings] for this request"
            )
        return runtime

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        service_account_info(service_settings.get("service_account_json"))
        errors = Errors()
        errors.one_of(service_settings, "provider", PROVIDERS)
        errors.raise_any()
        provider = service_settings.get("provider")
        if provider is None and (service_settings.get("url") or service_settings.get("streaming_url")):
            errors.add(
                "[service_settings] [url] and [streaming_url] need [provider] (a Model Garden publisher)"
            )
        if provider is not None:
            if task_type not in (COMPLETION, CHAT):
                raise StatusError(
                    f"The [googlevertexai] service supports [provider] only for task types [completion, "
                    f"chat_completion], not [{task_type}]"
                )
            wanted = "streaming_url" if task_type == CHAT else "url"
            if not service_settings.get(wanted):
                errors.add(f"[service_settings] does not contain the required setting [{wanted}]")
        if provider is not None and provider != "google":
            needed: tuple[str, ...] = ()
        else:
            needed = ("project_id",) if task_type == RERANK else ("project_id", "location", "model_id")
            if provider == "google":
                needed = ()
        for key in needed:
            if not service_settings.get(key):
                errors.add(f"[service_settings] does not contain the required setting [{key}]")
        errors.one_of(service_settings, "similarity", SIMILARITIES)
        errors.positive_int(service_settings, "dimensions")
        errors.positive_int(service_settings, "max_batch_size")
        errors.positive_int(task_settings, "top_n", "task_settings")
        errors.raise_any()

    async def _headers(self) -> dict[str, str]:
        return await self.token.header(self.service, self.inference_id)

    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        kind = str(input_type) if input_type is not None else task_settings.get("input_type")
        task = _TASK_TYPES.get(str(kind)) if kind else None
        parameters: dict[str, Any] = {}
        if task_settings.get("auto_truncate") is not None:
            parameters["autoTruncate"] = task_settings["auto_truncate"]
        if self.settings.get("dimensions"):
            parameters["outputDimensionality"] = self.settings["dimensions"]
        size = int(self.settings.get("max_batch_size") or self.max_batch)
        out: list[DenseEmbedding] = []
        for start in range(0, len(texts), size):
            part = texts[start : start + size]
            instances = [{"content": t, **({"task_type": task} if task else {})} for t in part]
            body: dict[str, Any] = {
                "instances": instances,
                **({"parameters": parameters} if parameters else {}),
            }
            answer = await self._post(f"{self.model_url}:predict", body)
            try:
                rows = [[float(x) for x in p["embeddings"]["values"]] for p in answer["predictions"]]
            except (KeyError, TypeError, ValueError) as exc:
                raise self._fail(f"missing {exc}") from exc
            if len(rows) != len(part):
                raise self._fail(f"{len(rows)} embeddings for {len(part)} inputs")
            out.extend(DenseEmbedding(r) for r in rows)
        return out, "float"

    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        garden = self._garden("call")
        if garden is not None:
            return await garden.complete(texts, task_settings=task_settings, time_limit=time_limit)
        url = (
            self.call_url
            if self.provider == "google" and self.call_url
            else f"{self.model_url}:generateContent"
        )
        return await self._generate(url, texts, task_settings)

    async def stream_completion(
        self, texts: list[str], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[str]:
        garden = self._garden("stream")
        if garden is None:
            stream = super().stream_completion(texts, task_settings=task_settings)
        else:
            stream = garden.stream_completion(texts, task_settings=task_settings)
        async for delta in stream:
            yield delta

    async def stream_chat(
        self, request: dict[str, Any], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        garden = self._garden("stream")
        if garden is not None:
            async for chunk in garden.stream_chat(request, task_settings=task_settings):
                yield chunk
            return
        body = gemini_chat_body(request, task_settings)
        async for event in self._events(self.stream_url, body):
            yield unified_chat_chunk(event, self.settings.get("model_id"))

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
        body: dict[str, Any] = {}
        if self.settings.get("model_id"):
            body["model"] = self.settings["model_id"]
        body["query"] = query
        body["records"] = [{"id": str(i), "content": d} for i, d in enumerate(documents)]
        top = top_n or task_settings.get("top_n")
        if top:
            body["topN"] = top
        body["ignoreRecordDetailsInResponse"] = not return_documents
        url = (
            f"{self.ranking_host}/v1/projects/{self.project}/locations/global/rankingConfigs/"
            "default_ranking_config:rank"
        )
        answer = await self._post(url, body)
        try:
            pairs = [(int(r["id"]), float(r.get("score", 0.0))) for r in answer["records"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc
        return ranked_documents(self._fail, pairs, documents, None, return_documents)


class GoogleAIStudioRuntime(_Google):
    service = "googleaistudio"
    host: ClassVar[str] = "https://generativelanguage.googleapis.com"
    max_batch: ClassVar[int] = 100  # requests per batchEmbedContents call

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        super().__init__(inference_id, caller)
        self.settings = settings
        self.model = str(settings["model_id"])
        self.model_url = f"{self.host}/v1beta/models/{self.model}"
        self.api_key = str(secrets["api_key"])

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        errors = Errors()
        errors.one_of(service_settings, "similarity", SIMILARITIES)
        errors.positive_int(service_settings, "dimensions")
        errors.raise_any()

    async def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.api_key}

    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        task = _TASK_TYPES.get(str(input_type)) if input_type is not None else None
        out: list[DenseEmbedding] = []
        for start in range(0, len(texts), self.max_batch):
            out.extend(await self._embed(texts[start : start + self.max_batch], task))
        return out, "float"

    async def _embed(self, texts: list[str], task: str | None) -> list[DenseEmbedding]:
        requests = []
        for text in texts:
            request: dict[str, Any] = {
                "model": f"models/{self.model}",
                "content": {"parts": [{"text": text}]},
            }
            if task:
                request["taskType"] = task
            if self.settings.get("dimensions"):
                request["outputDimensionality"] = self.settings["dimensions"]
            requests.append(request)
        answer = await self._post(f"{self.model_url}:batchEmbedContents", {"requests": requests})
        try:
            rows = [[float(x) for x in e["values"]] for e in answer["embeddings"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc
        if len(rows) != len(texts):
            raise self._fail(f"{len(rows)} embeddings for {len(texts)} inputs")
        return [DenseEmbedding(r) for r in rows]

    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        return await self._generate(f"{self.model_url}:generateContent", texts, task_settings)
