"""Vertex AI Model Garden: models of other publishers served by Vertex AI (the `googlevertexai`
service with `provider`, `url` and `streaming_url`), for completion and chat_completion.

`url` takes the non-streamed completion requests, `streaming_url` the streamed ones (`_stream`
completions and every chat_completion). Both carry the service account's bearer token. The body
follows the publisher's format at that URL:
- `anthropic` (`...:rawPredict` / `...:streamRawPredict`): Anthropic's Messages format without
  `model`, with `"anthropic_version": "vertex-2023-10-16"`; `max_tokens` task setting;
- `meta`, `hugging_face`, `mistral`, `ai21`: OpenAI's chat format (`model` = `model_id` when set),
  streamed as OpenAI's chunks;
- `google`: Gemini's format (`generateContent` / `streamGenerateContent`, `alt=sse` added when the
  streaming URL lacks it), handled by the Vertex runtime itself.
"""

from __future__ import annotations

from typing import Any

from sidecar.inference.services.anthropic import AnthropicRuntime
from sidecar.inference.services.anthropic_chat import anthropic_chat_body
from sidecar.inference.services.openai_compatible import OpenAICompatibleRuntime
from sidecar.inference.services.remote import RemoteCaller

PROVIDERS = ("google", "anthropic", "meta", "hugging_face", "mistral", "ai21")
ANTHROPIC_VERSION = "vertex-2023-10-16"


class GardenOpenAI(OpenAICompatibleRuntime):
    service = "googlevertexai"

    def __init__(
        self, inference_id: str, model: str | None, url: str, token: Any, caller: RemoteCaller
    ) -> None:
        super().__init__(inference_id, {"model_id": model} if model else {}, {}, caller)
        self.endpoints = {"embeddings": None, "chat": url, "rerank": None}
        self.token = token

    async def _headers(self, task_settings: dict[str, Any]) -> dict[str, str]:
        return dict(await self.token.header(self.service, self.inference_id))


class GardenAnthropic(AnthropicRuntime):
    service = "googlevertexai"

    def __init__(self, inference_id: str, url: str, token: Any, caller: RemoteCaller) -> None:
        OpenAICompatibleRuntime.__init__(self, inference_id, {}, {}, caller)
        self.endpoints = {"embeddings": None, "chat": url, "rerank": None}
        self.token = token

    async def _headers(self, task_settings: dict[str, Any]) -> dict[str, str]:
        return dict(await self.token.header(self.service, self.inference_id))

    def completion_body(
        self, texts: list[str], task_settings: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        body = super().completion_body(texts, task_settings, stream)
        body.pop("model", None)
        return {"anthropic_version": ANTHROPIC_VERSION, **body}

    def chat_request_body(self, request: dict[str, Any], task_settings: dict[str, Any]) -> dict[str, Any]:
        body = anthropic_chat_body(request, task_settings, None)
        body.pop("model", None)
        return {"anthropic_version": ANTHROPIC_VERSION, **body}


def garden_runtime(
    provider: str, inference_id: str, model: str | None, url: str, token: Any, caller: RemoteCaller
) -> OpenAICompatibleRuntime:
    """The runtime speaking `provider`'s format at `url` (not for `google`: Gemini's format)."""
    if provider == "anthropic":
        return GardenAnthropic(inference_id, url, token, caller)
    return GardenOpenAI(inference_id, model, url, token, caller)


def sse_url(url: str) -> str:
    """A Gemini streaming URL with `alt=sse` (server-sent events rather than one JSON array)."""
    if "alt=sse" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}alt=sse"
