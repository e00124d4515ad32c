"""Anthropic's Messages API (completion; chat_completion in `anthropic_chat`).

`POST https://api.anthropic.com/v1/messages` with `x-api-key` and `anthropic-version: 2023-06-01`;
body `{"model", "max_tokens", "messages": [{"role": "user", "content"}], "temperature"?,
"top_p"?, "top_k"?}` (every input one user turn, as Elasticsearch sends them), answered by
`{"content": [{"type": "text", "text"}], ...}`; streamed (`"stream": true`), the text comes in
`content_block_delta` events until `message_stop`. `max_tokens` is a required task setting, as in
Elasticsearch. Errors: `{"type": "error", "error": {"type", "message"}}`; 429 and 529
(overloaded) are retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sidecar.errors import RemoteServiceError
from sidecar.inference.services.anthropic_chat import ChunkTranslator, anthropic_chat_body
from sidecar.inference.services.openai_compatible import OpenAICompatibleRuntime
from sidecar.inference.services.remote import RemoteCaller
from sidecar.inference.services.validation import Errors
from sidecar.inference.types import CompletionResult, TaskType

API_VERSION = "2023-06-01"


class AnthropicRuntime(OpenAICompatibleRuntime):
    service = "anthropic"
    chat_url = "https://api.anthropic.com/v1/messages"

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        super().__init__(inference_id, settings, {}, caller)
        self.headers = {"x-api-key": str(secrets["api_key"]), "anthropic-version": API_VERSION}

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        errors = Errors()
        if task_settings.get("max_tokens") is None:
            errors.add("[task_settings] does not contain the required setting [max_tokens]")
        errors.positive_int(task_settings, "max_tokens", "task_settings")
        errors.positive_int(task_settings, "top_k", "task_settings")
        errors.raise_any()

    def completion_body(
        self, texts: list[str], task_settings: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": task_settings.get("max_tokens"),
            "messages": [{"role": "user", "content": t} for t in texts],
        }
        body.update(
            {
                k: task_settings[k]
                for k in ("temperature", "top_p", "top_k")
                if task_settings.get(k) is not None
            }
        )
        if stream:
            body["stream"] = True
        return body

    async def _events(
        self, body: dict[str, Any], task_settings: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """A streamed message's events until `message_stop`; an `error` event fails the stream."""
        events = self.caller.stream_events(
            self._endpoint("chat"),
            body,
            await self._headers(task_settings),
            last=lambda event: isinstance(event, dict) and event.get("type") == "message_stop",
        )
        async for event in events:
            kind = event.get("type") if isinstance(event, dict) else None
            if kind == "error":
                message = (event.get("error") or {}).get("message", event)
                raise RemoteServiceError(
                    f"Received an error response for request from inference entity id [{self.inference_id}]. "
                    f"Error message: [{message}]",
                    status=502,
                )
            if kind is not None:
                yield event

    async def stream_completion(
        self, texts: list[str], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[str]:
        """Text deltas of `content_block_delta` events."""
        async for event in self._events(self.completion_body(texts, task_settings, True), task_settings):
            delta = (event.get("delta") or {}) if event["type"] == "content_block_delta" else {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                yield str(delta["text"])

    def chat_request_body(self, request: dict[str, Any], task_settings: dict[str, Any]) -> dict[str, Any]:
        return anthropic_chat_body(request, task_settings, self.model)

    async def stream_chat(
        self, request: dict[str, Any], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        translator = ChunkTranslator()
        async for event in self._events(self.chat_request_body(request, task_settings), task_settings):
            chunk = translator.translate(event)
            if chunk is not None:
                yield chunk

    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        answer = await self._post("chat", self.completion_body(texts, task_settings, False), task_settings)
        try:
            text = "".join(str(b["text"]) for b in answer["content"] if b.get("type") == "text")
        except (KeyError, TypeError, AttributeError) as exc:
            raise self._fail(f"missing {exc}") from exc
        return [CompletionResult(text)]
