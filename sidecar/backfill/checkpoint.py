"""Where a backfill remembers how far it got: an engine document (default) or a local file.

Kubernetes pods of a sliced backfill share no disk, so by default each slice keeps its checkpoint as
one document of a small index in the engine it scans. A checkpoint holds the point in time, the
cursor after the last acknowledged batch, the counters so far, and whether the run finished.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from sidecar.pipelines.schema import Engine

CHECKPOINT_INDEX = "sidecar-backfill-checkpoints"
CHECKPOINT_MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "pipeline": {"type": "keyword"},
        "index": {"type": "keyword"},
        "run": {"type": "keyword"},
        "done": {"type": "boolean"},
        "updated_at": {"type": "date"},
    },
}


class CheckpointStore(Protocol):
    async def load(self, key: str) -> dict[str, Any] | None: ...

    async def save(self, key: str, state: dict[str, Any]) -> None: ...

    async def load_run(self, run: str) -> list[dict[str, Any]]:
        """The checkpoints of every slice of one run (`state["run"] == run`)."""
        ...


class FileCheckpointStore:
    """One JSON file holding checkpoints by key; replaced atomically so a crash never tears it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, key: str, state: dict[str, Any]) -> None:
        data = self._read()
        data[key] = state
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    async def load(self, key: str) -> dict[str, Any] | None:
        state = (await asyncio.to_thread(self._read)).get(key)
        return state if isinstance(state, dict) else None

    async def save(self, key: str, state: dict[str, Any]) -> None:
        await asyncio.to_thread(self._write, key, state)

    async def load_run(self, run: str) -> list[dict[str, Any]]:
        data = await asyncio.to_thread(self._read)
        return [v for v in data.values() if isinstance(v, dict) and v.get("run") == run]


class EngineCheckpointStore:
    """Checkpoints as documents of `index`, written with the sink's client (so with its credentials)."""

    def __init__(self, engine: Engine, client: Any, index: str = CHECKPOINT_INDEX) -> None:
        self.engine = engine
        self.client = client
        self.index = index
        self._ready = False

    async def _ensure_index(self) -> None:
        if self._ready:
            return
        if not await self.client.indices.exists(index=self.index):
            try:
                if self.engine is Engine.OPENSEARCH:
                    await self.client.indices.create(index=self.index, body={"mappings": CHECKPOINT_MAPPINGS})
                else:
                    await self.client.indices.create(index=self.index, mappings=CHECKPOINT_MAPPINGS)
            except Exception as exc:  # another slice created it meanwhile
                if "resource_already_exists" not in str(exc):
                    raise
        self._ready = True

    async def load(self, key: str) -> dict[str, Any] | None:
        await self._ensure_index()
        # A first run finds no checkpoint: ask the clients not to raise (nor log a warning) for that 404.
        if self.engine is Engine.OPENSEARCH:
            body = await self.client.get(index=self.index, id=key, ignore=404)
        else:
            body = (await self.client.options(ignore_status=404).get(index=self.index, id=key)).body
        source = body.get("_source") if body.get("found") else None
        return dict(source["state"]) if source and isinstance(source.get("state"), dict) else None

    async def save(self, key: str, state: dict[str, Any]) -> None:
        await self._ensure_index()
        document = {
            "pipeline": state.get("pipeline"),
            "index": state.get("index"),
            "run": state.get("run"),
            "done": bool(state.get("done")),
            "updated_at": state.get("updated_at"),
            "key": key,
            "state": state,
        }
        if self.engine is Engine.OPENSEARCH:
            await self.client.index(index=self.index, id=key, body=document)
        else:
            await self.client.index(index=self.index, id=key, document=document)

    async def load_run(self, run: str) -> list[dict[str, Any]]:
        await self._ensure_index()
        await self.client.indices.refresh(index=self.index)
        query = {"term": {"run": run}}
        if self.engine is Engine.OPENSEARCH:
            answer = await self.client.search(index=self.index, body={"query": query, "size": 1000})
        else:
            answer = (await self.client.search(index=self.index, query=query, size=1000)).body
        return [
            dict(h["_source"]["state"]) for h in answer["hits"]["hits"] if "state" in h.get("_source", {})
        ]
