"""OpenAI embeddings and chat completions.

Embeddings: `POST {url} {"input": [...], "model", "encoding_format": "float", "dimensions"?, "user"?}`
answered by `{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...]}], ...}`.

Completions (Elasticsearch's `completion` task): every input becomes a user message of one chat
request `{"messages": [{"role": "user", "content": text}], "model", "n": 1, "user"?}`; the answer's
`choices[].message.content` are the results. With `"stream": true` OpenAI sends server-sent events
`data: {"choices": [{"delta": {"content": "..."}}]}` ending with `data: [DONE]`.

Chat completions (the `chat_completion` task, streaming only as in Elasticsearch): the caller's
`messages`, `tools`, `temperature`, ... are passed on and OpenAI's chunks come back as
Elasticsearch's unified chunks (`id`, `choices[].delta`, `finish_reason`, `model`, `object`, `usage`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sidecar.inference.services.base import Runtime
from sidecar.inference.services.remote import RemoteCaller, parse_failure
from sidecar.inference.types import CompletionResult, DenseEmbedding, InputType

EMBEDDINGS_URL = "https://api.openai.com/v1/embeddings"
CHAT_URL = "https://api.openai.com/v1/chat/completions"
MAX_INPUTS = 2048  # per OpenAI embeddings request
# The chat request fields a `chat_completion` caller may set (Elasticsearch's unified request).
CHAT_FIELDS = ("max_completion_tokens", "stop", "temperature", "tool_choice", "tools", "top_p")
_CHUNK_FIELDS = ("id", "model", "object", "usage")
_DELTA_FIELDS = ("content", "refusal", "role", "tool_calls")


class OpenAIRuntime(Runtime):
    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        self.inference_id = inference_id
        self.url = str(settings["url"]) if settings.get("url") else None
        self.model = str(settings["model_id"])
        self.dimensions = settings.get("dimensions")
        self.caller = caller
        self.headers = {"Authorization": f"Bearer {secrets['api_key']}"}
        if settings.get("organization_id"):
            self.headers["OpenAI-Organization"] = str(settings["organization_id"])

    async def aclose(self) -> None:
        await self.caller.aclose()

    def _fail(self, what: str) -> Exception:
        return parse_failure("openai", self.inference_id, what)

    # --- embeddings -----------------------------------------------------------------------------
    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        out: list[DenseEmbedding] = []
        for start in range(0, len(texts), MAX_INPUTS):
            part = texts[start : start + MAX_INPUTS]
            body: dict[str, Any] = {"input": part, "model": self.model, "encoding_format": "float"}
            if self.dimensions:
                body["dimensions"] = self.dimensions
            if task_settings.get("user"):
                body["user"] = task_settings["user"]
            answer = await self.caller.post(self.url or EMBEDDINGS_URL, body, self.headers)
            try:
                data = sorted(answer["data"], key=lambda d: d["index"])
                vectors = [[float(x) for x in d["embedding"]] for d in data]
            except (KeyError, TypeError, ValueError) as exc:
                raise self._fail(f"missing {exc}") from exc
            if len(vectors) != len(part):
                raise self._fail(f"{len(vectors)} embeddings for {len(part)} inputs")
            out.extend(DenseEmbedding(v) for v in vectors)
        return out, "float"

    # --- completion -----------------------------------------------------------------------------
    def _completion_body(self, texts: list[str], task_settings: dict[str, Any], stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": t} for t in texts],
            "model": self.model,
            "n": 1,
        }
        if task_settings.get("user"):
            body["user"] = task_settings["user"]
        if stream:
            body["stream"] = True
        return body

    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        answer = await self.caller.post(
            self.url or CHAT_URL, self._completion_body(texts, task_settings, False), self.headers
        )
        try:
            return [CompletionResult(str(c["message"]["content"])) for c in answer["choices"]]
        except (KeyError, TypeError) as exc:
            raise self._fail(f"missing {exc}") from exc

    async def stream_completion(
        self, texts: list[str], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[str]:
        events = self.caller.stream_events(
            self.url or CHAT_URL, self._completion_body(texts, task_settings, True), self.headers
        )
        async for event in events:
            try:
                choices = event["choices"]
            except (KeyError, TypeError) as exc:
                raise self._fail(f"missing {exc} in a streamed chunk") from exc
            for choice in choices:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    yield str(content)

    async def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        body: dict[str, Any] = {
            "messages": request["messages"],
            "model": request.get("model") or self.model,
            "n": 1,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        body.update({k: request[k] for k in CHAT_FIELDS if request.get(k) is not None})
        async for event in self.caller.stream_events(self.url or CHAT_URL, body, self.headers):
            if not isinstance(event, dict) or not isinstance(event.get("choices", []), list):
                raise self._fail("a streamed chunk is not a chat.completion.chunk object")
            yield unified_chunk(event)


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
