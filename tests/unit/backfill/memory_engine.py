"""An in-memory index behind our own extension points (`PitScanner`, `BulkSink._stream`), so the
backfill loop's resume, expiry and outcome logic runs in milliseconds. It understands exactly the
queries, sorts and scripts the backfill sends; the real engines run in tests/integration.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import AsyncIterator
from typing import Any

from sidecar.backfill.scan import PitExpired, PitScanner
from sidecar.enrichment import MISSING, get_path, set_path
from sidecar.pipelines.schema import ErrorsConfig, SinkConfig
from sidecar.sinks.base import BulkSink, RequestFailure

_ASSIGN = re.compile(r"ctx\._source((?:\['[^']*'\])+) = params\['(p\d+)'\];")


def matches(query: dict[str, Any], doc: dict[str, Any]) -> bool:
    kind, body = next(iter(query.items()))
    if kind == "match_all":
        return True
    if kind == "exists":
        return get_path(doc, body["field"]) is not MISSING
    if kind == "term":
        field, value = next(iter(body.items()))
        return get_path(doc, field) == value
    assert kind == "bool", query
    ok = all(matches(q, doc) for q in body.get("filter", []))
    ok = ok and not any(matches(q, doc) for q in body.get("must_not", []))
    should = body.get("should", [])
    return ok and (not should or sum(matches(q, doc) for q in should) >= body.get("minimum_should_match", 1))


class MemoryIndex:
    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        self.docs = docs
        self.versions = dict.fromkeys(docs, 1)
        self.deleted_after_scan: set[str] = set()


class MemoryScanner(PitScanner):
    sort = [{"_id": "asc"}]  # noqa: RUF012 - mirrors the real scanners' class attribute
    stable_sort = True

    def __init__(self, index: MemoryIndex, *, stable: bool = True) -> None:
        super().__init__(client=None)
        self.index = index
        self.stable_sort = stable  # type: ignore[misc]
        self.pits: dict[str, dict[str, dict[str, Any]]] = {}
        self.ids = itertools.count()
        self.expire_next = 0  # the next N searches find their point in time gone
        self.expire_on_read: set[int] = set()  # page reads (1 first) that find it gone
        self.reads = 0
        self.opened = 0

    async def refresh(self, index: str) -> None:
        pass

    async def open(self, index: str, keep_alive: str) -> str:
        self.opened += 1
        pit = f"pit{next(self.ids)}"
        self.pits[pit] = copy.deepcopy(self.index.docs)
        return pit

    async def close(self, pit_id: str) -> None:
        self.pits.pop(pit_id, None)

    async def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        pit = body["pit"]["id"]
        if body["size"]:
            self.reads += 1
            if self.reads in self.expire_on_read:
                self.expire_next += 1
        if self.expire_next or pit not in self.pits:
            self.expire_next = max(0, self.expire_next - 1)
            self.pits.pop(pit, None)
            raise PitExpired(pit)
        snapshot = self.pits[pit]
        ids = sorted(i for i in snapshot if matches(body["query"], snapshot[i]))
        if "slice" in body:
            ids = [i for i in ids if int(i.lstrip("d")) % body["slice"]["max"] == body["slice"]["id"]]
        if "search_after" in body:
            ids = [i for i in ids if i > body["search_after"][0]]
        if body["size"] == 0:
            return {"hits": {"total": {"value": len(ids)}, "hits": []}}
        hits = [
            {"_index": "docs", "_id": i, "_source": snapshot[i], "sort": [i]} for i in ids[: body["size"]]
        ]
        return {"pit_id": pit, "hits": {"hits": hits}}

    def _missing_context(self, exc: Exception) -> bool:
        return False


class MemorySink(BulkSink):
    engine_name = "memory"

    def __init__(self, index: MemoryIndex) -> None:
        config = SinkConfig.model_validate({"engine": "opensearch", "urls": "http://x:1", "index": "docs"})
        super().__init__(config, ErrorsConfig.model_validate({"backoff": {"initial_ms": 1, "max_ms": 2}}))
        self.index = index
        self.client = None
        self.actions: list[dict[str, Any]] = []

    async def _stream(
        self, actions: list[dict[str, Any]], max_bytes: int
    ) -> AsyncIterator[tuple[bool, dict[str, Any]]]:
        for action in actions:
            self.actions.append(action)
            doc_id, op = action["_id"], action["_op_type"]
            doc = self.index.docs.get(doc_id)
            if doc is None or doc_id in self.index.deleted_after_scan:
                error = {"type": "document_missing_exception", "reason": f"[{doc_id}]: document missing"}
                yield False, {op: {"_id": doc_id, "status": 404, "error": error}}
                continue
            if "script" in action:
                for path, param in _ASSIGN.findall(action["script"]["source"]):
                    keys = re.findall(r"\['([^']*)'\]", path)
                    set_path(doc, ".".join(keys), action["script"]["params"][param])
            else:
                for path, value in _flatten(action["doc"]):
                    set_path(doc, path, value)
            self.index.versions[doc_id] += 1
            yield True, {op: {"_id": doc_id, "status": 200}}

    def _request_failure(self, exc: Exception) -> RequestFailure | None:
        return None

    async def _mget(self, index: str, docs: list[dict[str, Any]], paths: list[str]) -> list[dict[str, Any]]:
        return []

    async def _field_mapping(self, index: str, paths: list[str]) -> dict[str, Any] | None:
        return None

    async def index_exists(self, index: str) -> bool:
        return True

    async def create_index(self, index: str, body: dict[str, Any]) -> None:
        pass

    async def put_mapping(self, index: str, mappings: dict[str, Any]) -> None:
        pass

    async def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        pass

    async def close(self) -> None:
        pass


def _flatten(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Leaves of a partial document, merged as the engines merge objects (recursively)."""
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += _flatten(value, path + ".")
        else:
            out.append((path, value))
    return out
