"""A small async HTTP client for the search side of Elasticsearch and OpenSearch.

Plain JSON over httpx (both engines speak it the same way for what we need); engine errors become
`SidecarError`s carrying the engine's status and error type, connection failures try the next URL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from sidecar.errors import RemoteServiceError, SidecarError
from sidecar.pipelines.schema import Engine, SinkAuth, SinkConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    doc_id: str
    score: float
    source: dict[str, Any] = field(default_factory=dict)


def _auth_headers(auth: SinkAuth | None) -> tuple[dict[str, str], httpx.BasicAuth | None]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if auth is None:
        return headers, None
    if auth.api_key is not None:
        headers["authorization"] = f"ApiKey {auth.api_key.get_secret_value()}"
    basic = None
    if auth.username is not None:
        password = auth.password.get_secret_value() if auth.password is not None else ""
        basic = httpx.BasicAuth(auth.username, password)
    return headers, basic


def engine_error(response: httpx.Response) -> SidecarError:
    """The engine's error body as a SidecarError with the same status and type."""
    try:
        error = response.json().get("error")
    except (json.JSONDecodeError, AttributeError):
        error = None
    if isinstance(error, dict):
        es_type = str(error.get("type", "exception"))
        causes = error.get("root_cause") or [error]
        reason = str(causes[0].get("reason") if isinstance(causes[0], dict) else error.get("reason"))
    else:
        es_type, reason = "exception", str(error or response.text[:500])
    return SidecarError(f"engine answered {response.status_code}: {reason}", status=response.status_code,
                        es_type=es_type)


class EngineClient:
    def __init__(
        self, urls: Sequence[str], *, auth: SinkAuth | None = None, timeout_s: float = 30.0
    ) -> None:
        headers, basic = _auth_headers(auth)
        verify: bool | str = True
        if auth is not None:
            verify = auth.ca_file if auth.ca_file else auth.verify_certs
        self.urls = [u.rstrip("/") for u in urls]
        self._client = httpx.AsyncClient(headers=headers, auth=basic, verify=verify, timeout=timeout_s)
        self.knn: bool | None = None  # whether the engine runs kNN queries; asked once (`knn_support`)

    @classmethod
    def from_sink(cls, sink: SinkConfig) -> EngineClient:
        return cls(sink.urls, auth=sink.auth, timeout_s=sink.request_timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> EngineClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        ok: tuple[int, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; 2xx (or a status in `ok`) returns the JSON body, others raise."""
        last: Exception | None = None
        for url in self.urls:
            try:
                response = await self._client.request(
                    method, url + path, json=body, content=content, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                last = exc
                continue
            if response.is_success or response.status_code in ok:
                return response.json() if response.content else {}
            raise engine_error(response)
        raise RemoteServiceError(f"no engine reachable at {self.urls}: {last}", retriable=True)

    async def search(self, index: str, body: dict[str, Any]) -> list[Hit]:
        answer = await self.request("POST", f"/{index}/_search", body=body)
        return [
            Hit(str(h["_id"]), float(h["_score"] or 0.0), h.get("_source") or {})
            for h in answer.get("hits", {}).get("hits", [])
        ]


async def knn_support(client: EngineClient, engine: Engine | str) -> bool:
    """Whether the engine has vector fields and kNN queries: Elasticsearch always, OpenSearch with its
    k-NN plugin. Asked once per client and logged; a cluster that hides its plugin list is assumed
    to have it (a missing plugin then shows in the engine's own error)."""
    if Engine(engine) is Engine.ELASTICSEARCH:
        return True
    if client.knn is None:
        try:
            plugins = await client.request("GET", "/_cat/plugins", params={"format": "json"})
        except SidecarError as exc:
            if isinstance(exc, RemoteServiceError):
                raise
            log.warning("cannot list the plugins of OpenSearch at %s (%s); assuming k-NN", client.urls, exc)
            client.knn = True
            return True
        client.knn = any("knn" in str(p.get("component", "")).lower() for p in plugins)
        if client.knn:
            log.info("OpenSearch at %s has the k-NN plugin: dense retrieval runs in the engine", client.urls)
        else:
            log.warning(
                "OpenSearch at %s has no k-NN plugin: no vector fields, dense retrieval cannot run there",
                client.urls,
            )
    return client.knn
