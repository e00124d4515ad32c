"""Endpoint store in an index of the target engine, so every replica shares the same endpoints.

Plain document APIs over a synchronous `httpx.Client`, the same on OpenSearch and Elasticsearch:

    create          PUT {index}/_create/{id}   (409 -> "already exists")
    update          GET the document, PUT it back with if_seq_no/if_primary_term, retry on 409
    delete          DELETE {index}/_doc/{id}
    list            {index}/_search for kind=endpoint (at most 10,000 endpoints)
    pipeline usage  one document per pipeline, id `pipeline-usage:{pipeline}` (ids cannot clash:
                    inference ids have no `:`), found by a term query on `inference_ids`

Every write refreshes the index (`refresh=true`: writes are rare and the index is tiny), so the
next search on any replica sees it. The index is created on first use (explicit mapping,
`dynamic: false`; two replicas creating it at once is fine).

Reads happen on every inference request, from async code, so they do not go to the engine each
time: all endpoints are cached for `cache_s` seconds, this process's writes invalidate the cache,
and an id missing from the cache is looked up once with a real-time GET (an endpoint another
replica created a moment ago is found at once). Other replicas' updates and deletes show after at
most `cache_s`. When re-reading the endpoints fails, the last ones read keep serving (with a
warning, retried every `cache_s`) until the engine answers again; writes fail meanwhile.

SECURITY: endpoint secrets (`api_key`, ...) are stored in clear text in the documents' `_source`.
Restrict the index to the sidecar's engine user (a dot-prefixed name also makes it a hidden index).
Secrets never appear in errors or logs: failures name the engine URL (without credentials), the
index, the HTTP status and the engine's error type only.

The engine URL may carry `user:password@` (basic auth).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

import httpx

from sidecar.errors import SidecarError, UpstreamUnavailableError
from sidecar.inference.endpoints import (
    Endpoint,
    already_exists,
    endpoint_config,
    endpoint_from_parts,
    not_found,
)
from sidecar.retry import Backoff, TryAgain, retry_sync

log = logging.getLogger(__name__)

ENDPOINT_KIND = "endpoint"
USAGE_KIND = "pipeline_usage"
MAX_RESULTS = 10_000
UPDATE_TRIES = 5
UPDATE_BACKOFF = Backoff(0.02, 0.2)
READY_BACKOFF = Backoff(0.05, 0.5)  # polls of an index whose primary shard is not active yet


class _Unready(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


_KEYWORD = {"type": "keyword"}
MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "kind": _KEYWORD,
        "inference_id": _KEYWORD,
        "task_type": _KEYWORD,
        "service": _KEYWORD,
        "pipeline": _KEYWORD,
        "inference_ids": _KEYWORD,
        "updated": {"type": "date", "format": "epoch_millis"},
        # Kept in _source only: never searched, and secrets must not reach any index structure.
        "config": {"type": "object", "enabled": False},
        "secrets": {"type": "object", "enabled": False},
    },
}


def _error_type(resp: httpx.Response) -> str:
    try:
        error = resp.json().get("error")
    except ValueError:
        return ""
    return str(error.get("type", "")) if isinstance(error, dict) else ""


class IndexEndpointStore:
    def __init__(
        self,
        engine_url: str,
        index: str,
        *,
        cache_s: float = 1.0,
        timeout_s: float = 10.0,
    ) -> None:
        url = httpx.URL(engine_url)
        auth = httpx.BasicAuth(url.username, url.password) if url.username else None
        base = url.copy_with(username=None, password=None)
        self.index = index
        self.where = f"index [{index}] at {str(base).rstrip('/')}"
        self._path = "/" + quote(index, safe="")
        self._cache_s = cache_s
        self._client = httpx.Client(
            base_url=base,
            auth=auth,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
            headers={"Accept": "application/json"},
        )
        self._lock = threading.Lock()
        self._endpoints: dict[str, Endpoint] = {}
        self._loaded_at: float | None = None
        self._generation = 0  # bumped by own writes so an older refresh in flight is not kept
        self._index_ready = False
        self._ever_loaded = False

    # --- HTTP -------------------------------------------------------------------------------------
    def _unavailable(self, what: str, *, retriable: bool = True) -> UpstreamUnavailableError:
        error = UpstreamUnavailableError(f"Endpoint registry {self.where} is unavailable: {what}", status=503)
        error.retriable = retriable
        return error

    def _failed(self, resp: httpx.Response, action: str) -> UpstreamUnavailableError:
        detail = f"HTTP {resp.status_code} {_error_type(resp)}".rstrip()
        return self._unavailable(f"could not {action}: {detail}", retriable=False)

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        *,
        check: bool = True,
    ) -> httpx.Response:
        try:
            resp = self._client.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise self._unavailable(f"{type(exc).__name__}: {exc}") from None
        if not check:
            return resp
        if resp.status_code >= 500:
            raise self._unavailable(f"HTTP {resp.status_code} {_error_type(resp)}".rstrip())
        if resp.status_code in (401, 403):
            raise self._failed(resp, "authenticate (check the credentials and the index privileges)")
        return resp

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        if not self._index_ready:
            self._ensure_index()
        resp = self._send(method, path, body, params)
        if resp.status_code == 404 and _error_type(resp) == "index_not_found_exception":
            self._index_ready = False  # deleted while we ran: create it again, once
            self._ensure_index()
            resp = self._send(method, path, body, params)
        return resp

    def _json(self, resp: httpx.Response) -> dict[str, Any]:
        try:
            body = resp.json()
        except ValueError:
            raise self._unavailable(f"HTTP {resp.status_code} with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise self._unavailable(f"HTTP {resp.status_code} with a body that is not a JSON object")
        return body

    def _ensure_index(self, wait_s: float = 10.0) -> None:
        resp = self._send("HEAD", self._path)
        if resp.status_code == 404:
            # One shard; a replica wherever a second node exists (like the engines' own system indices).
            settings: dict[str, Any] = {"number_of_shards": 1, "auto_expand_replicas": "0-1"}
            if self.index.startswith("."):
                settings["hidden"] = True
            resp = self._send("PUT", self._path, {"settings": {"index": settings}, "mappings": MAPPINGS})
            if resp.is_success:  # the create call returns once the primary shard is active
                self._index_ready = True
                return
            if _error_type(resp) != "resource_already_exists_exception":
                raise self._failed(resp, "create the index")
        elif not resp.is_success:
            raise self._failed(resp, "check the index")

        # It exists, perhaps created a moment ago by another replica: until its primary shard is
        # active, searches answer 503. Count (read privilege only) until it answers.
        def count() -> httpx.Response:
            resp = self._send("GET", f"{self._path}/_count", check=False)
            if resp.status_code >= 500:
                raise _Unready(resp)
            return resp

        try:
            resp = retry_sync(count, READY_BACKOFF, retry_on=_Unready, within_s=wait_s)
        except _Unready as unready:
            resp = unready.response
        if resp.status_code >= 500:
            raise self._unavailable(f"HTTP {resp.status_code} {_error_type(resp)}".rstrip())
        if not resp.is_success:
            raise self._failed(resp, "read the index")
        self._index_ready = True

    def _doc(self, doc_id: str) -> str:
        return f"{self._path}/_doc/{quote(doc_id, safe='')}"

    def _search(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        resp = self._request("POST", f"{self._path}/_search", {"size": MAX_RESULTS, "query": query})
        if not resp.is_success:
            raise self._failed(resp, "search")
        hits = self._json(resp).get("hits", {}).get("hits", [])
        return [h["_source"] for h in hits if isinstance(h.get("_source"), dict)]

    # --- documents --------------------------------------------------------------------------------
    @staticmethod
    def _document(e: Endpoint) -> dict[str, Any]:
        return {
            "kind": ENDPOINT_KIND,
            "inference_id": e.inference_id,
            "task_type": str(e.task_type),
            "service": e.service,
            "config": endpoint_config(e),
            "secrets": e.secrets,
            "updated": int(time.time() * 1000),
        }

    @staticmethod
    def _endpoint(source: dict[str, Any]) -> Endpoint | None:
        if source.get("kind") != ENDPOINT_KIND:
            return None
        try:
            return endpoint_from_parts(
                source["inference_id"],
                source["task_type"],
                source["service"],
                source["config"],
                source.get("secrets") or {},
            )
        except (KeyError, TypeError, ValueError, AttributeError):  # written by hand? skip, keep the rest
            log.warning("skipping malformed endpoint document [%s]", source.get("inference_id"))
            return None

    def _fetch(self, inference_id: str) -> tuple[Endpoint, dict[str, Any]] | None:
        """The stored endpoint (real-time GET) and its document metadata, or None."""
        resp = self._request("GET", self._doc(inference_id))
        if resp.status_code == 404:
            return None
        if not resp.is_success:
            raise self._failed(resp, f"read endpoint [{inference_id}]")
        doc = self._json(resp)
        endpoint = self._endpoint(doc.get("_source") or {}) if doc.get("found", True) else None
        return (endpoint, doc) if endpoint is not None else None

    # --- cache ------------------------------------------------------------------------------------
    def _written(self, inference_id: str, endpoint: Endpoint | None) -> None:
        """After an own write: re-read at the next access, and never serve the old version again."""
        with self._lock:
            self._generation += 1
            self._loaded_at = None
            endpoints = dict(self._endpoints)  # copy on write: callers may hold the old dict
            if endpoint is None:
                endpoints.pop(inference_id, None)
            else:
                endpoints[inference_id] = endpoint
            self._endpoints = endpoints

    def _snapshot(self) -> dict[str, Endpoint]:
        with self._lock:
            if self._loaded_at is not None and time.monotonic() - self._loaded_at < self._cache_s:
                return self._endpoints
            generation = self._generation
        try:
            sources = self._search({"term": {"kind": ENDPOINT_KIND}})
        except SidecarError as exc:
            if not self._ever_loaded:
                raise
            log.warning("keeping the cached endpoints: %s", exc.reason)
            with self._lock:  # try again after one more TTL, not on every request
                self._loaded_at = time.monotonic()
                return self._endpoints
        endpoints = {e.inference_id: e for e in map(self._endpoint, sources) if e is not None}
        with self._lock:
            if generation == self._generation:
                self._endpoints, self._loaded_at = endpoints, time.monotonic()
            self._ever_loaded = True
        return endpoints

    # --- EndpointStore ----------------------------------------------------------------------------
    def load(self, inference_id: str) -> Endpoint | None:
        found = self._snapshot().get(inference_id)
        if found is not None:
            return found
        generation = self._generation
        fetched = self._fetch(inference_id)  # created by another replica within the TTL?
        if fetched is None:
            return None
        with self._lock:
            if generation == self._generation:  # no own write in between
                self._endpoints = {**self._endpoints, inference_id: fetched[0]}
        return fetched[0]

    def load_all(self) -> list[Endpoint]:
        return list(self._snapshot().values())

    def insert(self, endpoint: Endpoint) -> None:
        path = f"{self._path}/_create/{quote(endpoint.inference_id, safe='')}"
        resp = self._request("PUT", path, self._document(endpoint), {"refresh": "true"})
        if resp.status_code == 409:
            raise already_exists(endpoint.inference_id)
        if not resp.is_success:
            raise self._failed(resp, f"create endpoint [{endpoint.inference_id}]")
        self._written(endpoint.inference_id, endpoint)

    def update(self, inference_id: str, change: Callable[[Endpoint], Endpoint]) -> Endpoint:
        def attempt() -> Endpoint:
            fetched = self._fetch(inference_id)
            if fetched is None:
                raise not_found(inference_id)
            current, doc = fetched
            endpoint = change(current)
            params = {
                "if_seq_no": doc["_seq_no"],
                "if_primary_term": doc["_primary_term"],
                "refresh": "true",
            }
            resp = self._request("PUT", self._doc(inference_id), self._document(endpoint), params)
            if resp.status_code == 409:  # another replica wrote in between: read it again
                raise TryAgain(f"endpoint [{inference_id}] changed during the update")
            if not resp.is_success:
                raise self._failed(resp, f"update endpoint [{inference_id}]")
            self._written(inference_id, endpoint)
            return endpoint

        try:  # jittered waits, so two replicas updating the same endpoint do not collide again
            return retry_sync(attempt, UPDATE_BACKOFF, retry_on=TryAgain, attempts=UPDATE_TRIES)
        except TryAgain:
            raise SidecarError(
                f"Inference endpoint [{inference_id}] kept changing during the update; try again",
                status=409,
                es_type="version_conflict_engine_exception",
            ) from None

    def remove(self, inference_id: str) -> None:
        resp = self._request("DELETE", self._doc(inference_id), params={"refresh": "true"})
        if resp.is_success or resp.status_code == 404:
            self._written(inference_id, None)
        if resp.status_code == 404:
            raise not_found(inference_id)
        if not resp.is_success:
            raise self._failed(resp, f"delete endpoint [{inference_id}]")

    def set_pipeline_usage(self, pipeline: str, inference_ids: Iterable[str]) -> None:
        ids = list(inference_ids)
        doc_id = self._doc(f"pipeline-usage:{pipeline}")
        if not ids:
            resp = self._request("DELETE", doc_id, params={"refresh": "true"})
            if not resp.is_success and resp.status_code != 404:
                raise self._failed(resp, f"clear the endpoints of pipeline [{pipeline}]")
            return
        body = {
            "kind": USAGE_KIND,
            "pipeline": pipeline,
            "inference_ids": ids,
            "updated": int(time.time() * 1000),
        }
        resp = self._request("PUT", doc_id, body, {"refresh": "true"})
        if not resp.is_success:
            raise self._failed(resp, f"record the endpoints of pipeline [{pipeline}]")

    def pipelines_using(self, inference_id: str) -> list[str]:
        query = {
            "bool": {"filter": [{"term": {"kind": USAGE_KIND}}, {"term": {"inference_ids": inference_id}}]}
        }
        return sorted(str(s["pipeline"]) for s in self._search(query))

    def ping(self) -> None:
        self._ensure_index(wait_s=0.0)  # a probe answers at once

    def close(self) -> None:
        self._client.close()
