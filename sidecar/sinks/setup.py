"""Create the mappings a pipeline needs (`sidecar setup`, and the worker at start-up).

Target fields are mapped explicitly: left to dynamic mapping, a `rank_features` object would become
a pile of float fields. The index is created (or its mapping extended), and an index template with
the mapping is installed for its name (for date math: its static prefix, so every day's index is
born with the mapping), so an index deleted and then recreated by a bulk request gets it too. The
dead-letter index gets the same treatment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sidecar.errors import SidecarError
from sidecar.pipelines.date_math import is_date_math, resolve_index, static_prefix
from sidecar.pipelines.schema import Engine, FieldConfig, PipelineConfig, TargetType
from sidecar.sinks.base import BulkSink

log = logging.getLogger(__name__)

# Doc values (not an inverted index) keep the hash cheap yet let `exists` queries find documents
# without it: `rank_features` fields cannot be queried for existence, so the backfill relies on this.
HASH_MAPPING = {"type": "keyword", "index": False}


def dense_mapping(engine: Engine, dims: int) -> dict[str, Any]:
    """A cosine HNSW vector field. OpenSearch's k-NN plugin would default to its faiss engine, a
    native library a plain install may lack (indexing then fails); its Lucene engine is pure Java
    and, with `cosinesimil`, scores as Elasticsearch's `cosine` does: (1 + cos) / 2."""
    if engine is Engine.OPENSEARCH:
        method = {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"}
        return {"type": "knn_vector", "dimension": dims, "method": method}
    return {"type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine"}


def target_mapping(engine: Engine, field: FieldConfig, dims: Mapping[str, int]) -> dict[str, Any]:
    if field.type is TargetType.RANK_FEATURES:
        return {"type": "rank_features"}
    if field.type is TargetType.SPARSE_VECTOR:
        return {"type": "sparse_vector"}
    return dense_mapping(engine, dims[field.endpoint])


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


class IndexSetupError(SidecarError):
    """The engine refused part of a pipeline's setup (a mapping conflict, a bad setting...)."""

    status = 400
    es_type = "index_setup_exception"


def _engine_reason(exc: Exception) -> str:
    """`type: reason` of an engine's error answer, from either client's exception."""
    body = getattr(exc, "body", None) or getattr(exc, "info", None)
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        return f"{error.get('type', 'exception')}: {error.get('reason', '')}"
    return str(exc)


def field_types(mappings: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted path -> field type of the leaves of `mappings` (what the target check compares)."""
    out: dict[str, str] = {}
    for name, spec in mappings.get("properties", {}).items():
        if "type" in spec:
            out[prefix + name] = spec["type"]
        else:
            out.update(field_types(spec, f"{prefix}{name}."))
    return out


def template_name(config: PipelineConfig) -> str:
    return f"sidecar-{config.name}"


def template_body(index: str, mappings: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """An index template giving indices named `index` (every day's index, for date math) the mapping."""
    dated = is_date_math(index)
    return {
        "index_patterns": [f"{static_prefix(index)}*" if dated else index],
        # An exact name outranks a prefix pattern (`docs-dlq` inside `docs-*`): the engine refuses
        # two overlapping templates of equal priority.
        "priority": 200 if dated else 201,
        "template": {"mappings": mappings, **({"settings": settings} if settings else {})},
    }


async def put_template(sink: BulkSink, name: str, body: dict[str, Any]) -> str:
    pattern = body["index_patterns"][0]
    try:
        await sink.put_index_template(name, body)
    except Exception as exc:
        failure = sink.request_failure(exc)
        if failure is None or failure.status != 400 or "priority" not in _engine_reason(exc):
            raise
        # Another template with this pattern and priority (another pipeline writing the same index):
        # the engine allows one; the worker's target check still guards a recreated index.
        log.warning("index template [%s] not installed: %s", name, _engine_reason(exc))
        return f"index template [{name}] for [{pattern}] not installed: {_engine_reason(exc)}"
    return f"put index template [{name}] for [{pattern}]"


async def setup_target(
    sink: BulkSink, name: str, index: str, mappings: dict[str, Any], settings: dict[str, Any]
) -> list[str]:
    """The index template for `index` (so an index recreated by a bulk gets the mapping), then the
    index itself (today's, for date math)."""
    return [
        await put_template(sink, name, template_body(index, mappings, settings)),
        await ensure_index(sink, resolve_index(index), mappings, settings),
    ]


async def setup_pipeline(config: PipelineConfig, sink: BulkSink, dims: Mapping[str, int]) -> list[str]:
    """Make the engine ready for `config`; returns one line per action, for the CLI to print.

    Raises `IndexSetupError` (one line: what was refused and why) when the engine refuses a step;
    transport errors propagate as they are, for the caller to retry.
    """
    done: list[str] = []
    targets = [
        (template_name(config), config.sink.index, pipeline_mappings(config, dims), index_settings(config))
    ]
    if config.source.kafka is not None and config.dead_letter_index:  # default one included
        targets.append(
            (
                f"{template_name(config)}-dead-letter",
                config.dead_letter_index,
                dead_letter_mappings(),
                {},
            )
        )
    for name, index, mappings, settings in targets:
        try:
            done += await setup_target(sink, name, index, mappings, settings)
        except Exception as exc:
            failure = sink.request_failure(exc)
            if failure is None or failure.status is None:
                raise
            raise IndexSetupError(
                f"pipeline [{config.name}]: the engine refused the setup of index [{index}]: "
                f"{_engine_reason(exc)}"
            ) from exc
    for line in done:
        log.info("setup of pipeline [%s]: %s", config.name, line)
    return done
