"""OpenAI embeddings and chat completions: the OpenAI-compatible runtime at OpenAI's own URLs.

Embeddings: `POST {url} {"input": [...], "model", "encoding_format": "float", "dimensions"?, "user"?}`
answered by `{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...]}], ...}`.
Completion and chat completion: see `sidecar.inference.services.openai_compatible`. `url`, when
set, replaces the default URL of the endpoint's task; `organization_id` is sent as
`OpenAI-Organization`.
"""

from __future__ import annotations

from typing import Any

from sidecar.inference.services.openai_compatible import OpenAICompatibleRuntime
from sidecar.inference.services.remote import RemoteCaller


class OpenAIRuntime(OpenAICompatibleRuntime):
    service = "openai"
    embeddings_url = "https://api.openai.com/v1/embeddings"
    chat_url = "https://api.openai.com/v1/chat/completions"

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        super().__init__(inference_id, settings, secrets, caller)
        if settings.get("organization_id"):
            self.headers["OpenAI-Organization"] = str(settings["organization_id"])
