"""Zero-downtime model changes: enrich into a new index, then move an alias onto it in one step.

The new index gets the source index's mappings plus the pipeline's target mappings; the backfill
copies every document with its new vectors; once every slice finished, the alias moves atomically
from whatever it pointed at to the new index, so searches switch models between two requests.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sidecar.pipelines.schema import Engine, PipelineConfig
from sidecar.sinks.base import BulkSink
from sidecar.sinks.setup import index_settings

log = logging.getLogger(__name__)


def _merge_properties(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, mapping in extra.items():
        current = out.get(name)
        if isinstance(current, dict) and "properties" in current and "properties" in mapping:
            out[name] = {
                **current,
                "properties": _merge_properties(current["properties"], mapping["properties"]),
            }
        else:
            out[name] = mapping
    return out


async def source_mappings(client: Any, index: str) -> dict[str, Any]:
    answer = await client.indices.get_mapping(index=index)
    body = answer.body if hasattr(answer, "body") else answer
    first: Any = next(iter(body.values()), {})
    mappings = first.get("mappings", {})
    return dict(mappings) if isinstance(mappings, dict) else {}


async def prepare_target(
    config: PipelineConfig, sink: BulkSink, client: Any, source: str, target: str, mappings: dict[str, Any]
) -> str:
    """Create `target` (unless it exists) with the source's mappings plus `mappings` (the pipeline's)."""
    if await sink.index_exists(target):
        await sink.put_mapping(target, mappings)
        return f"index [{target}] exists; its mapping was extended"
    merged = await source_mappings(client, source)
    merged["properties"] = _merge_properties(merged.get("properties", {}), mappings["properties"])
    body: dict[str, Any] = {"mappings": merged}
    settings = index_settings(config)
    if settings:
        body["settings"] = settings
    await sink.create_index(target, body)
    return f"created index [{target}] with the mappings of [{source}]"


async def swap_alias(engine: Engine, client: Any, alias: str, target: str) -> list[str]:
    """Point `alias` at `target` only, atomically; returns the indices it left."""
    try:
        answer = await client.indices.get_alias(name=alias)
        body = answer.body if hasattr(answer, "body") else answer
        holders = [name for name in body if name != target]
    except Exception as exc:
        if getattr(exc, "status_code", None) != 404 and getattr(exc, "status", None) != 404:
            raise
        holders = []
    actions: list[dict[str, Any]] = [{"remove": {"index": name, "alias": alias}} for name in holders]
    actions.append({"add": {"index": target, "alias": alias}})
    if engine is Engine.OPENSEARCH:
        await client.indices.update_aliases(body={"actions": actions})
    else:
        await client.indices.update_aliases(actions=actions)
    log.info("alias [%s] now points at [%s] (left %s)", alias, target, holders)
    return holders
