"""Contextual AI's instruction-following reranker.

`POST https://api.contextual.ai/v1/rerank` with `{"query", "documents", "model", "top_n"?,
"instruction"?}` and `Authorization: Bearer <api_key>`, answered by
`{"results": [{"index", "relevance_score"}]}`. The stored `top_k` task setting (Elasticsearch's
name) and the request's `top_n` both set `top_n`; the request wins.
"""

from __future__ import annotations

from typing import Any

from sidecar.inference.services.openai_compatible import OpenAICompatibleRuntime, ranked_documents
from sidecar.inference.services.validation import Errors
from sidecar.inference.types import RankedDocument


class ContextualAIRuntime(OpenAICompatibleRuntime):
    service = "contextualai"
    rerank_url = "https://api.contextual.ai/v1/rerank"

    @classmethod
    def check_task_settings(cls, task_settings: dict[str, Any], errors: Errors) -> None:
        errors.positive_int(task_settings, "top_k", "task_settings")

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
        body: dict[str, Any] = {"query": query, "documents": documents, "model": self.model}
        top = top_n or task_settings.get("top_n") or task_settings.get("top_k")
        if top:
            body["top_n"] = top
        if task_settings.get("instruction"):
            body["instruction"] = task_settings["instruction"]
        answer = await self._post("rerank", body, task_settings)
        try:
            pairs = [(int(r["index"]), float(r["relevance_score"])) for r in answer["results"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc
        return ranked_documents(self._fail, pairs, documents, top, return_documents)
