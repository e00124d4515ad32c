"""Rules that span several keys of a pipeline, each reported at the key that must change."""

from __future__ import annotations

from collections.abc import Callable

from sidecar.inference.types import TaskType
from sidecar.pipelines.schema import (
    DocumentIdFrom,
    Engine,
    OnNull,
    PipelineConfig,
    TargetType,
    Tolerance,
    Versioning,
)

Loc = tuple[str | int, ...]

# Task types of the built-in endpoints, known without opening the registry.
BUILTIN_TASK_TYPES: dict[str, TaskType] = {
    ".splade-tiny": TaskType.SPARSE_EMBEDDING,
    ".minilm-l6": TaskType.TEXT_EMBEDDING,
}


def cross_check(
    config: PipelineConfig, task_type_of: Callable[[str], TaskType | None] | None = None
) -> list[tuple[Loc, str]]:
    problems = _source(config) + _fields(config, task_type_of) + _sink(config)
    backoff = config.errors.backoff
    if backoff.initial_ms > backoff.max_ms:
        problems.append((("errors", "backoff", "initial_ms"), "must not exceed [max_ms]"))
    return problems


def _source(config: PipelineConfig) -> list[tuple[Loc, str]]:
    if config.source.kafka is None:  # an ingest-hook-only pipeline
        return []
    kafka = config.kafka
    at: Loc = ("source", "kafka")
    problems: list[tuple[Loc, str]] = []
    if (kafka.topics is None) == (kafka.pattern is None):
        problems.append((at, "set exactly one of [topics] and [pattern]"))
    doc_id = kafka.document_id
    if doc_id.from_ is DocumentIdFrom.FIELD and doc_id.field is None:
        problems.append(((*at, "document_id", "field"), "required when [from] is [field]"))
    if doc_id.from_ is not DocumentIdFrom.FIELD and doc_id.field is not None:
        problems.append(((*at, "document_id", "field"), "only allowed when [from] is [field]"))
    security = kafka.security
    sec: Loc = (*at, "security")
    sasl_protocol = security.protocol.startswith("SASL")
    if sasl_protocol and security.sasl is None:
        problems.append(((*sec, "sasl"), f"required with protocol [{security.protocol}]"))
    if not sasl_protocol and security.sasl is not None:
        problems.append(((*sec, "sasl"), f"not used with protocol [{security.protocol}]"))
    if security.tls is not None and not security.protocol.endswith("SSL"):
        problems.append(((*sec, "tls"), f"not used with protocol [{security.protocol}]"))
    if security.tls is not None and (security.tls.cert_file is None) != (security.tls.key_file is None):
        problems.append(((*sec, "tls"), "set both [cert_file] and [key_file] for mutual TLS"))
    if kafka.heartbeat_interval_ms >= kafka.session_timeout_ms:
        problems.append(((*at, "heartbeat_interval_ms"), "must be lower than [session_timeout_ms]"))
    return problems


def _fields(
    config: PipelineConfig, task_type_of: Callable[[str], TaskType | None] | None
) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    written: dict[str, int] = {}
    for i, field in enumerate(config.fields):
        at: Loc = ("fields", i)
        outputs = [field.target] + ([field.hash_path] if field.skip_if_unchanged else [])
        for path in outputs:
            if path in written:
                problems.append(((*at, "target"), f"[{path}] is also written by fields[{written[path]}]"))
            written[path] = i
        for path in field.input:
            if (
                path == field.target
                or path.startswith(field.target + ".")
                or field.target.startswith(path + ".")
            ):
                problems.append(((*at, "target"), f"overlaps the input field [{path}]"))
        if field.type is TargetType.SPARSE_VECTOR and config.sink.engine is Engine.OPENSEARCH:
            problems.append(((*at, "type"), "OpenSearch has no [sparse_vector] field; use [rank_features]"))
        if not field.type.sparse and field.pruning is not None:
            problems.append(((*at, "pruning"), "pruning applies to sparse targets only"))
        if not field.type.sparse and field.chunking is not None and field.chunking.get("strategy") != "none":
            problems.append(((*at, "chunking"), "chunk vectors are combined for sparse targets only"))
        lookup = task_type_of or BUILTIN_TASK_TYPES.get
        task_type = lookup(field.endpoint)
        wanted = TaskType.SPARSE_EMBEDDING if field.type.sparse else TaskType.TEXT_EMBEDDING
        if task_type is None and task_type_of is not None:
            problems.append(((*at, "endpoint"), f"Inference endpoint not found [{field.endpoint}]"))
        elif task_type is not None and task_type is not wanted:
            problems.append(
                (
                    (*at, "endpoint"),
                    f"endpoint [{field.endpoint}] is [{task_type}]; [{field.type}] needs [{wanted}]",
                )
            )
    return problems


def _sink(config: PipelineConfig) -> list[tuple[Loc, str]]:
    sink = config.sink
    at: Loc = ("sink",)
    problems: list[tuple[Loc, str]] = []
    for i, url in enumerate(sink.urls):
        if not url.startswith(("http://", "https://")):
            problems.append(((*at, "urls", i), f"[{url}] must start with http:// or https://"))
    auth = sink.auth
    if auth.api_key is not None and auth.username is not None:
        problems.append(((*at, "auth"), "use either [api_key] or [username]/[password], not both"))
    if (auth.username is None) != (auth.password is None):
        problems.append(((*at, "auth"), "[username] and [password] go together"))
    if auth.api_key is not None and sink.engine is Engine.OPENSEARCH:
        problems.append(((*at, "auth", "api_key"), "OpenSearch takes [username]/[password], not an API key"))
    index = sink.index
    if not index or (index != index.lower() and not index.startswith("<")):
        problems.append(((*at, "index"), "index names must be lowercase"))
    if index.startswith("<") != index.endswith(">"):
        problems.append(((*at, "index"), "date math index names are written <static-{now/d}>"))
    if index.startswith("<"):
        from sidecar.pipelines.date_math import DateMathError, resolve_index

        try:
            resolve_index(index)
        except DateMathError as exc:
            problems.append(((*at, "index"), str(exc)))
    if sink.versioning is Versioning.EXTERNAL and not config.external_versioning:
        problems.append(
            (
                (*at, "versioning"),
                "[external] needs a Kafka source, ids [from: key] and [operation: index]; "
                "set [none] or leave the default [auto]",
            )
        )
    errors = config.errors
    if errors.tolerance is Tolerance.NONE and (errors.dead_letter_index or errors.dead_letter_topic):
        problems.append((("errors", "tolerance"), "dead-letter destinations need [tolerance] [all]"))
    kafka = config.source.kafka
    if errors.on_null is OnNull.DELETE and (
        kafka is None or kafka.document_id.from_ is not DocumentIdFrom.KEY or sink.routing is not None
    ):
        problems.append(
            (
                ("errors", "on_null"),
                "[delete] needs ids [from: key] and no [sink.routing]: a null value has neither",
            )
        )
    for key in ("dead_letter_index",):
        value = getattr(errors, key)
        if value is not None and value != value.lower():
            problems.append((("errors", key), "index names must be lowercase"))
    return problems
