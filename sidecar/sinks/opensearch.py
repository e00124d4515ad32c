"""Bulk sink for OpenSearch on opensearch-py's async client."""

from __future__ import annotations

from typing import Any

from opensearchpy import AsyncOpenSearch, NotFoundError, TransportError
from opensearchpy.helpers import async_streaming_bulk

from sidecar.sinks.base import BulkSink, RequestFailure
from sidecar.sinks.fastjson import OsJson


def make_client(config: Any) -> AsyncOpenSearch:
    """A client without its own retries: `BulkSink` retries with backoff and pauses consumption."""
    auth = config.auth
    options: dict[str, Any] = {
        "timeout": config.request_timeout_s,
        "max_retries": 0,
        "retry_on_timeout": False,
        "verify_certs": auth.verify_certs,
    }
    if auth.ca_file:
        options["ca_certs"] = auth.ca_file
    if auth.username is not None and auth.password is not None:
        options["http_auth"] = (auth.username, auth.password.get_secret_value())
    return AsyncOpenSearch(config.urls, serializer=OsJson(), **options)


class OpenSearchSink(BulkSink):
    engine_name = "opensearch"
    streaming_bulk = staticmethod(async_streaming_bulk)

    def __init__(self, *args: Any, client: AsyncOpenSearch | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client or make_client(self.config)

    def _request_failure(self, exc: Exception) -> RequestFailure | None:
        if isinstance(exc, TransportError):
            status = exc.status_code if isinstance(exc.status_code, int) else None
            return RequestFailure(status, f"{type(exc).__name__}: {exc}"[:1000])
        return None

    async def _mget(self, index: str, docs: list[dict[str, Any]], paths: list[str]) -> list[dict[str, Any]]:
        try:
            answer = await self.client.mget(
                index=index, body={"docs": docs}, _source_includes=",".join(paths)
            )
        except NotFoundError:
            return []
        return list(answer.get("docs", []))

    async def _field_mapping(self, index: str, paths: list[str]) -> dict[str, Any] | None:
        try:
            return dict(await self.client.indices.get_field_mapping(index=index, fields=",".join(paths)))
        except NotFoundError:
            return None

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
