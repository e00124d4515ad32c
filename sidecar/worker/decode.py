"""Turn a Kafka message into a document to enrich, or a dead letter saying why it is poison.

Values are read as the engines read JSON (comments allowed) by `sidecar.jsontext`, as the hook does.
Poison: over-size, not UTF-8, not JSON (NaN/Infinity included), nested deeper than
`jsontext.MAX_DEPTH`, text that is not valid Unicode (a lone surrogate escape such as `"\\udc00"`,
which no engine request can carry), not a JSON object, no usable document id or routing value. Null
values (tombstones) follow `errors.on_null`. Input-field problems are found by the enricher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sidecar import jsontext
from sidecar.deadletter import DeadLetter
from sidecar.enrichment import MISSING, get_path
from sidecar.pipelines.schema import DocumentIdFrom, OnNull, PipelineConfig
from sidecar.sources.kafka import Message

MAX_ID_BYTES = 512  # Elasticsearch's limit on `_id`


@dataclass(frozen=True)
class Envelope:
    message: Message
    doc_id: str
    source: dict[str, Any]
    routing: str | None
    delete: bool = False  # a tombstone with `errors.on_null: delete`


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def poison(message: Message, error_type: str, reason: str, stage: str = "decode") -> DeadLetter:
    return DeadLetter(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        message.value,
        error_type,
        reason,
        stage,
        message.headers,
        message.timestamp_ms,
    )


def _id_value(value: Any, what: str) -> str | tuple[str, str]:
    if value is MISSING or value is None:
        return ("missing_document_id", f"{what} is missing")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ("invalid_document_id", f"{what} must be a string or an integer")
    text = str(value)
    if not text or len(text.encode("utf-8")) > MAX_ID_BYTES:
        return ("invalid_document_id", f"{what} must be 1 to {MAX_ID_BYTES} bytes")
    return text


def _key_id(message: Message) -> str | tuple[str, str]:
    try:
        key: Any = message.key.decode("utf-8") if message.key is not None else MISSING
    except UnicodeDecodeError:
        return ("invalid_document_id", "message key is not UTF-8")
    return _id_value(key, "message key")


def _tombstone(message: Message, config: PipelineConfig) -> Envelope | DeadLetter | None:
    on_null = config.errors.on_null
    if on_null is OnNull.IGNORE:
        return None
    if on_null is OnNull.DELETE and config.kafka.document_id.from_ is DocumentIdFrom.KEY:
        doc_id = _key_id(message)
        if isinstance(doc_id, tuple):
            return poison(message, *doc_id)
        return Envelope(message, doc_id, {}, None, delete=True)
    return poison(message, "tombstone", f"message has a null value; errors.on_null is [{on_null}]")


def decode(message: Message, config: PipelineConfig) -> Envelope | DeadLetter | None:
    """The envelope to index (or delete), the dead letter, or None for a tombstone to ignore."""
    kafka = config.kafka
    raw = message.value
    if raw is None:
        return _tombstone(message, config)
    if len(raw) > kafka.max_message_bytes:
        return poison(
            message,
            "message_too_large",
            f"{len(raw)} bytes, over max_message_bytes {kafka.max_message_bytes}",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return poison(message, "invalid_encoding", f"value is not UTF-8: {exc}")
    try:
        source = jsontext.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        if str(exc) == jsontext.LONE_SURROGATE:
            return poison(message, "invalid_text", f"value is not valid Unicode: {exc}")
        return poison(message, "invalid_json", f"value is not JSON: {exc}")
    if not isinstance(source, dict):
        return poison(message, "not_an_object", f"value is a JSON {type(source).__name__}, not an object")

    doc_id: str | tuple[str, str]
    id_config = kafka.document_id
    if id_config.from_ is DocumentIdFrom.COORDINATES:
        doc_id = f"{message.topic}+{message.partition}+{message.offset}"
    elif id_config.from_ is DocumentIdFrom.KEY:
        doc_id = _key_id(message)
    else:
        path = id_config.field or ""
        doc_id = _id_value(get_path(source, path), f"id field [{path}]")
    if isinstance(doc_id, tuple):
        return poison(message, *doc_id)

    routing: str | None = None
    if config.sink.routing is not None:
        value = get_path(source, config.sink.routing)
        if value is MISSING or value is None or isinstance(value, bool) or not isinstance(value, str | int):
            return poison(
                message,
                "invalid_routing",
                f"routing field [{config.sink.routing}] is missing or not a string",
            )
        routing = str(value)
    return Envelope(message, doc_id, source, routing)
