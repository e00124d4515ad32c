"""The one inference service every entry point calls (HTTP routes, worker, ingest hook, backfill).

    infer(id, inputs) -> validate request -> registry.get(id) -> runtime for the endpoint
        local  (`elasticsearch` + model_id): chunk -> batching engine (model thread) -> rank_features rules
        remote (hugging_face | openai | cohere | elasticsearch + url): httpx with retries + rate limit

Runtimes are cached per endpoint configuration; local models are shared by all endpoints that use
them and load on first use (or at `start(preload=...)`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from typing import Any, TypeVar

from sidecar.errors import RequestValidationError, SidecarError, StatusError, TimeoutError_
from sidecar.inference.aliases import ModelAliases
from sidecar.inference.executor import EnginePool
from sidecar.inference.models import check_local_model_id
from sidecar.inference.registry import Endpoint, EndpointRegistry, with_task_settings
from sidecar.inference.services.base import (
    REMOTE_ELASTICSEARCH,
    Runtime,
    default_requests_per_minute,
    runtime_class,
    spec_for,
    streaming_refusal,
    unknown_task_settings,
)
from sidecar.inference.services.local import LocalRuntime
from sidecar.inference.services.remote import RemoteCaller, RetryPolicy, rate_limit_from
from sidecar.inference.types import InferenceOutput, InputType, SparseEmbedding, TaskType
from sidecar.observability import metrics
from sidecar.rank_features import Pruning, clean_features
from sidecar.settings import Settings

DEFAULT_TIMEOUT_S = 30.0
T = TypeVar("T")
_DENSE_TASKS = (TaskType.TEXT_EMBEDDING, TaskType.EMBEDDING)
# Similarity Elasticsearch fills in for a dense endpoint that names none.
_DEFAULT_SIMILARITY = {"openai": "dot_product"}
_RATE_LIMITS = {"hugging_face": 3000.0, "cohere": 10000.0, "elasticsearch": 240000.0}


class InferenceService:
    def __init__(
        self, settings: Settings, registry: EndpointRegistry, *, retry_policy: RetryPolicy | None = None
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.pool = EnginePool(settings)
        self.retry_policy = retry_policy or RetryPolicy()
        self.aliases = ModelAliases(settings.model_aliases)
        self._runtimes: dict[str, tuple[str, Runtime]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> InferenceService:
        return cls(settings, EndpointRegistry.from_settings(settings))

    async def start(self, preload: Iterable[str] = ()) -> None:
        """Load (and warm up) the models of the given endpoints now instead of on first use."""
        self.aliases.log_table()  # which real model serves each Elasticsearch built-in id
        for inference_id in preload:
            await self._load(self.registry.get(inference_id))

    async def _load(self, endpoint: Endpoint) -> None:
        """Load the endpoint's local model, if it has one and it is not loaded yet (no-op after)."""
        runtime = self._runtime(endpoint)
        if isinstance(runtime, LocalRuntime):
            kind = "sparse" if endpoint.task_type == TaskType.SPARSE_EMBEDDING else "dense"
            await self.pool.engine(kind, runtime.model_id, runtime.max_length)

    async def close(self) -> None:
        runtimes, self._runtimes = list(self._runtimes.values()), {}
        for _, runtime in runtimes:
            await runtime.aclose()
        await self.pool.close()
        self.registry.close()

    async def dimensions(self, inference_id: str) -> int:
        """Vector size of a text_embedding endpoint (configured `dimensions`, else measured)."""
        endpoint = self.registry.get(inference_id, TaskType.TEXT_EMBEDDING)
        configured = endpoint.service_settings.get("dimensions")
        if isinstance(configured, int) and configured > 0:
            return configured
        runtime = self._runtime(endpoint)
        if hasattr(runtime, "dimensions") and callable(runtime.dimensions):
            return int(await runtime.dimensions())
        vectors, _ = await runtime.dense(
            ["dimension probe"], input_type=None, task_settings={}, time_limit=None
        )
        return len(vectors[0].embedding)

    def endpoint_warnings(self, endpoint: Endpoint) -> list[str]:
        """`Warning` headers every answer about this endpoint carries (a stand-in model serves it)."""
        if endpoint.service != "elasticsearch" or "url" in endpoint.service_settings:
            return []
        warning = self.aliases.stand_in_warning(str(endpoint.service_settings.get("model_id", "")))
        return [warning] if warning else []

    async def probe(self, endpoint: Endpoint) -> Endpoint:
        """Elasticsearch's `checkModelConfig` before an endpoint is stored: load the local model (or
        call the provider once), and fill `dimensions`/`similarity` of a dense endpoint. A model
        that cannot serve is refused now with a 400 naming the cause, never on a later request."""
        # One attempt, as Elasticsearch's validation call: a PUT must not wait out retries.
        runtime = self._build_runtime(endpoint, replace(self.retry_policy, max_retries=0))
        local = isinstance(runtime, LocalRuntime)
        try:
            if isinstance(runtime, LocalRuntime):
                kind = "sparse" if endpoint.task_type == TaskType.SPARSE_EMBEDDING else "dense"
                engine = await self.pool.engine(kind, runtime.model_id, runtime.max_length)
                measured = getattr(engine.backend, "dimensions", None) if kind == "dense" else None
            elif self.settings.probe_remote_on_create:
                measured = await _probe_call(runtime, endpoint.task_type)
            else:
                return endpoint
        except Exception as exc:  # any failure here means the endpoint could never serve
            cause = exc.reason if isinstance(exc, SidecarError) else f"{type(exc).__name__}: {exc}"
            if local:
                given = endpoint.service_settings.get("model_id")
                raise StatusError(
                    f"Could not load model [{given}] for inference endpoint [{endpoint.inference_id}]: "
                    f"{cause}"
                ) from exc
            # Elasticsearch's sentence; the provider's error follows as `caused_by`.
            raise StatusError(
                "Could not complete inference endpoint creation as validation call to service threw "
                "an exception."
            ) from exc
        finally:
            if not local:
                await runtime.aclose()
        if endpoint.task_type not in _DENSE_TASKS or measured is None:
            return endpoint
        settings = dict(endpoint.service_settings)
        configured = settings.get("dimensions")
        if configured is not None and configured != measured:
            raise StatusError(
                f"The retrieved embeddings size [{measured}] does not match the size specified in the "
                f"settings [{configured}]. Please recreate the [{endpoint.inference_id}] configuration "
                "with the correct dimensions"
            )
        settings["dimensions"] = int(measured)
        settings.setdefault("similarity", _DEFAULT_SIMILARITY.get(endpoint.service, "cosine"))
        return replace(endpoint, service_settings=settings)

    def _check_local_files(self, e: Endpoint, *, local: bool) -> None:
        """Files an endpoint names (a local model, a `hugging_face` sparse vocabulary) must be
        packaged models, hub ids or under `SIDECAR_MODEL_DIRS` (operator aliases are trusted)."""
        settings = e.service_settings
        if local:
            named = [settings.get("model_id")]
        elif e.service == "hugging_face" and e.task_type == TaskType.SPARSE_EMBEDDING:
            named = [settings.get("vocab") or settings.get("model_id")]
        else:
            return
        for name in named:
            if isinstance(name, str) and name and self.aliases.get(name) is None:
                check_local_model_id(name, self.settings.model_dirs)

    def _runtime(self, endpoint: Endpoint) -> Runtime:
        key = endpoint.config_key()
        cached = self._runtimes.get(endpoint.inference_id)
        if cached and cached[0] == key:
            return cached[1]
        runtime = self._build_runtime(endpoint)
        if cached:  # configuration changed: the old runtime's client is no longer needed
            asyncio.get_running_loop().create_task(cached[1].aclose())
        self._runtimes[endpoint.inference_id] = (key, runtime)
        return runtime

    def _build_runtime(self, e: Endpoint, policy: RetryPolicy | None = None) -> Runtime:
        spec = spec_for(e.service, e.service_settings, e.inference_id)
        self._check_local_files(e, local=spec is not REMOTE_ELASTICSEARCH and e.service == "elasticsearch")
        if spec is not REMOTE_ELASTICSEARCH and e.service == "elasticsearch":
            return LocalRuntime(self.pool, e.service_settings, e.chunking, self.aliases)
        caller = RemoteCaller(
            e.service,
            e.inference_id,
            policy=policy or self.retry_policy,
            requests_per_minute=rate_limit_from(
                e.service_settings,
                _RATE_LIMITS.get(e.service) or default_requests_per_minute(spec, e.task_type),
            ),
        )
        if e.service == "hugging_face":
            from sidecar.inference.services.hugging_face import HuggingFaceRuntime as cls
        elif e.service == "openai":
            from sidecar.inference.services.openai import OpenAIRuntime as cls  # type: ignore[assignment]
        elif e.service == "cohere":
            from sidecar.inference.services.cohere import CohereRuntime as cls  # type: ignore[assignment]
        elif spec.runtime:
            cls = runtime_class(spec)  # type: ignore[assignment,misc]
        else:
            from sidecar.inference.services.elasticsearch import ElasticsearchRuntime as cls  # type: ignore[assignment]
        return cls(e.inference_id, e.service_settings, e.secrets, caller)

    def _validate(
        self,
        task: TaskType,
        inputs: Any,
        query: str | None,
        input_type: InputType | None,
        top_n: int | None,
        return_documents: bool | None,
    ) -> None:
        def fail(msg: str) -> None:
            raise RequestValidationError(f"Validation Failed: 1: {msg};")

        if inputs is None:
            fail("Field [input] cannot be null")
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            fail("Field [input] must be a string or an array of strings")
        if not inputs:
            fail("Field [input] cannot be an empty array")
        if len(inputs) > self.settings.max_inputs_per_request:
            fail(
                f"Field [input] has [{len(inputs)}] items, more than the maximum of "
                f"[{self.settings.max_inputs_per_request}]"
            )
        for i, text in enumerate(inputs):
            if len(text) > self.settings.max_input_chars:
                fail(
                    f"Field [input][{i}] has [{len(text)}] characters, more than the maximum of "
                    f"[{self.settings.max_input_chars}]"
                )
        if task in _DENSE_TASKS:  # no vector stands for "no text" (a zero vector has no cosine)
            for i, text in enumerate(inputs):
                if not text.strip():
                    fail(f"Field [input][{i}] cannot be empty or whitespace only for task type [{task}]")
        if task == TaskType.RERANK:
            if query is None:
                fail("Field [query] cannot be null for task type [rerank]")
            if query == "":
                fail("Field [query] cannot be empty for task type [rerank]")
            if top_n is not None and (not isinstance(top_n, int) or top_n < 1):
                fail("Field [top_n] must be a positive integer")
            return
        if query is not None:
            fail(f"Field [query] cannot be provided for task type [{task}]")
        if top_n is not None or return_documents is not None:
            fail(f"Fields [top_n] and [return_documents] cannot be provided for task type [{task}]")
        if input_type is not None and task not in (TaskType.TEXT_EMBEDDING, TaskType.EMBEDDING):
            fail(f"Field [input_type] cannot be provided for task type [{task}]")

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
        timeout: float | None = None,  # noqa: ASYNC109 - the protocol's (Elasticsearch's) parameter name
    ) -> InferenceOutput:
        started = time.perf_counter()
        endpoint = self.registry.get(inference_id, task_type)
        task = endpoint.task_type
        labels = (inference_id, str(task))
        try:
            self._validate(task, inputs, query, input_type, top_n, return_documents)
            endpoint = with_task_settings(endpoint, task_settings)
            if task_settings:
                spec = spec_for(endpoint.service, endpoint.service_settings, inference_id)
                unknown = set(unknown_task_settings(spec, endpoint.service_settings, task_settings))
                if unknown:
                    raise StatusError(
                        f"Model configuration contains settings {sorted(unknown)} unknown to the "
                        f"[{endpoint.service}] service"
                    )
            # A model still loading is the service's start-up, not this request's work: wait for it
            # before the request's time limit starts (concurrent first requests share one load).
            await self._load(endpoint)
            limit = timeout if timeout is not None else DEFAULT_TIMEOUT_S
            try:
                output = await asyncio.wait_for(
                    self._perform(endpoint, inputs, query, input_type, top_n, return_documents, limit),
                    limit,
                )
            except TimeoutError as exc:
                raise TimeoutError_(f"Request timed out after [{limit}s]") from exc
        except SidecarError as exc:
            metrics.INFERENCE_ERRORS.labels(*labels, exc.es_type).inc()
            raise
        metrics.INFERENCE_REQUESTS.labels(*labels).inc()
        metrics.INFERENCE_REQUEST_SECONDS.labels(*labels).observe(time.perf_counter() - started)
        return output

    async def _perform(
        self,
        endpoint: Endpoint,
        inputs: list[str],
        query: str | None,
        input_type: InputType | None,
        top_n: int | None,
        return_documents: bool | None,
        time_limit: float,
    ) -> InferenceOutput:
        runtime = self._runtime(endpoint)
        task, ts = endpoint.task_type, endpoint.task_settings
        if task == TaskType.SPARSE_EMBEDDING:
            # A text with no content has no terms: an empty map, without asking the model (which
            # would answer with the weights of its special tokens alone).
            texts = [text for text in inputs if text.strip()]
            results = (
                await runtime.sparse(texts, input_type=input_type, task_settings=ts, time_limit=time_limit)
                if texts
                else []
            )
            if not isinstance(runtime, LocalRuntime):  # remote output: enforce rank_features rules here
                pruning = Pruning.from_dict(ts.get("pruning", endpoint.service_settings.get("pruning")))
                results = [
                    SparseEmbedding(clean_features(r.embedding, pruning), r.is_truncated) for r in results
                ]
            if len(texts) < len(inputs):
                if len(results) != len(texts):
                    raise SidecarError(
                        f"endpoint [{endpoint.inference_id}] returned {len(results)} results for "
                        f"{len(texts)} inputs"
                    )
                answers = iter(results)
                results = [next(answers) if t.strip() else SparseEmbedding({}) for t in inputs]
            return InferenceOutput(task, list(results))
        if task in (TaskType.TEXT_EMBEDDING, TaskType.EMBEDDING):
            vectors, kind = await runtime.dense(
                inputs, input_type=input_type, task_settings=ts, time_limit=time_limit
            )
            return InferenceOutput(task, list(vectors), embedding_type=kind)
        if task == TaskType.RERANK:
            assert query is not None  # noqa: S101 - validated above
            # Request fields win over task_settings (request's over stored, already merged in `ts`).
            top = top_n if top_n is not None else ts.get("top_n")
            documents = return_documents if return_documents is not None else ts.get("return_documents")
            if documents is None:  # Elasticsearch's own rerank models return the documents by default
                documents = isinstance(runtime, LocalRuntime)
            ranked = await runtime.rerank(
                query,
                inputs,
                top_n=top,
                return_documents=bool(documents),
                task_settings=ts,
                time_limit=time_limit,
            )
            ranked = [r if documents else replace(r, text=None) for r in ranked]
            return InferenceOutput(task, ranked[:top] if top else ranked)
        if task == TaskType.COMPLETION:
            completions = await runtime.complete(inputs, task_settings=ts, time_limit=time_limit)
            return InferenceOutput(task, list(completions))
        if task == TaskType.CHAT_COMPLETION:
            raise StatusError(
                "The [chat_completion] task type takes a [messages] request: "
                f"POST /_inference/chat_completion/{endpoint.inference_id}[/_stream]"
            )
        raise StatusError(f"The [{endpoint.service}] service does not support task type [{task}]")

    def _streaming_endpoint(
        self, inference_id: str, task_type: TaskType | None, wanted: TaskType, field: str
    ) -> Endpoint:
        endpoint = self.registry.get(inference_id, task_type)
        if endpoint.task_type != wanted:
            raise StatusError(
                f"Streaming with [{field}] needs a [{wanted}] endpoint; [{inference_id}] is "
                f"[{endpoint.task_type}]"
            )
        return endpoint

    def _streaming_runtime(self, endpoint: Endpoint) -> Runtime:
        """The endpoint's runtime, refused with Elasticsearch's 405 when its service cannot stream."""
        runtime = self._runtime(endpoint)
        spec = spec_for(endpoint.service, endpoint.service_settings, endpoint.inference_id)
        refusal = streaming_refusal(endpoint.service, spec, runtime, endpoint.task_type)
        if refusal is not None:
            raise refusal
        return runtime

    async def stream_completion(
        self,
        inference_id: str,
        inputs: list[str],
        *,
        task_type: TaskType | None = None,
        task_settings: dict[str, Any] | None = None,
    ) -> AsyncIterator[str]:
        """Deltas of a `completion` endpoint's answer as the provider sends them."""
        endpoint = self._streaming_endpoint(inference_id, task_type, TaskType.COMPLETION, "input")
        self._validate(endpoint.task_type, inputs, None, None, None, None)
        endpoint = with_task_settings(endpoint, task_settings)
        runtime = self._streaming_runtime(endpoint)
        deltas = runtime.stream_completion(inputs, task_settings=endpoint.task_settings)
        async for delta in _counted(endpoint, deltas):
            yield delta

    async def stream_chat(
        self, inference_id: str, request: dict[str, Any], *, task_type: TaskType | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Unified chat-completion chunks of a `chat_completion` endpoint for a `messages` request."""
        endpoint = self._streaming_endpoint(inference_id, task_type, TaskType.CHAT_COMPLETION, "messages")
        chunks = self._streaming_runtime(endpoint).stream_chat(request, task_settings=endpoint.task_settings)
        async for chunk in _counted(endpoint, chunks):
            yield chunk


async def _probe_call(runtime: Runtime, task: TaskType) -> int | None:
    """One call with a short text, as Elasticsearch's validation does; a dense vector's length."""
    text = ["how big"]
    if task in _DENSE_TASKS:
        vectors, _ = await runtime.dense(text, input_type=None, task_settings={}, time_limit=None)
        return len(vectors[0].embedding) if vectors else None
    if task == TaskType.SPARSE_EMBEDDING:
        await runtime.sparse(text, input_type=None, task_settings={}, time_limit=None)
    elif task == TaskType.RERANK:
        await runtime.rerank(
            "how big", text, top_n=None, return_documents=False, task_settings={}, time_limit=None
        )
    return None  # completion, chat_completion: not called (each call costs the user tokens)


async def _counted(endpoint: Endpoint, stream: AsyncIterator[T]) -> AsyncIterator[T]:
    """A stream with the request and error metrics of its endpoint."""
    labels = (endpoint.inference_id, str(endpoint.task_type))
    try:
        async for item in stream:
            yield item
    except SidecarError as exc:
        metrics.INFERENCE_ERRORS.labels(*labels, exc.es_type).inc()
        raise
    metrics.INFERENCE_REQUESTS.labels(*labels).inc()
