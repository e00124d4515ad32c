"""Create the mappings a pipeline needs (`sidecar setup`, and the worker at start-up).

Target fields are mapped explicitly: left to dynamic mapping, a `rank_features` object would become
a pile of float fields. A plain index is created (or its mapping extended); a date-math index gets
an index template matching its static prefix so every day's index is born with the mapping.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sidecar.pipelines.schema import Engine, FieldConfig, PipelineConfig, TargetType
from sidecar.sinks.base import BulkSink
from sidecar.sinks.date_math import is_date_math, resolve_index, static_prefix

log = logging.getLogger(__name__)

# Doc values (not an inverted index) keep the hash cheap yet let `exists` queries find documents
# without it: `rank_features` fields cannot be queried for existence, so the backfill relies on this.
HASH_MAPPING = {"type": "keyword", "index": False}


def target_mapping(engine: Engine, field: FieldConfig, dims: Mapping[str, int]) -> dict[str, Any]:
    if field.type is TargetType.RANK_FEATURES:
        return {"type": "rank_features"}
    if field.type is TargetType.SPARSE_VECTOR:
        return {"type": "sparse_vector"}
    size = dims[field.endpoint]
    if engine is Engine.OPENSEARCH:
        return {"type": "knn_vector", "dimension": size}
    return {"type": "dense_vector", "dims": size, "index": True, "similarity": "cosine"}


def _nest(properties: dict[str, Any], path: str, mapping: dict[str, Any]) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        properties[head] = mapping
        return
    child = properties.setdefault(head, {"properties": {}})
    _nest(child.setdefault("properties", {}), rest, mapping)


def pipeline_mappings(config: PipelineConfig, dims: Mapping[str, int]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for field in config.fields:
        _nest(properties, field.target, target_mapping(config.sink.engine, field, dims))
        if field.skip_if_unchanged:
            _nest(properties, field.hash_path, dict(HASH_MAPPING))
    return {"properties": properties}


def index_settings(config: PipelineConfig) -> dict[str, Any]:
    dense = any(f.type is TargetType.DENSE_VECTOR for f in config.fields)
    return {"index": {"knn": True}} if dense and config.sink.engine is Engine.OPENSEARCH else {}


def dead_letter_mappings() -> dict[str, Any]:
    """Dead-letter records: searchable error and coordinates; the raw message stored, not indexed."""
    keyword = {"type": "keyword"}
    return {
        "dynamic": False,
        "properties": {
            "@timestamp": {"type": "date"},
            "pipeline": keyword,
            "error": {"properties": {"type": keyword, "reason": {"type": "text"}, "stage": keyword}},
            "source": {
                "properties": {
                    "topic": keyword,
                    "partition": {"type": "integer"},
                    "offset": {"type": "long"},
                    "key": keyword,
                }
            },
            "message": {"type": "object", "enabled": False},
        },
    }


async def ensure_index(sink: BulkSink, index: str, mappings: dict[str, Any], settings: dict[str, Any]) -> str:
    """Create `index` with the mappings, or add them to an existing index; returns what was done."""
    if await sink.index_exists(index):
        await sink.put_mapping(index, mappings)
        return f"updated the mapping of index [{index}]"
    body: dict[str, Any] = {"mappings": mappings}
    if settings:
        body["settings"] = settings
    try:
        await sink.create_index(index, body)
    except Exception as exc:  # another worker created it meanwhile: extend its mapping instead
        if "resource_already_exists_exception" not in str(exc):
            raise
        await sink.put_mapping(index, mappings)
    return f"created index [{index}]"


async def setup_pipeline(config: PipelineConfig, sink: BulkSink, dims: Mapping[str, int]) -> list[str]:
    """Make the engine ready for `config`; returns one line per action, for the CLI to print."""
    mappings = pipeline_mappings(config, dims)
    settings = index_settings(config)
    done: list[str] = []
    index = config.sink.index
    if is_date_math(index):
        name = f"sidecar-{config.name}"
        body: dict[str, Any] = {
            "index_patterns": [f"{static_prefix(index)}*"],
            "priority": 200,
            "template": {"mappings": mappings, **({"settings": settings} if settings else {})},
        }
        await sink.put_index_template(name, body)
        done.append(f"put index template [{name}] for [{static_prefix(index)}*]")
        done.append(await ensure_index(sink, resolve_index(index), mappings, settings))
    else:
        done.append(await ensure_index(sink, index, mappings, settings))
    if config.errors.dead_letter_index:
        done.append(await ensure_index(sink, config.errors.dead_letter_index, dead_letter_mappings(), {}))
    for line in done:
        log.info("setup of pipeline [%s]: %s", config.name, line)
    return done
