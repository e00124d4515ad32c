"""Voyage AI and Jina AI: embeddings answered in OpenAI's `data[]` shape, and their rerankers.

Voyage AI (`https://api.voyageai.com/v1`): `/embeddings` with `{"input", "model", "input_type"?:
"document" | "query", "truncation"?, "output_dimension"?, "output_dtype"?}`; `/rerank` with
`{"query", "documents", "model", "top_k"?, "return_documents"?, "truncation"?}` answered by
`{"data": [{"index", "relevance_score", "document"?}]}`.

Jina AI (`https://api.jina.ai/v1`): `/embeddings` with `{"model", "input", "task"?, "embedding_type"?,
"dimensions"?, "late_chunking"?}` (`task`: `retrieval.passage` | `retrieval.query` |
`classification` | `separation`; `input` items are `{"text"}` objects for a `multimodal_model`, which
also serves the 9.x `embedding` task with text content); `/rerank` with `{"model", "query", "documents", "top_n"?,
"return_documents"?}` answered by `{"results": [{"index", "relevance_score", "document"?}]}`.

Both authenticate with `Authorization: Bearer <api_key>` and answer errors as `{"detail": ...}`.
`embedding_type` `int8`/`byte` gives byte vectors, `bit`/`binary` packed bits, as in Elasticsearch.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sidecar.inference.services.openai_compatible import OpenAICompatibleRuntime, ranked_documents
from sidecar.inference.services.remote import RemoteCaller
from sidecar.inference.services.validation import Errors
from sidecar.inference.types import InputType, RankedDocument, TaskType


class _EmbedAndRerank(OpenAICompatibleRuntime):
    # Elasticsearch's embedding_type -> (the provider's wire value, the element type returned)
    embedding_types: ClassVar[dict[str, tuple[str, str]]]
    rerank_top_key: ClassVar[str]
    rerank_results_key: ClassVar[str]

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        super().__init__(inference_id, settings, secrets, caller)
        kind = settings.get("embedding_type")
        self.wire_type = None
        if kind is not None:
            self.wire_type, self.element_type = self.embedding_types[str(kind).lower()]

    @classmethod
    def check_task_settings(cls, task_settings: dict[str, Any], errors: Errors) -> None:
        errors.one_of(
            task_settings, "input_type", ("ingest", "search", "classification", "clustering"), "task_settings"
        )
        errors.positive_int(task_settings, cls.rerank_top_key, "task_settings")

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        errors = Errors()
        errors.one_of(service_settings, "embedding_type", tuple(cls.embedding_types))
        errors.raise_any()
        super().check_settings(task_type, service_settings, task_settings)

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
        body: dict[str, Any] = {"model": self.model, "query": query, "documents": documents}
        top = top_n or task_settings.get(self.rerank_top_key)
        if top:
            body[self.rerank_top_key] = top
        body["return_documents"] = return_documents
        if task_settings.get("truncation") is not None:
            body["truncation"] = task_settings["truncation"]
        answer = await self._post("rerank", body, task_settings)
        try:
            results = answer[self.rerank_results_key]
            pairs = [(int(r["index"]), float(r["relevance_score"])) for r in results]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc
        return ranked_documents(self._fail, pairs, documents, top, return_documents)


class VoyageAIRuntime(_EmbedAndRerank):
    service = "voyageai"
    embeddings_url = "https://api.voyageai.com/v1/embeddings"
    rerank_url = "https://api.voyageai.com/v1/rerank"
    max_inputs = 1000
    embedding_types: ClassVar[dict[str, tuple[str, str]]] = {
        "float": ("float", "float"),
        "int8": ("int8", "byte"),
        "byte": ("int8", "byte"),
        "bit": ("binary", "bit"),
        "binary": ("binary", "bit"),
    }
    rerank_top_key = "top_k"
    rerank_results_key = "data"
    _INPUT_TYPES: ClassVar[dict[str, str]] = {"ingest": "document", "search": "query"}

    def embedding_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"input": texts, "model": self.model}
        kind = str(input_type) if input_type is not None else task_settings.get("input_type")
        if kind in self._INPUT_TYPES:
            body["input_type"] = self._INPUT_TYPES[str(kind)]
        if task_settings.get("truncation") is not None:
            body["truncation"] = task_settings["truncation"]
        if self.settings.get("dimensions"):
            body["output_dimension"] = self.settings["dimensions"]
        if self.wire_type:
            body["output_dtype"] = self.wire_type
        return body


class JinaAIRuntime(_EmbedAndRerank):
    service = "jinaai"
    embeddings_url = "https://api.jina.ai/v1/embeddings"
    rerank_url = "https://api.jina.ai/v1/rerank"
    embedding_types: ClassVar[dict[str, tuple[str, str]]] = {
        "float": ("float", "float"),
        "bit": ("binary", "bit"),
        "binary": ("binary", "bit"),
    }
    rerank_top_key = "top_n"
    rerank_results_key = "results"

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        multimodal = service_settings.get("multimodal_model")
        if multimodal is not None and not isinstance(multimodal, bool):
            errors = Errors()
            errors.add(
                f"[service_settings] Invalid value [{multimodal}]. [multimodal_model] must be a boolean"
            )
            errors.raise_any()
        super().check_settings(task_type, service_settings, task_settings)

    _TASKS: ClassVar[dict[str, str]] = {
        "ingest": "retrieval.passage",
        "search": "retrieval.query",
        "classification": "classification",
        "clustering": "separation",
    }

    def embedding_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        # Multimodal models (jina-clip, jina-embeddings-v4) take content objects; text ones strings.
        inputs: list[Any] = [{"text": t} for t in texts] if self.settings.get("multimodal_model") else texts
        body: dict[str, Any] = {"model": self.model, "input": inputs}
        kind = str(input_type) if input_type is not None else task_settings.get("input_type")
        if kind in self._TASKS:
            body["task"] = self._TASKS[str(kind)]
        if self.wire_type:
            body["embedding_type"] = self.wire_type
        if self.settings.get("dimensions"):
            body["dimensions"] = self.settings["dimensions"]
        if task_settings.get("late_chunking") is not None:
            body["late_chunking"] = task_settings["late_chunking"]
        return body
