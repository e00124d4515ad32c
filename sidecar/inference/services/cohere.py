"""Cohere embed (`POST /v1/embed`) and rerank (`POST /v1/rerank`).

Embed request `{"texts", "model", "input_type", "embedding_types": [t], "truncate"}`; answer
`{"embeddings": {"float": [[...]]}}` (by type) or `{"embeddings": [[...]]}` (floats).
Rerank request `{"model", "query", "documents", "top_n", "return_documents"}`; answer
`{"results": [{"index", "relevance_score", "document"?: {"text"}}]}`. Completion: the v2 chat API,
`POST /v2/chat` with `{"messages", "model"?, "stream": false}`; answer
`{"message": {"content": [{"type": "text", "text"}]}}`. Errors: `{"message": ...}`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sidecar.errors import SettingsValidationError
from sidecar.inference.services.base import Runtime
from sidecar.inference.services.remote import RemoteCaller, parse_failure
from sidecar.inference.types import CompletionResult, DenseEmbedding, InputType, RankedDocument

DEFAULT_URL = "https://api.cohere.com"
MAX_TEXTS = 96  # per Cohere embed request
_INPUT_TYPES = {
    InputType.INGEST: "search_document",
    InputType.SEARCH: "search_query",
    InputType.CLASSIFICATION: "classification",
    InputType.CLUSTERING: "clustering",
}
_EMBEDDING_TYPES = {
    "float": ("float", "float"),
    "byte": ("int8", "byte"),
    "int8": ("int8", "byte"),
    "bit": ("binary", "bit"),
    "binary": ("binary", "bit"),
}


class CohereRuntime(Runtime):
    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        self.inference_id = inference_id
        self.base = str(settings.get("url") or DEFAULT_URL).rstrip("/")
        self.model = settings.get("model_id")
        kind = str(settings.get("embedding_type", "float"))
        if kind not in _EMBEDDING_TYPES:
            raise SettingsValidationError(
                f"[service_settings] Invalid value [{kind}] received. [embedding_type] "
                f"must be one of [{', '.join(_EMBEDDING_TYPES)}]"
            )
        self.wire_type, self.es_type = _EMBEDDING_TYPES[kind]
        self.caller = caller
        self.headers = {"Authorization": f"Bearer {secrets['api_key']}"}

    async def aclose(self) -> None:
        await self.caller.aclose()

    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        out: list[DenseEmbedding] = []
        cohere_type = _INPUT_TYPES.get(input_type) if input_type else task_settings.get("input_type")
        for start in range(0, len(texts), MAX_TEXTS):
            part = texts[start : start + MAX_TEXTS]
            body: dict[str, Any] = {
                "texts": part,
                "embedding_types": [self.wire_type],
                "input_type": cohere_type or "search_document",
            }
            if self.model:
                body["model"] = self.model
            if task_settings.get("truncate"):
                body["truncate"] = task_settings["truncate"]
            answer = await self.caller.post(f"{self.base}/v1/embed", body, self.headers)
            embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
            if isinstance(embeddings, dict):
                embeddings = embeddings.get(self.wire_type)
            if not isinstance(embeddings, list) or len(embeddings) != len(part):
                raise parse_failure(
                    "cohere", self.inference_id, f"no [{self.wire_type}] embeddings for each text"
                )
            cast = float if self.es_type == "float" else int
            out.extend(DenseEmbedding([cast(x) for x in e]) for e in embeddings)
        return out, self.es_type

    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        """Cohere's v2 chat API: every input one user turn; the answer's text blocks joined."""
        body: dict[str, Any] = {"messages": [{"role": "user", "content": t} for t in texts], "stream": False}
        if self.model:
            body["model"] = self.model
        answer = await self.caller.post(f"{self.base}/v2/chat", body, self.headers)
        try:
            blocks = answer["message"]["content"]
            text = "".join(str(b["text"]) for b in blocks if b.get("type") == "text")
        except (KeyError, TypeError, AttributeError) as exc:
            raise parse_failure("cohere", self.inference_id, f"missing {exc}") from exc
        return [CompletionResult(text)]

    async def stream_completion(
        self, texts: list[str], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[str]:
        """The v2 chat stream: `content-delta` events' `delta.message.content.text` until
        `message-end`."""
        body: dict[str, Any] = {"messages": [{"role": "user", "content": t} for t in texts], "stream": True}
        if self.model:
            body["model"] = self.model
        events = self.caller.stream_events(
            f"{self.base}/v2/chat",
            body,
            self.headers,
            last=lambda event: isinstance(event, dict) and event.get("type") == "message-end",
        )
        async for event in events:
            if not isinstance(event, dict):
                raise parse_failure("cohere", self.inference_id, "a streamed event is not an object")
            if event.get("type") != "content-delta":
                continue
            text = (((event.get("delta") or {}).get("message") or {}).get("content") or {}).get("text")
            if text:
                yield str(text)

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
        body: dict[str, Any] = {"query": query, "documents": documents, "return_documents": return_documents}
        if self.model:
            body["model"] = self.model
        top = top_n or task_settings.get("top_n")
        if top:
            body["top_n"] = top
        answer = await self.caller.post(f"{self.base}/v1/rerank", body, self.headers)
        try:
            ranked = [
                RankedDocument(
                    int(r["index"]),
                    float(r["relevance_score"]),
                    documents[int(r["index"])] if return_documents else None,
                )
                for r in answer["results"]
            ]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise parse_failure("cohere", self.inference_id, f"missing {exc}") from exc
        return sorted(ranked, key=lambda r: -r.relevance_score)
