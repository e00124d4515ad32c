"""Another cluster's inference API as a remote service: `POST {url}/_inference/{task_type}/{model_id}`
with `{"input", "query"?, "input_type"?, "task_settings"?}` (Authorization `ApiKey <api_key>`).
Answers are Elasticsearch's shapes (8.11's bare sparse maps accepted):
https://www.elastic.co/guide/en/elasticsearch/reference/current/post-inference-api.html"""

from __future__ import annotations

from typing import Any

from sidecar.inference.services.base import Runtime
from sidecar.inference.services.remote import RemoteCaller, parse_failure
from sidecar.inference.types import DenseEmbedding, InputType, RankedDocument, SparseEmbedding


class ElasticsearchRuntime(Runtime):
    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        self.inference_id = inference_id
        self.base = str(settings["url"]).rstrip("/")
        self.remote_id = str(settings["model_id"])
        self.caller = caller
        self.headers = {"Authorization": f"ApiKey {secrets['api_key']}"} if secrets.get("api_key") else {}

    async def aclose(self) -> None:
        await self.caller.aclose()

    async def _call(self, task: str, body: dict[str, Any]) -> Any:
        return await self.caller.post(f"{self.base}/_inference/{task}/{self.remote_id}", body, self.headers)

    async def sparse(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> list[SparseEmbedding]:
        answer = await self._call("sparse_embedding", {"input": texts})
        rows = answer.get("sparse_embedding") if isinstance(answer, dict) else answer
        if not isinstance(rows, list) or len(rows) != len(texts):
            raise parse_failure(
                "elasticsearch", self.inference_id, "expected one [sparse_embedding] per input"
            )
        out = []
        for row in rows:
            if isinstance(row, dict) and isinstance(row.get("embedding"), dict):
                out.append(
                    SparseEmbedding(
                        {str(k): float(v) for k, v in row["embedding"].items()},
                        bool(row.get("is_truncated", False)),
                    )
                )
            elif isinstance(row, dict):  # 8.11: a bare token map
                out.append(
                    SparseEmbedding(
                        {
                            str(k): float(v)
                            for k, v in row.items()
                            if isinstance(v, int | float) and not isinstance(v, bool)
                        }
                    )
                )
            else:
                raise parse_failure("elasticsearch", self.inference_id, f"bad sparse entry {str(row)[:200]}")
        return out

    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        body: dict[str, Any] = {"input": texts}
        if input_type:
            body["input_type"] = str(input_type)
        answer = await self._call("text_embedding", body)
        for key, kind in (
            ("text_embedding", "float"),
            ("text_embedding_bytes", "byte"),
            ("text_embedding_bits", "bit"),
        ):
            if isinstance(answer, dict) and key in answer:
                rows = answer[key]
                if len(rows) != len(texts):
                    break
                cast = float if kind == "float" else int
                return [DenseEmbedding([cast(x) for x in r["embedding"]]) for r in rows], kind
        raise parse_failure("elasticsearch", self.inference_id, "expected one [text_embedding] per input")

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
        body: dict[str, Any] = {"input": documents, "query": query, "return_documents": return_documents}
        if top_n:
            body["top_n"] = top_n
        answer = await self._call("rerank", body)
        try:
            return [
                RankedDocument(int(r["index"]), float(r["relevance_score"]), r.get("text"))
                for r in answer["rerank"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise parse_failure("elasticsearch", self.inference_id, f"missing {exc}") from exc
