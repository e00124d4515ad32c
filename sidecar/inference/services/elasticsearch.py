"""Another cluster's (or sidecar's) inference API as a remote service: `POST {url}/_inference/{task}/{model_id}`
(Authorization `ApiKey <api_key>`), through the project's one `_inference` client:
https://www.elastic.co/guide/en/elasticsearch/reference/current/post-inference-api.html"""

from __future__ import annotations

from typing import Any

from sidecar.inference.api_client import InferenceApiClient
from sidecar.inference.services.base import Runtime
from sidecar.inference.services.remote import RemoteCaller
from sidecar.inference.types import DenseEmbedding, InputType, RankedDocument, SparseEmbedding


class ElasticsearchRuntime(Runtime):
    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        self.inference_id = inference_id
        self.remote_id = str(settings["model_id"])
        self.api = InferenceApiClient(str(settings["url"]), caller, secrets.get("api_key"))

    async def aclose(self) -> None:
        await self.api.aclose()

    async def sparse(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> list[SparseEmbedding]:
        return await self.api.sparse(self.remote_id, texts)

    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        return await self.api.dense(self.remote_id, texts, input_type)

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
        return await self.api.rerank(
            self.remote_id, query, documents, top_n=top_n, return_documents=return_documents
        )
