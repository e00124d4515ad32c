"""OpenAI embeddings:
`POST {url} {"input": [...], "model", "encoding_format": "float", "dimensions"?, "user"?}`
answered by `{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...]}], ...}`."""

from __future__ import annotations

from typing import Any

from sidecar.inference.services.base import Runtime
from sidecar.inference.services.remote import RemoteCaller, parse_failure
from sidecar.inference.types import DenseEmbedding, InputType

DEFAULT_URL = "https://api.openai.com/v1/embeddings"
MAX_INPUTS = 2048  # per OpenAI request


class OpenAIRuntime(Runtime):
    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        self.inference_id = inference_id
        self.url = str(settings.get("url") or DEFAULT_URL)
        self.model = str(settings["model_id"])
        self.dimensions = settings.get("dimensions")
        self.caller = caller
        self.headers = {"Authorization": f"Bearer {secrets['api_key']}"}
        if settings.get("organization_id"):
            self.headers["OpenAI-Organization"] = str(settings["organization_id"])

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
        for start in range(0, len(texts), MAX_INPUTS):
            part = texts[start : start + MAX_INPUTS]
            body: dict[str, Any] = {"input": part, "model": self.model, "encoding_format": "float"}
            if self.dimensions:
                body["dimensions"] = self.dimensions
            if task_settings.get("user"):
                body["user"] = task_settings["user"]
            answer = await self.caller.post(self.url, body, self.headers)
            try:
                data = sorted(answer["data"], key=lambda d: d["index"])
                vectors = [[float(x) for x in d["embedding"]] for d in data]
            except (KeyError, TypeError, ValueError) as exc:
                raise parse_failure("openai", self.inference_id, f"missing {exc}") from exc
            if len(vectors) != len(part):
                raise parse_failure(
                    "openai", self.inference_id, f"{len(vectors)} embeddings for {len(part)} inputs"
                )
            out.extend(DenseEmbedding(v) for v in vectors)
        return out, "float"
