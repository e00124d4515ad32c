"""The one client of Elasticsearch's `_inference` protocol, for everything that calls another
sidecar or an Elasticsearch cluster: the `elasticsearch` service's remote endpoints, and the worker,
backfill, setup and search when a pipeline names a remote `inference.url`.

Requests go through `RemoteCaller` (`sidecar.retry`'s one policy: jittered backoff on 429/5xx/transport
errors, honouring `Retry-After`). Answers are Elasticsearch's shapes (8.11's bare sparse maps
accepted): https://www.elastic.co/guide/en/elasticsearch/reference/current/post-inference-api.html
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from sidecar import redact
from sidecar.errors import NotFoundError, OverloadedError, RemoteServiceError, SidecarError
from sidecar.inference.services.remote import RemoteCaller, RetryPolicy, parse_failure
from sidecar.inference.types import (
    DenseEmbedding,
    InferenceOutput,
    InputType,
    RankedDocument,
    SparseEmbedding,
    TaskType,
)
from sidecar.rank_features import clean_features

DENSE_KEYS = (("text_embedding", "float"), ("text_embedding_bytes", "byte"), ("text_embedding_bits", "bit"))


class InferenceApiClient:
    """`GET /_inference/{id}` and `POST /_inference/{task}/{id}` against one base URL."""

    def __init__(self, base_url: str, caller: RemoteCaller, api_key: str | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.caller = caller
        self.headers = {"Authorization": f"ApiKey {api_key}"} if api_key else {}

    async def aclose(self) -> None:
        await self.caller.aclose()

    def _failure(self, what: str) -> RemoteServiceError:
        return parse_failure(self.caller.service, self.caller.inference_id, what)

    async def endpoint(self, inference_id: str) -> dict[str, Any] | None:
        """The endpoint's configuration as `GET /_inference/{id}` shows it; None when it does not exist."""
        try:
            answer = await self.caller.get(f"{self.base}/_inference/{inference_id}", self.headers)
        except RemoteServiceError as exc:
            if exc.status == 404:
                return None
            raise
        endpoints = answer.get("endpoints") if isinstance(answer, dict) else None
        if not isinstance(endpoints, list) or not endpoints or not isinstance(endpoints[0], dict):
            raise self._failure("expected [endpoints] in the endpoint's description")
        return dict(endpoints[0])

    async def _post(self, task: str, inference_id: str, body: dict[str, Any]) -> Any:
        return await self.caller.post(f"{self.base}/_inference/{task}/{inference_id}", body, self.headers)

    async def sparse(self, inference_id: str, texts: list[str]) -> list[SparseEmbedding]:
        answer = await self._post("sparse_embedding", inference_id, {"input": texts})
        rows = answer.get("sparse_embedding") if isinstance(answer, dict) else answer
        if not isinstance(rows, list) or len(rows) != len(texts):
            raise self._failure("expected one [sparse_embedding] per input")
        out = []
        for row in rows:
            if isinstance(row, dict) and isinstance(row.get("embedding"), dict):
                # What comes from outside follows the rank_features rules from here on.
                weights = clean_features(row["embedding"])
                out.append(SparseEmbedding(weights, bool(row.get("is_truncated", False))))
            elif isinstance(row, dict):  # 8.11: a bare token map
                out.append(SparseEmbedding(clean_features(row)))
            else:
                raise self._failure(f"bad sparse entry {str(row)[:200]}")
        return out

    async def dense(
        self, inference_id: str, texts: list[str], input_type: InputType | None = None
    ) -> tuple[list[DenseEmbedding], str]:
        """The vectors and their element type (`float`, `byte` or `bit`)."""
        body: dict[str, Any] = {"input": texts}
        if input_type:
            body["input_type"] = str(input_type)
        answer = await self._post("text_embedding", inference_id, body)
        for key, kind in DENSE_KEYS:
            if isinstance(answer, dict) and isinstance(answer.get(key), list) and len(answer[key]) == len(texts):
                cast = float if kind == "float" else int
                try:
                    return [DenseEmbedding([cast(x) for x in r["embedding"]]) for r in answer[key]], kind
                except (KeyError, TypeError, ValueError) as exc:
                    raise self._failure(f"bad [{key}] entry: {exc}") from exc
        raise self._failure("expected one [text_embedding] per input")

    async def rerank(
        self, inference_id: str, query: str, documents: list[str], *, top_n: int | None, return_documents: bool
    ) -> list[RankedDocument]:
        body: dict[str, Any] = {"input": documents, "query": query, "return_documents": return_documents}
        if top_n:
            body["top_n"] = top_n
        answer = await self._post("rerank", inference_id, body)
        try:
            return [
                RankedDocument(int(r["index"]), float(r["relevance_score"]), r.get("text"))
                for r in answer["rerank"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._failure(f"missing {exc}") from exc


class RemoteInference:
    """`InferenceServiceProtocol` and the worker's endpoint catalog over another sidecar's `_inference` API."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        ca_file: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        policy = RetryPolicy(timeout_s=timeout_s)
        http = client or httpx.AsyncClient(timeout=timeout_s, verify=ca_file or True)
        caller = RemoteCaller("sidecar", redact.url(url), requests_per_minute=0, policy=policy, client=http)
        self._owned = client is None
        self.api = InferenceApiClient(url, caller, api_key)
        self._task_types: dict[str, TaskType] = {}

    async def _describe(self, inference_id: str) -> dict[str, Any]:
        endpoint = await self.api.endpoint(inference_id)
        if endpoint is None:
            raise NotFoundError(f"Inference endpoint not found [{inference_id}]")
        return endpoint

    async def task_type(self, inference_id: str) -> TaskType | None:
        if inference_id not in self._task_types:
            endpoint = await self.api.endpoint(inference_id)
            if endpoint is None:
                return None
            self._task_types[inference_id] = TaskType(endpoint["task_type"])
        return self._task_types[inference_id]

    async def dimensions(self, inference_id: str) -> int:
        dims = (await self._describe(inference_id)).get("service_settings", {}).get("dimensions")
        if isinstance(dims, int):
            return dims
        probe = await self.infer(inference_id, ["dimensions probe"], task_type=TaskType.TEXT_EMBEDDING)
        return len(probe.results[0].embedding)

    def set_pipeline_usage(self, pipeline: str, inference_ids: list[str]) -> None:
        """The remote registry is not ours to lock; nothing to record."""

    async def infer(
        self,
        inference_id: str,
        inputs: list[str],
        *,
        task_type: TaskType | None = None,
        query: str | None = None,
        input_type: InputType | None = None,
        task_settings: dict[str, Any] | None = None,
        top_n: int | None = None,
        return_documents: bool | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the protocol's signature
    ) -> InferenceOutput:
        kind = task_type or await self.task_type(inference_id)
        if kind is None:
            raise NotFoundError(f"Inference endpoint not found [{inference_id}]")
        try:
            if kind is TaskType.SPARSE_EMBEDDING:
                return InferenceOutput(kind, list(await self.api.sparse(inference_id, inputs)))
            if kind is TaskType.TEXT_EMBEDDING:
                vectors, _ = await self.api.dense(inference_id, inputs, input_type)
                return InferenceOutput(kind, list(vectors))
        except RemoteServiceError as exc:
            raise _typed(exc) from exc
        raise SidecarError(f"remote inference encodes with sparse or text embeddings, not [{kind}]")

    def stream_completion(
        self,
        inference_id: str,
        inputs: list[str],
        *,
        task_type: TaskType | None = None,
        task_settings: dict[str, Any] | None = None,
    ) -> AsyncIterator[str]:
        raise SidecarError("remote inference does not stream completions")

    async def close(self) -> None:
        if self._owned:
            await self.api.aclose()


def _typed(exc: RemoteServiceError) -> SidecarError:
    """The remote sidecar's answer as this project's own error: a missing endpoint, or an overload."""
    if exc.status == 404:
        return NotFoundError(exc.reason)
    if exc.status == 429:
        return OverloadedError(exc.reason)
    return exc
