"""IBM watsonx.ai: an IBM Cloud API key exchanged for IAM bearer tokens, then the text APIs.

Token: `POST https://iam.cloud.ibm.com/identity/token` with the form
`grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=<api_key>`, answered by
`{"access_token", "expires_in", ...}`; reused until a minute before it expires.
Requests go to `{url}/ml/v1/text/{embeddings | rerank | chat}?version={api_version}`:
- embeddings `{"inputs", "model_id", "project_id"}` -> `{"results": [{"embedding"}]}`;
- rerank `{"model_id", "query", "inputs": [{"text"}], "project_id", "parameters": {"truncate_input_tokens"?,
  "return_options": {"inputs"?, "top_n"?}}}` -> `{"results": [{"index", "score"}]}`;
- chat (completion, chat_completion) in OpenAI's format with `project_id` and `model_id`.
Errors: `{"errors": [{"code", "message"}], "status_code"}`.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from sidecar.inference.services.bearer_tokens import BearerTokens
from sidecar.inference.services.openai_compatible import OpenAICompatibleRuntime, ranked_documents
from sidecar.inference.services.remote import RemoteCaller
from sidecar.inference.services.validation import Errors
from sidecar.inference.types import InputType, RankedDocument


class WatsonxRuntime(OpenAICompatibleRuntime):
    service = "watsonxai"
    iam_url: ClassVar[str] = "https://iam.cloud.ibm.com/identity/token"

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        super().__init__(inference_id, settings, {}, caller)
        base = str(settings["url"]).rstrip("/")
        version = f"?version={quote(str(settings['api_version']), safe='')}"
        self.endpoints = {
            kind: f"{base}/ml/v1/text/{kind}{version}" for kind in ("embeddings", "rerank", "chat")
        }
        self.project = str(settings["project_id"])
        form = {"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": str(secrets["api_key"])}
        self.iam_tokens = BearerTokens(self.iam_url, form, inference_id, caller.policy.timeout_s)

    @classmethod
    def check_task_settings(cls, task_settings: dict[str, Any], errors: Errors) -> None:
        errors.positive_int(task_settings, "truncate_input_tokens", "task_settings")

    async def _headers(self, task_settings: dict[str, Any]) -> dict[str, str]:
        return await self.iam_tokens.header()

    def embedding_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        return {"inputs": texts, "model_id": self.model, "project_id": self.project}

    def embedding_rows(self, answer: Any) -> list[list[float]] | list[list[int]]:
        try:
            return [[float(x) for x in r["embedding"]] for r in answer["results"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc

    def completion_body(
        self, texts: list[str], task_settings: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        body = super().completion_body(texts, task_settings, stream)
        body.pop("model", None)
        body.pop("n", None)
        return {"project_id": self.project, "model_id": self.model, **body}

    def chat_body(self, request: dict[str, Any]) -> dict[str, Any]:
        body = super().chat_body(request)
        model = body.pop("model", None)
        body.pop("n", None)
        body.pop("stream_options", None)
        return {"project_id": self.project, "model_id": model, **body}

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
        options: dict[str, Any] = {"inputs": return_documents}
        top = top_n or task_settings.get("top_n")
        if top:
            options["top_n"] = top
        parameters: dict[str, Any] = {"return_options": options}
        if task_settings.get("truncate_input_tokens"):
            parameters = {"truncate_input_tokens": task_settings["truncate_input_tokens"], **parameters}
        body = {
            "model_id": self.model,
            "query": query,
            "inputs": [{"text": d} for d in documents],
            "project_id": self.project,
            "parameters": parameters,
        }
        answer = await self._post("rerank", body, task_settings)
        try:
            pairs = [(int(r["index"]), float(r["score"])) for r in answer["results"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc
        return ranked_documents(self._fail, pairs, documents, top, return_documents)
