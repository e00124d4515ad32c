"""Point-in-time scans with `search_after`, over Elasticsearch's and OpenSearch's APIs.

Elasticsearch pages on `_shard_doc`, the cheapest total order, but it belongs to one point in time.
OpenSearch has no `_shard_doc`, and `_doc` alone skips documents across shards, so it pages on `_id`:
a total order that also holds in a new point in time, so a cursor survives an expired one.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sidecar.pipelines.schema import Engine


class PitExpired(Exception):
    """The point in time is gone (expired or closed)."""


@dataclass(frozen=True)
class Page:
    hits: list[dict[str, Any]]
    pit_id: str  # the engine may hand out a new id with each page

    @property
    def cursor(self) -> list[Any] | None:
        return list(self.hits[-1]["sort"]) if self.hits else None


class PitScanner(abc.ABC):
    sort: ClassVar[list[dict[str, str]]]
    stable_sort: ClassVar[bool]  # does a cursor stay valid in a new point in time?

    def __init__(self, client: Any) -> None:
        self.client = client

    @abc.abstractmethod
    async def open(self, index: str, keep_alive: str) -> str: ...

    @abc.abstractmethod
    async def close(self, pit_id: str) -> None: ...

    @abc.abstractmethod
    async def _search(self, body: dict[str, Any]) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _missing_context(self, exc: Exception) -> bool: ...

    async def refresh(self, index: str) -> None:
        await self.client.indices.refresh(index=index)

    async def page(
        self,
        pit_id: str,
        keep_alive: str,
        query: dict[str, Any],
        size: int,
        *,
        after: Sequence[Any] | None = None,
        slice_: tuple[int, int] | None = None,
        source: Any = True,
    ) -> Page:
        body: dict[str, Any] = {
            "size": size,
            "query": query,
            "sort": self.sort,
            "pit": {"id": pit_id, "keep_alive": keep_alive},
            "_source": source,
            "track_total_hits": False,
        }
        if after is not None:
            body["search_after"] = list(after)
        if slice_ is not None and slice_[1] > 1:
            body["slice"] = {"id": slice_[0], "max": slice_[1]}
        answer = await self._checked(body)
        return Page(list(answer["hits"]["hits"]), str(answer.get("pit_id") or pit_id))

    async def count(
        self, pit_id: str, keep_alive: str, query: dict[str, Any], slice_: tuple[int, int] | None
    ) -> int:
        body: dict[str, Any] = {
            "size": 0,
            "query": query,
            "pit": {"id": pit_id, "keep_alive": keep_alive},
            "track_total_hits": True,
        }
        if slice_ is not None and slice_[1] > 1:
            body["slice"] = {"id": slice_[0], "max": slice_[1]}
        total = (await self._checked(body))["hits"]["total"]
        return int(total["value"] if isinstance(total, dict) else total)

    async def _checked(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._search(body)
        except Exception as exc:
            if self._missing_context(exc):
                raise PitExpired(str(exc)) from exc
            raise


def _status_and_text(exc: Exception) -> tuple[Any, str]:
    return getattr(exc, "status_code", None) or getattr(exc, "status", None), str(exc)


class ElasticsearchScanner(PitScanner):
    sort: ClassVar[list[dict[str, str]]] = [{"_shard_doc": "asc"}]
    stable_sort: ClassVar[bool] = False

    async def open(self, index: str, keep_alive: str) -> str:
        answer = await self.client.open_point_in_time(index=index, keep_alive=keep_alive)
        return str(answer["id"])

    async def close(self, pit_id: str) -> None:
        await self.client.close_point_in_time(id=pit_id)

    async def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        kwargs = {("source" if k == "_source" else k): v for k, v in body.items()}
        answer = await self.client.search(**kwargs)
        return dict(answer.body)

    def _missing_context(self, exc: Exception) -> bool:
        status, text = _status_and_text(exc)
        return status == 404 and "search_context_missing" in text


class OpenSearchScanner(PitScanner):
    sort: ClassVar[list[dict[str, str]]] = [{"_id": "asc"}]
    stable_sort: ClassVar[bool] = True

    async def open(self, index: str, keep_alive: str) -> str:
        answer = await self.client.create_pit(index=index, params={"keep_alive": keep_alive})
        return str(answer["pit_id"])

    async def close(self, pit_id: str) -> None:
        await self.client.delete_pit(body={"pit_id": [pit_id]})

    async def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.client.search(body=body))

    def _missing_context(self, exc: Exception) -> bool:
        status, text = _status_and_text(exc)
        return status == 404 and "search_context_missing" in text


def scanner_for(engine: Engine, client: Any) -> PitScanner:
    if engine is Engine.OPENSEARCH:
        return OpenSearchScanner(client)
    return ElasticsearchScanner(client)
