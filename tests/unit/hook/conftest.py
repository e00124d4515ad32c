"""A hook wired to the deterministic fake inference service and a scripted engine.

The engine's side is scripted through our own extension points (`Upstream.send`, `BulkSink._mget`);
the real engines are exercised by tests/integration/test_hook_*.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from sidecar.enrichment import Enricher
from sidecar.hook.pipelines import HookPipeline
from sidecar.hook.state import Hook
from sidecar.hook.upstream import Upstream, UpstreamAnswer
from sidecar.pipelines.schema import PipelineConfig
from sidecar.settings import Settings, load_settings
from sidecar.sinks.opensearch import OpenSearchSink
from tests.unit.worker.fakes import FakeService

PIPELINE_YAML = """
name: articles
source:
  ingest_hook:
    indices: ["articles*", "-articles-raw"]
fields:
  - input: [title, body]
    endpoint: .splade-tiny
    target: ml.tokens
    skip_if_unchanged: {skip}
sink:
  engine: opensearch
  urls: ["http://127.0.0.1:9"]
  index: articles
"""


def pipeline_config(skip: bool = False) -> PipelineConfig:
    import yaml

    return PipelineConfig.model_validate(yaml.safe_load(PIPELINE_YAML.format(skip=str(skip).lower())))


class StoredSink(OpenSearchSink):
    """An OpenSearch sink whose stored documents are given (no engine)."""

    def __init__(self, config: PipelineConfig, stored: dict[str, dict[str, Any]]) -> None:
        super().__init__(config.sink, config.errors, pipeline=config.name)
        self.stored = stored
        self.lookups: list[tuple[str, list[str], list[str]]] = []

    async def _mget(self, index: str, docs: list[dict[str, Any]], paths: list[str]) -> list[dict[str, Any]]:
        self.lookups.append((index, [d["_id"] for d in docs], paths))
        return [
            {"_id": d["_id"], "found": d["_id"] in self.stored, "_source": self.stored.get(d["_id"], {})}
            for d in docs
        ]


class ScriptedUpstream(Upstream):
    """Answers each bulk as an engine would: one item per action line, `created` unless scripted."""

    def __init__(self, statuses: dict[str, int] | None = None, status: int = 200) -> None:
        super().__init__("http://engine.invalid")
        self.statuses = statuses or {}
        self.status = status
        self.calls: list[tuple[str, str, list[tuple[str, str]], bytes]] = []

    async def send(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]],
        body: bytes | AsyncIterator[bytes],
        content_type: str,
        *,
        client_authorization: str | None = None,
        content_length: int | None = None,
    ) -> UpstreamAnswer:
        data = body if isinstance(body, bytes) else b"".join([c async for c in body])
        self.calls.append((method, path, list(params), data))
        if self.status != 200:
            return UpstreamAnswer(
                self.status, b'{"error":"engine says no","status":%d}' % self.status, "application/json", []
            )
        if not path.endswith("_bulk"):
            return UpstreamAnswer(
                201, json.dumps({"result": "created", "_id": "x"}).encode(), "application/json", []
            )
        items = []
        lines = data.split(b"\n")
        i = 0
        while i < len(lines) and lines[i]:
            action = json.loads(lines[i])
            op, meta = next(iter(action.items()))
            status = self.statuses.get(str(meta.get("_id")), 201)
            item: dict[str, Any] = {"_index": meta.get("_index"), "_id": meta.get("_id"), "status": status}
            if status >= 300:
                item["error"] = {"type": "engine_exception", "reason": "scripted"}
            items.append({op: item})
            i += 1 if op == "delete" else 2
        body_out = {
            "took": 3,
            "errors": any("error" in next(iter(x.values())) for x in items),
            "items": items,
        }
        return UpstreamAnswer(
            200, json.dumps(body_out).encode(), "application/json; charset=UTF-8", ["299 test"]
        )


HookFactory = Callable[..., Hook]


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def make_hook(service: FakeService, tmp_path: Path) -> HookFactory:
    def factory(
        *,
        skip: bool = False,
        stored: dict[str, dict[str, Any]] | None = None,
        upstream: Upstream | None = None,
        **overrides: Any,
    ) -> Hook:
        config = pipeline_config(skip)
        settings: Settings = load_settings(registry_path=tmp_path / "r.sqlite3", **overrides)
        pipeline = HookPipeline(
            config,
            Enricher(config.fields, service, pipeline=config.name),
            StoredSink(config, stored or {}),
        )
        return Hook([pipeline], upstream or ScriptedUpstream(), settings)

    return factory
