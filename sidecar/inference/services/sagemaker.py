"""Amazon SageMaker endpoints, invoked through the SageMaker runtime API with AWS Signature V4.

`POST https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{endpoint_name}/invocations`
(`url`, a sidecar extension, replaces the host), service `sagemaker`, with the optional
`X-Amzn-SageMaker-*` headers (target model / container / variant, inference component, custom
attributes, session and inference ids, explanations) from the settings. The body follows `api`:
- `openai`: OpenAI's embeddings and chat formats (text_embedding, completion);
- `elastic`: Elasticsearch's own inference formats: `{"input", "input_type"?, "query"?,
  "return_documents"?, "top_n"?}` answered by `{"text_embedding" | "text_embedding_bytes" |
  "text_embedding_bits" | "sparse_embedding" | "rerank" | "completion": [...]}` (so another
  sidecar, or any model server speaking that format, can sit behind the endpoint).
InvokeEndpointWithResponseStream's binary event stream is not spoken: `_stream` answers with the
whole completion as one delta, and `chat_completion` (`openai` api) sends one chat request and
answers it as one unified chunk.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from sidecar.errors import StatusError
from sidecar.inference.services.aws_sigv4 import SigV4
from sidecar.inference.services.base import CHAT, COMPLETION, DENSE, RERANK, SPARSE, Runtime
from sidecar.inference.services.openai_compatible import (
    OpenAICompatibleRuntime,
    completion_chunk,
    ranked_documents,
)
from sidecar.inference.services.remote import RemoteCaller
from sidecar.inference.services.validation import SIMILARITIES, Errors
from sidecar.inference.types import (
    CompletionResult,
    InputType,
    RankedDocument,
    SparseEmbedding,
    TaskType,
)

API_TASKS = {
    "openai": frozenset({DENSE, COMPLETION, CHAT}),
    "elastic": frozenset({DENSE, SPARSE, RERANK, COMPLETION}),
}
_SETTING_HEADERS = {
    "target_model": "X-Amzn-SageMaker-Target-Model",
    "target_container_hostname": "X-Amzn-SageMaker-Target-Container-Hostname",
    "inference_component_name": "X-Amzn-SageMaker-Inference-Component",
}
_TASK_HEADERS = {
    "custom_attributes": "X-Amzn-SageMaker-Custom-Attributes",
    "enable_explanations": "X-Amzn-SageMaker-Enable-Explanations",
    "inference_id": "X-Amzn-SageMaker-Inference-Id",
    "session_id": "X-Amzn-SageMaker-Session-Id",
    "target_variant": "X-Amzn-SageMaker-Target-Variant",
}
_ELASTIC_EMBEDDING_KEYS = {
    "float": "text_embedding",
    "byte": "text_embedding_bytes",
    "bit": "text_embedding_bits",
}
DEFAULT_BATCH_SIZE = 256
# Task settings of the service itself (headers, `user`); the elastic api passes any other on.
_SAGEMAKER_TASK_SETTINGS = frozenset({*_TASK_HEADERS, "user"})


class SageMakerRuntime(OpenAICompatibleRuntime):
    service = "amazon_sagemaker"

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        super().__init__(inference_id, settings, {}, caller)
        region = str(settings["region"])
        host = str(settings.get("url") or f"https://runtime.sagemaker.{region}.amazonaws.com").rstrip("/")
        url = f"{host}/endpoints/{quote(str(settings['endpoint_name']), safe='')}/invocations"
        self.endpoints = {"embeddings": url, "chat": url, "rerank": url}
        self.api = str(settings["api"])
        self.batch_size = int(settings.get("batch_size") or DEFAULT_BATCH_SIZE)
        if self.api == "elastic":
            self.element_type = str(settings.get("element_type", "float"))
        self.auth = SigV4(str(secrets["access_key"]), str(secrets["secret_key"]), region, "sagemaker")
        self.fixed_headers = {h: str(settings[k]) for k, h in _SETTING_HEADERS.items() if settings.get(k)}

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        errors = Errors()
        errors.one_of(service_settings, "api", tuple(API_TASKS))
        errors.one_of(service_settings, "similarity", SIMILARITIES)
        errors.one_of(service_settings, "element_type", ("byte", "float", "bit"))
        errors.positive_int(service_settings, "batch_size")
        errors.positive_int(service_settings, "dimensions")
        errors.raise_any()
        api = str(service_settings["api"]).lower()
        if task_type not in API_TASKS[api]:
            raise StatusError(
                f"The [{api}] api of the [amazon_sagemaker] service does not support task type [{task_type}]"
            )
        if api == "elastic" and task_type == DENSE and not service_settings.get("element_type"):
            errors.add("[service_settings] does not contain the required setting [element_type]")
        errors.raise_any()

    @classmethod
    def free_task_settings(cls, service_settings: dict[str, Any]) -> bool:
        return str(service_settings.get("api", "")).lower() == "elastic"

    async def _headers(self, task_settings: dict[str, Any]) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self.fixed_headers}
        headers.update({h: str(task_settings[k]) for k, h in _TASK_HEADERS.items() if task_settings.get(k)})
        return headers

    async def _post(self, kind: str, body: Any, task_settings: dict[str, Any]) -> Any:
        # Serialised here so that the signed bytes are the bytes sent.
        return await self.caller.post(
            self._endpoint(kind),
            None,
            await self._headers(task_settings),
            content=json.dumps(body, ensure_ascii=False),
            auth=self.auth,
        )

    # --- the `elastic` API ------------------------------------------------------------------------
    def _elastic_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"input": texts if len(texts) > 1 else texts[0]}
        if input_type is not None:
            body["input_type"] = str(input_type)
        passthrough = {k: v for k, v in task_settings.items() if k not in _SAGEMAKER_TASK_SETTINGS}
        if passthrough:  # Elasticsearch passes the elastic api's other task settings on as they are
            body["task_settings"] = passthrough
        return body

    def _results(self, answer: Any, key: str) -> list[Any]:
        rows = answer.get(key) if isinstance(answer, dict) else None
        if not isinstance(rows, list):
            raise self._fail(f"no [{key}] list in the answer")
        return rows

    def embedding_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        if self.api == "elastic":
            return self._elastic_body(texts, input_type, task_settings)
        body = super().embedding_body(texts, input_type, task_settings)
        body.pop("model", None)
        body.pop("encoding_format", None)
        return body

    def embedding_rows(self, answer: Any) -> list[list[float]] | list[list[int]]:
        if self.api != "elastic":
            return super().embedding_rows(answer)
        cast = float if self.element_type == "float" else int
        try:
            return [
                [cast(x) for x in r["embedding"]]
                for r in self._results(answer, _ELASTIC_EMBEDDING_KEYS[self.element_type])
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"bad embedding: {exc}") from exc

    async def sparse(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> list[SparseEmbedding]:
        out: list[SparseEmbedding] = []
        for start in range(0, len(texts), self.batch_size):
            part = texts[start : start + self.batch_size]
            answer = await self._post(
                "embeddings", self._elastic_body(part, input_type, task_settings), task_settings
            )
            rows = self._results(answer, "sparse_embedding")
            if len(rows) != len(part):
                raise self._fail(f"{len(rows)} sparse embeddings for {len(part)} inputs")
            try:
                out.extend(
                    SparseEmbedding(
                        {str(k): float(v) for k, v in r["embedding"].items()}, bool(r.get("is_truncated"))
                    )
                    for r in rows
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise self._fail(f"bad sparse embedding: {exc}") from exc
        return out

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
        body: dict[str, Any] = {"input": documents if len(documents) > 1 else documents[0], "query": query}
        body["return_documents"] = return_documents
        if top_n:
            body["top_n"] = top_n
        body.update(
            {k: v for k, v in self._elastic_body(documents, None, task_settings).items() if k != "input"}
        )
        rows = self._results(await self._post("rerank", body, task_settings), "rerank")
        try:
            pairs = [(int(r["index"]), float(r["relevance_score"])) for r in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc
        return ranked_documents(self._fail, pairs, documents, top_n, return_documents)

    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        if self.api != "elastic":
            return await super().complete(texts, task_settings=task_settings, time_limit=time_limit)
        rows = self._results(
            await self._post("chat", self._elastic_body(texts, None, task_settings), task_settings),
            "completion",
        )
        try:
            return [CompletionResult(str(r["result"])) for r in rows]
        except (KeyError, TypeError) as exc:
            raise self._fail(f"missing {exc}") from exc

    def completion_body(
        self, texts: list[str], task_settings: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        body = super().completion_body(texts, task_settings, stream)
        body.pop("model", None)
        return body

    stream_completion = Runtime.whole_completion_as_delta  # the response stream's binary event framing is not spoken

    async def stream_chat(
        self, request: dict[str, Any], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """`openai` api: one chat request (not streamed), its answer as one unified chunk."""
        body = self.chat_body(request)
        for key in ("stream", "stream_options", "model"):
            body.pop(key, None)
        answer = await self._post("chat", body, task_settings)
        try:
            yield completion_chunk(answer)
        except (ValueError, TypeError, AttributeError) as exc:
            raise self._fail(str(exc)) from exc
