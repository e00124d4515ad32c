"""One runtime for the providers whose APIs follow OpenAI's formats, and their thin definitions.

Embeddings: `POST {"input": [...], "model", "encoding_format": "float", "dimensions"?}` answered by
`{"data": [{"index", "embedding"}]}`. Completion: every input becomes a user message of one chat
request; `choices[].message.content` are the results, or server-sent `choices[].delta.content`
chunks when streamed. Chat completion (streamed): the caller's `messages`, `tools`, ... are passed
on and the chunks come back as Elasticsearch's unified chunks. Auth: `Authorization: Bearer <key>`.

`url`, when set, is the whole endpoint URL for the endpoint's task, as in Elasticsearch; otherwise
the provider's default for the task is used. Providers that differ in a detail override one hook:
Mistral names its model `model`; NVIDIA's embeddings take `input_type` (`passage`/`query`) and
`truncate` and its reranker has its own format; Llama Stack's embeddings take
`{"model_id", "contents"}` and answer in the Hugging Face format; OpenShift AI reranks in Cohere's
format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from sidecar.errors import StatusError
from sidecar.inference.services.base import Runtime
from sidecar.inference.services.bearer_tokens import BearerTokens
from sidecar.inference.services.remote import RemoteCaller, parse_failure
from sidecar.inference.services.validation import SIMILARITIES, Errors
from sidecar.inference.types import CompletionResult, DenseEmbedding, InputType, RankedDocument, TaskType

# The chat request fields a `chat_completion` caller may set (Elasticsearch's unified request).
CHAT_FIELDS = ("max_completion_tokens", "stop", "temperature", "tool_choice", "tools", "top_p")
_CHUNK_FIELDS = ("id", "model", "object", "usage")
_DELTA_FIELDS = ("content", "refusal", "role", "tool_calls")


class OpenAICompatibleRuntime(Runtime):
    service: ClassVar[str] = "openai"
    # Default endpoint URLs per task; None: the `url` setting is required for that task.
    embeddings_url: ClassVar[str | None] = None
    chat_url: ClassVar[str | None] = None
    rerank_url: ClassVar[str | None] = None
    model_key: ClassVar[str] = "model_id"
    max_inputs: ClassVar[int] = 2048  # inputs per embeddings request

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        self.inference_id = inference_id
        self.settings = settings
        url = str(settings["url"]) if settings.get("url") else None
        # The URL per kind of request: `url` when set, else the provider's default.
        self.endpoints: dict[str, str | None] = {
            "embeddings": url or self.embeddings_url,
            "chat": url or self.chat_url,
            "rerank": url or self.rerank_url,
        }
        self.model = str(settings[self.model_key]) if settings.get(self.model_key) else None
        self.caller = caller
        self.headers = {"Authorization": f"Bearer {secrets['api_key']}"} if secrets.get("api_key") else {}
        self.tokens: BearerTokens | None = None  # OAuth2: a fetched token's header joins `headers`
        self.element_type = "float"  # of the embeddings: `float`, `byte` or `bit`
        self.batch_size = self.max_inputs

    async def aclose(self) -> None:
        await self.caller.aclose()

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        errors = Errors()
        errors.one_of(service_settings, "similarity", SIMILARITIES)
        errors.positive_int(service_settings, "dimensions")
        errors.positive_int(service_settings, "max_input_tokens")
        errors.positive_int(task_settings, "top_n", "task_settings")
        cls.check_task_settings(task_settings, errors)
        errors.raise_any()

    @classmethod
    def check_task_settings(cls, task_settings: dict[str, Any], errors: Errors) -> None:
        """A provider's own task settings (stored ones at PUT)."""
        return None

    def _fail(self, what: str) -> Exception:
        return parse_failure(self.service, self.inference_id, what)

    def _endpoint(self, kind: str) -> str:
        url = self.endpoints[kind]
        if url is None:
            raise StatusError(f"The [{self.service}] service needs [url] in [service_settings]")
        return url

    async def _headers(self, task_settings: dict[str, Any]) -> dict[str, str]:
        """Auth and the task settings' extra `headers` (async: some providers fetch tokens)."""
        extra = task_settings.get("headers") or {}
        headers = {**self.headers, **{str(k): str(v) for k, v in extra.items()}}
        return {**headers, **(await self.tokens.header())} if self.tokens else headers

    async def _post(self, kind: str, body: Any, task_settings: dict[str, Any]) -> Any:
        return await self.caller.post(self._endpoint(kind), body, await self._headers(task_settings))

    # --- embeddings -------------------------------------------------------------------------------
    def embedding_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"input": texts, "model": self.model, "encoding_format": "float"}
        if self.settings.get("dimensions"):
            body["dimensions"] = self.settings["dimensions"]
        if task_settings.get("user"):
            body["user"] = task_settings["user"]
        return body

    def embedding_rows(self, answer: Any) -> list[list[float]] | list[list[int]]:
        try:
            data = sorted(answer["data"], key=lambda d: d["index"])
            cast = float if self.element_type == "float" else int
            return [[cast(x) for x in d["embedding"]] for d in data]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc

    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        out: list[DenseEmbedding] = []
        for start in range(0, len(texts), self.batch_size):
            part = texts[start : start + self.batch_size]
            body = self.embedding_body(part, input_type, task_settings)
            rows = self.embedding_rows(await self._post("embeddings", body, task_settings))
            if len(rows) != len(part):
                raise self._fail(f"{len(rows)} embeddings for {len(part)} inputs")
            out.extend(DenseEmbedding(row) for row in rows)
        return out, self.element_type

    # --- completion -------------------------------------------------------------------------------
    def completion_body(
        self, texts: list[str], task_settings: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": t} for t in texts], "n": 1}
        if self.model:
            body["model"] = self.model
        if task_settings.get("user"):
            body["user"] = task_settings["user"]
        if stream:
            body["stream"] = True
        return body

    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        answer = await self._post("chat", self.completion_body(texts, task_settings, False), task_settings)
        try:
            return [CompletionResult(str(c["message"]["content"])) for c in answer["choices"]]
        except (KeyError, TypeError) as exc:
            raise self._fail(f"missing {exc}") from exc

    async def stream_completion(
        self, texts: list[str], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[str]:
        body = self.completion_body(texts, task_settings, True)
        events = self.caller.stream_events(self._endpoint("chat"), body, await self._headers(task_settings))
        async for event in events:
            try:
                choices = event["choices"]
            except (KeyError, TypeError) as exc:
                raise self._fail(f"missing {exc} in a streamed chunk") from exc
            for choice in choices:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    yield str(content)

    def chat_body(self, request: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": request["messages"],
            "n": 1,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        model = request.get("model") or self.model
        if model:
            body["model"] = model
        body.update({k: request[k] for k in CHAT_FIELDS if request.get(k) is not None})
        return body

    async def stream_chat(
        self, request: dict[str, Any], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        body = self.chat_body(request)
        if task_settings.get("user") and "user" not in body:
            body["user"] = task_settings["user"]
        headers = await self._headers(task_settings)
        async for event in self.caller.stream_events(self._endpoint("chat"), body, headers):
            if not isinstance(event, dict) or not isinstance(event.get("choices", []), list):
                raise self._fail("a streamed chunk is not a chat.completion.chunk object")
            yield unified_chunk(event)


class HuggingFaceChatRuntime(OpenAICompatibleRuntime):
    """Completion and chat_completion of `hugging_face` endpoints: `url` is an OpenAI-compatible
    chat completions URL (an Inference Endpoint running TGI or vLLM), as Elasticsearch expects."""

    service = "hugging_face"


class MistralRuntime(OpenAICompatibleRuntime):
    service = "mistral"
    embeddings_url = "https://api.mistral.ai/v1/embeddings"
    chat_url = "https://api.mistral.ai/v1/chat/completions"
    model_key = "model"

    def embedding_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        return {"model": self.model, "input": texts, "encoding_format": "float"}


class DeepSeekRuntime(OpenAICompatibleRuntime):
    service = "deepseek"
    chat_url = "https://api.deepseek.com/chat/completions"


class GroqRuntime(OpenAICompatibleRuntime):
    service = "groq"
    chat_url = "https://api.groq.com/openai/v1/chat/completions"


class FireworksAIRuntime(OpenAICompatibleRuntime):
    service = "fireworksai"
    embeddings_url = "https://api.fireworks.ai/inference/v1/embeddings"
    chat_url = "https://api.fireworks.ai/inference/v1/chat/completions"


class AI21Runtime(OpenAICompatibleRuntime):
    service = "ai21"
    chat_url = "https://api.ai21.com/studio/v1/chat/completions"


class NvidiaRuntime(OpenAICompatibleRuntime):
    service = "nvidia"
    embeddings_url = "https://integrate.api.nvidia.com/v1/embeddings"
    chat_url = "https://integrate.api.nvidia.com/v1/chat/completions"
    rerank_url = "https://ai.api.nvidia.com/v1/retrieval/nvidia/reranking"
    _INPUT_TYPES: ClassVar[dict[str, str]] = {"ingest": "passage", "search": "query"}

    @classmethod
    def check_task_settings(cls, task_settings: dict[str, Any], errors: Errors) -> None:
        errors.one_of(task_settings, "input_type", ("ingest", "search"), "task_settings")
        errors.one_of(task_settings, "truncate", ("none", "start", "end"), "task_settings")

    def embedding_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        # The request's input_type wins over the stored one; NVIDIA's retrievers need one, so
        # documents (`passage`) are assumed when neither says.
        kind = str(input_type) if input_type is not None else task_settings.get("input_type", "ingest")
        body: dict[str, Any] = {
            "input": texts,
            "model": self.model,
            "input_type": self._INPUT_TYPES.get(str(kind), "passage"),
        }
        if task_settings.get("truncate"):
            body["truncate"] = task_settings["truncate"]
        return body

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
        body = {"model": self.model, "query": {"text": query}, "passages": [{"text": d} for d in documents]}
        answer = await self._post("rerank", body, task_settings)
        try:
            pairs = [(int(r["index"]), float(r["logit"])) for r in answer["rankings"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc
        return ranked_documents(self._fail, pairs, documents, top_n, return_documents)


class LlamaRuntime(OpenAICompatibleRuntime):
    """Llama Stack: embeddings at `/v1/inference/embeddings`, chat at `/v1/openai/v1/chat/completions`
    (both taken from the required `url`)."""

    service = "llama"

    def embedding_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        return {"model_id": self.model, "contents": texts}

    def embedding_rows(self, answer: Any) -> list[list[float]]:
        rows = answer.get("embeddings") if isinstance(answer, dict) else answer
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise self._fail(f"expected embeddings, got {str(answer)[:200]}")
        return [[float(x) for x in r] for r in rows]


class OpenShiftAIRuntime(OpenAICompatibleRuntime):
    """Red Hat OpenShift AI model servers (vLLM): OpenAI formats; rerank in Cohere's format."""

    service = "openshift_ai"

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
        body: dict[str, Any] = {"query": query, "documents": documents}
        if self.model:
            body["model"] = self.model
        top = top_n or task_settings.get("top_n")
        if top:
            body["top_n"] = top
        body["return_documents"] = return_documents
        answer = await self._post("rerank", body, task_settings)
        try:
            pairs = [(int(r["index"]), float(r["relevance_score"])) for r in answer["results"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc
        return ranked_documents(self._fail, pairs, documents, top, return_documents)


def unified_chunk(event: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat.completion.chunk reduced to the fields Elasticsearch's unified API returns."""
    chunk: dict[str, Any] = {k: event[k] for k in _CHUNK_FIELDS if event.get(k) is not None}
    choices = []
    for choice in event.get("choices") or []:
        delta = choice.get("delta") or {}
        out: dict[str, Any] = {
            "delta": {k: delta[k] for k in _DELTA_FIELDS if delta.get(k) is not None},
            "index": choice.get("index", 0),
        }
        if choice.get("finish_reason") is not None:
            out["finish_reason"] = choice["finish_reason"]
        choices.append(out)
    chunk["choices"] = choices
    return chunk


def completion_chunk(answer: Any) -> dict[str, Any]:
    """A whole (non-streamed) `chat.completion` answer as one unified chunk: each choice's
    message becomes its delta (tool calls numbered), with its finish reason and the usage."""
    if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
        raise ValueError("not a chat.completion object")
    choices = []
    for position, choice in enumerate(answer["choices"]):
        message = choice.get("message") or {}
        calls = [{"index": i, **call} for i, call in enumerate(message.get("tool_calls") or [])]
        event_choice = {
            "delta": {
                **{k: message[k] for k in ("content", "refusal", "role") if message.get(k) is not None}
            },
            "index": choice.get("index", position),
            "finish_reason": choice.get("finish_reason"),
        }
        if calls:
            event_choice["delta"]["tool_calls"] = calls
        choices.append(event_choice)
    return unified_chunk({**answer, "object": "chat.completion.chunk", "choices": choices})


def ranked_documents(
    fail: Callable[[str], Exception],
    pairs: list[tuple[int, float]],
    documents: list[str],
    top_n: int | None,
    return_documents: bool,
) -> list[RankedDocument]:
    """(index, score) pairs as ranked documents, best first, checked against the inputs."""
    for index, _ in pairs:
        if not 0 <= index < len(documents):
            raise fail(f"ranked index [{index}] is not one of the [{len(documents)}] documents")
    ranked = [RankedDocument(i, s, documents[i] if return_documents else None) for i, s in pairs]
    ranked.sort(key=lambda r: -r.relevance_score)
    return ranked[:top_n] if top_n else ranked
