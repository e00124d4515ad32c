"""Amazon Bedrock runtime API, signed with AWS Signature Version 4 (service `bedrock`).

- text_embedding: `POST /model/{model}/invoke`. Titan (`provider: amazontitan`) embeds one text per
  request, `{"inputText"}` -> `{"embedding": [...]}`; Cohere takes a batch, `{"texts", "input_type",
  "truncate"?}` -> `{"embeddings": [[...]]}` (`input_type` as Elasticsearch maps it, default
  `search_document`).
- completion: the Converse API, `POST /model/{model}/converse` with one user message per input,
  `inferenceConfig` (`temperature`, `topP`, `maxTokens`) and, for `top_k`,
  `additionalModelRequestFields`; the answer's `output.message.content[].text` is the result;
  `_stream` answers it as one delta (ConverseStream's AWS binary event stream is not spoken);
- chat_completion: one Converse call (`bedrock_chat`), answered as one unified chunk.

Host `https://bedrock-runtime.{region}.amazonaws.com`; `url` (a sidecar extension) replaces it,
e.g. for a VPC endpoint or a test server. Errors are AWS's `{"message": ...}` bodies.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from sidecar.errors import StatusError
from sidecar.inference.services.aws_sigv4 import SigV4
from sidecar.inference.services.base import CHAT, COMPLETION, DENSE, Runtime
from sidecar.inference.services.bedrock_chat import converse_chat_body, converse_chunk
from sidecar.inference.services.remote import RemoteCaller, parse_failure
from sidecar.inference.services.validation import SIMILARITIES, Errors
from sidecar.inference.types import CompletionResult, DenseEmbedding, InputType, TaskType

# Which provider serves which task here (Elasticsearch's table, for the task types served here).
PROVIDER_TASKS: dict[str, frozenset[TaskType]] = {
    "amazontitan": frozenset({DENSE, COMPLETION, CHAT}),
    "cohere": frozenset({DENSE, COMPLETION, CHAT}),
    "anthropic": frozenset({COMPLETION, CHAT}),
    "ai21labs": frozenset({COMPLETION, CHAT}),
    "meta": frozenset({COMPLETION, CHAT}),
    "mistral": frozenset({COMPLETION, CHAT}),
}
_MODEL_PREFIXES = {
    "amazon.titan": "amazontitan",
    "cohere.": "cohere",
    "anthropic.": "anthropic",
    "ai21.": "ai21labs",
    "meta.": "meta",
    "mistral.": "mistral",
}
_COHERE_INPUT_TYPES = {
    "ingest": "search_document",
    "search": "search_query",
    "classification": "classification",
    "clustering": "clustering",
}
COHERE_BATCH = 96  # texts per Cohere embed request


def provider_of(settings: dict[str, Any]) -> str | None:
    """The configured provider, else the one a Bedrock model id names (`amazon.titan-...`)."""
    if settings.get("provider"):
        return str(settings["provider"]).lower()
    model = str(settings.get("model", "")).lower().split("/")[-1]
    model = model.split(".", 1)[1] if model[:3] in ("us.", "eu.") else model  # cross-region profiles
    return next((p for prefix, p in _MODEL_PREFIXES.items() if model.startswith(prefix)), None)


class AmazonBedrockRuntime(Runtime):
    service = "amazonbedrock"

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        self.inference_id = inference_id
        self.caller = caller
        self.settings = settings
        region = str(settings["region"])
        host = str(settings.get("url") or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")
        self.model_url = f"{host}/model/{quote(str(settings['model']), safe='')}"
        self.provider = provider_of(settings)
        self.auth = SigV4(str(secrets["access_key"]), str(secrets["secret_key"]), region, "bedrock")

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        provider = provider_of(service_settings)
        if provider is not None and provider not in PROVIDER_TASKS:
            raise StatusError(
                f"[service_settings] Invalid value [{provider}] received. [provider] must be one of "
                f"[{', '.join(PROVIDER_TASKS)}]"
            )
        if task_type == DENSE and provider is None:
            raise StatusError(
                "[service_settings] does not contain the setting [provider], and the model id does not name one"
            )
        if provider is not None and task_type not in PROVIDER_TASKS[provider]:
            raise StatusError(f"The [{task_type}] task type for provider [{provider}] is not available")
        errors = Errors()
        errors.one_of(service_settings, "similarity", SIMILARITIES)
        errors.positive_int(service_settings, "dimensions")
        errors.positive_int(task_settings, "max_new_tokens", "task_settings")
        errors.one_of(task_settings, "truncate", ("none", "start", "end"), "task_settings")
        errors.raise_any()
        if task_settings.get("truncate") and provider != "cohere":
            raise StatusError(
                f"The [{task_type}] task type for provider [{provider}] does not allow [truncate] field"
            )

    async def aclose(self) -> None:
        await self.caller.aclose()

    def _fail(self, what: str) -> Exception:
        return parse_failure(self.service, self.inference_id, what)

    async def _post(self, action: str, body: dict[str, Any]) -> Any:
        # Serialised here so that the signed bytes are the bytes sent.
        return await self.caller.post(
            f"{self.model_url}/{action}",
            None,
            {"Content-Type": "application/json", "Accept": "application/json"},
            content=json.dumps(body, ensure_ascii=False),
            auth=self.auth,
        )

    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        if self.provider == "cohere":
            return await self._cohere(texts, input_type, task_settings), "float"
        out: list[DenseEmbedding] = []
        for text in texts:  # Titan embeds one text per request
            answer = await self._post("invoke", {"inputText": text})
            vector = answer.get("embedding") if isinstance(answer, dict) else None
            if not isinstance(vector, list):
                raise self._fail("no [embedding] in the answer")
            out.append(DenseEmbedding([float(x) for x in vector]))
        return out, "float"

    async def _cohere(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> list[DenseEmbedding]:
        out: list[DenseEmbedding] = []
        kind = (
            _COHERE_INPUT_TYPES.get(str(input_type), "search_document") if input_type else "search_document"
        )
        for start in range(0, len(texts), COHERE_BATCH):
            part = texts[start : start + COHERE_BATCH]
            body: dict[str, Any] = {"texts": part, "input_type": kind}
            if task_settings.get("truncate"):
                body["truncate"] = str(task_settings["truncate"]).upper()
            answer = await self._post("invoke", body)
            rows = answer.get("embeddings") if isinstance(answer, dict) else None
            if not isinstance(rows, list) or len(rows) != len(part):
                raise self._fail(f"no [embeddings] for each of the {len(part)} texts")
            out.extend(DenseEmbedding([float(x) for x in row]) for row in rows)
        return out

    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": [{"text": t}]} for t in texts]}
        config = {
            wire: task_settings[key]
            for key, wire in (
                ("temperature", "temperature"),
                ("top_p", "topP"),
                ("max_new_tokens", "maxTokens"),
            )
            if task_settings.get(key) is not None
        }
        if config:
            body["inferenceConfig"] = config
        if task_settings.get("top_k") is not None:
            body["additionalModelRequestFields"] = {"top_k": task_settings["top_k"]}
        answer = await self._post("converse", body)
        try:
            blocks = answer["output"]["message"]["content"]
            text = "".join(str(b["text"]) for b in blocks if "text" in b)
        except (KeyError, TypeError) as exc:
            raise self._fail(f"missing {exc}") from exc
        return [CompletionResult(text)]

    stream_completion = Runtime.whole_completion_as_delta  # ConverseStream's binary event stream is not spoken

    async def stream_chat(
        self, request: dict[str, Any], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """One Converse call; its answer as one unified chunk."""
        answer = await self._post("converse", converse_chat_body(request, task_settings))
        try:
            yield converse_chunk(answer, str(request.get("model") or self.settings["model"]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise self._fail(f"missing {exc}") from exc
