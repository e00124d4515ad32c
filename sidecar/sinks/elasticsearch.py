"""Bulk sink for Elasticsearch (and the ES-wire emulator) on the official async client."""

from __future__ import annotations

from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch
from elasticsearch.helpers import async_streaming_bulk

from sidecar.sinks.base import BulkSink, RequestFailure
from sidecar.sinks.fastjson import es_serializers


def make_client(config: Any) -> AsyncElasticsearch:
    """A client without its own retries: `BulkSink` retries with backoff and pauses consumption."""
    auth = config.auth
    options: dict[str, Any] = {
        "request_timeout": config.request_timeout_s,
        "max_retries": 0,
        "retry_on_timeout": False,
        "verify_certs": auth.verify_certs,
    }
    if auth.ca_file:
        options["ca_certs"] = auth.ca_file
    if auth.api_key is not None:
        options["api_key"] = auth.api_key.get_secret_value()
    elif auth.username is not None and auth.password is not None:
        options["basic_auth"] = (auth.username, auth.password.get_secret_value())
    return AsyncElasticsearch(config.urls, serializers=es_serializers(), **options)


class ElasticsearchSink(BulkSink):
    engine_name = "elasticsearch"
    streaming_bulk = staticmethod(async_streaming_bulk)

    def __init__(self, *args: Any, client: AsyncElasticsearch | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client or make_client(self.config)

    def _request_failure(self, exc: Exception) -> RequestFailure | None:
        if isinstance(exc, ApiError):
            return RequestFailure(exc.status_code, f"{exc.status_code} {exc.error}: {exc.message}"[:1000])
        if isinstance(exc, TransportError):
            return RequestFailure(None, f"{type(exc).__name__}: {exc}"[:1000])
        return None

    async def _mget(self, index: str, docs: list[dict[str, Any]], paths: list[str]) -> list[dict[str, Any]]:
        try:
            answer = await self.client.mget(index=index, docs=docs, source_includes=paths)
        except ApiError as exc:
            if exc.status_code == 404:
                return []
            raise
        return list(answer.body.get("docs", []))

    async def _field_mapping(self, index: str, paths: list[str]) -> dict[str, Any] | None:
        try:
            answer = await self.client.indices.get_field_mapping(index=index, fields=paths)
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return dict(answer.body)

    async def index_exists(self, index: str) -> bool:
        return bool(await self.client.indices.exists(index=index))

    async def create_index(self, index: str, body: dict[str, Any]) -> None:
        await self.client.indices.create(index=index, body=body)

    async def put_mapping(self, index: str, mappings: dict[str, Any]) -> None:
        await self.client.indices.put_mapping(index=index, body=mappings)

    async def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        await self.client.indices.put_index_template(name=name, body=body)

    async def close(self) -> None:
        await self.client.close()
