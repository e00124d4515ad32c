"""AlibabaCloud AI Search (OpenSearch platform) text services.

`POST {http_schema}://{host}/v3/openapi/workspaces/{workspace}/{path}/{service_id}` with
`Authorization: Bearer <api_key>`; answers carry their payload in `result`:
- text_embedding (`text-embedding`): `{"input", "input_type"?: "document" | "query"}` ->
  `{"result": {"embeddings": [{"index", "embedding"}]}}`;
- sparse_embedding (`text-sparse-embedding`): same request plus `return_token`? ->
  `{"result": {"sparse_embeddings": [{"index", "embedding": [{"token_id", "weight", "token"?}]}]}}`
  (token names when returned, else token ids);
- rerank (`ranker`): `{"query", "docs"}` -> `{"result": {"scores": [{"index", "score"}]}}`;
- completion (`text-generation`): `{"messages": [...], "parameters"?}` -> `{"result": {"text"}}`;
  inputs alternate user / assistant turns, as Elasticsearch sends them.
Errors: `{"request_id", "code", "message"}`.
"""

from __future__ import annotations

from typing import Any

from sidecar.inference.services.base import Runtime
from sidecar.inference.services.openai_compatible import ranked_documents
from sidecar.inference.services.remote import RemoteCaller, parse_failure
from sidecar.inference.services.validation import Errors
from sidecar.inference.types import (
    CompletionResult,
    DenseEmbedding,
    InputType,
    RankedDocument,
    SparseEmbedding,
    TaskType,
)

_INPUT_TYPES = {"ingest": "document", "search": "query"}
MAX_INPUTS = 32  # texts per embedding request


class AlibabaCloudSearchRuntime(Runtime):
    service = "alibabacloud-ai-search"

    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        self.inference_id = inference_id
        self.caller = caller
        schema = str(settings.get("http_schema") or "https")
        self.base = f"{schema}://{settings['host']}/v3/openapi/workspaces/{settings['workspace']}"
        self.service_id = str(settings["service_id"])
        self.headers = {"Authorization": f"Bearer {secrets['api_key']}"}

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        errors = Errors()
        errors.one_of(service_settings, "http_schema", ("https", "http"))
        errors.one_of(task_settings, "input_type", ("ingest", "search"), "task_settings")
        errors.raise_any()

    async def aclose(self) -> None:
        await self.caller.aclose()

    def _fail(self, what: str) -> Exception:
        return parse_failure(self.service, self.inference_id, what)

    async def _result(self, path: str, body: dict[str, Any]) -> Any:
        answer = await self.caller.post(f"{self.base}/{path}/{self.service_id}", body, self.headers)
        if not isinstance(answer, dict) or not isinstance(answer.get("result"), dict):
            raise self._fail("no [result] object in the answer")
        return answer["result"]

    def _embedding_body(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"input": texts}
        kind = str(input_type) if input_type is not None else task_settings.get("input_type")
        if kind in _INPUT_TYPES:
            body["input_type"] = _INPUT_TYPES[str(kind)]
        return body

    async def _embed(
        self,
        path: str,
        key: str,
        texts: list[str],
        input_type: InputType | None,
        task_settings: dict[str, Any],
        extra: dict[str, Any],
    ) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(texts), MAX_INPUTS):
            part = texts[start : start + MAX_INPUTS]
            result = await self._result(
                path, {**self._embedding_body(part, input_type, task_settings), **extra}
            )
            try:
                rows = sorted(result[key], key=lambda r: r["index"])
                embeddings = [r["embedding"] for r in rows]
            except (KeyError, TypeError) as exc:
                raise self._fail(f"missing {exc}") from exc
            if len(embeddings) != len(part):
                raise self._fail(f"{len(embeddings)} embeddings for {len(part)} inputs")
            out.extend(embeddings)
        return out

    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        rows = await self._embed("text-embedding", "embeddings", texts, input_type, task_settings, {})
        try:
            return [DenseEmbedding([float(x) for x in r]) for r in rows], "float"
        except (TypeError, ValueError) as exc:
            raise self._fail(f"an embedding is not a list of numbers: {exc}") from exc

    async def sparse(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> list[SparseEmbedding]:
        extra = {"return_token": task_settings["return_token"]} if "return_token" in task_settings else {}
        rows = await self._embed(
            "text-sparse-embedding", "sparse_embeddings", texts, input_type, task_settings, extra
        )
        try:
            return [
                SparseEmbedding({str(t.get("token") or t["token_id"]): float(t["weight"]) for t in row})
                for row in rows
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._fail(f"bad sparse entry: {exc}") from exc

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
        result = await self._result("ranker", {"query": query, "docs": documents})
        try:
            pairs = [(int(s["index"]), float(s["score"])) for s in result["scores"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"missing {exc}") from exc
        return ranked_documents(
            self._fail, pairs, documents, top_n or task_settings.get("top_n"), return_documents
        )

    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        messages = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)
        ]
        body: dict[str, Any] = {"messages": messages}
        if task_settings.get("parameters"):
            body["parameters"] = task_settings["parameters"]
        result = await self._result("text-generation", body)
        if not isinstance(result.get("text"), str):
            raise self._fail("no [text] in the result")
        return [CompletionResult(result["text"])]
