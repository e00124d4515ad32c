"""The typed schema of one pipeline file (`pipelines/*.yaml`).

A pipeline reads JSON documents from Kafka, fills target fields from inference endpoints and bulk
writes the documents to Elasticsearch or OpenSearch. Every model forbids unknown keys so a typo is
reported (with its file and line, see `sidecar.pipelines.loader`) instead of silently ignored.
Cross-field rules that pydantic cannot attach to one key live in `sidecar.pipelines.checks`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from sidecar.errors import PipelineConfigError, SidecarError
from sidecar.inference.api_client import RemoteInference
from sidecar.inference.chunking import ChunkingSettings
from sidecar.rank_features import Pruning
from sidecar.retry import Backoff

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_FIELD_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _check_path(value: str) -> str:
    if not _FIELD_PATH.match(value):
        raise ValueError(f"[{value}] is not a field path (names joined by single dots, no spaces)")
    return value


FieldPath = Annotated[str, AfterValidator(_check_path)]
# A scalar where a list is expected is read as a one-item list (`topics: docs`).
OneOrMore = BeforeValidator(_as_list)


# --- source ----------------------------------------------------------------------------------------


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class SaslConfig(_Strict):
    mechanism: SaslMechanism = SaslMechanism.PLAIN
    username: str
    password: SecretStr


class TlsConfig(_Strict):
    ca_file: str | None = Field(
        default=None, description="PEM bundle of the CAs to trust; system CAs when absent."
    )
    cert_file: str | None = Field(default=None, description="Client certificate (mutual TLS).")
    key_file: str | None = Field(default=None, description="Client private key (mutual TLS).")
    key_password: SecretStr | None = None
    check_hostname: bool = True


class KafkaSecurity(_Strict):
    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl: SaslConfig | None = None
    tls: TlsConfig | None = None


class DocumentIdFrom(StrEnum):
    KEY = "key"  # the message key, UTF-8
    FIELD = "field"  # a field of the JSON value
    COORDINATES = "coordinates"  # "{topic}+{partition}+{offset}", as Kafka Connect does


class DocumentIdConfig(_Strict):
    from_: DocumentIdFrom = Field(default=DocumentIdFrom.KEY, alias="from")
    field: FieldPath | None = Field(default=None, description="Field path holding the id when `from: field`.")


class KafkaSourceConfig(_Strict):
    bootstrap_servers: Annotated[list[str], OneOrMore, Field(min_length=1)]
    topics: Annotated[list[str], OneOrMore, Field(min_length=1)] | None = None
    pattern: str | None = Field(
        default=None, description="Regular expression of topic names (instead of `topics`)."
    )
    group_id: str
    client_id: str | None = None
    start: Literal["earliest", "latest"] = Field(
        default="earliest", description="Where a group without offsets starts."
    )
    value_format: Literal["json"] = "json"
    document_id: DocumentIdConfig = DocumentIdConfig()
    max_message_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Larger messages go to the dead letter."
    )
    max_poll_records: int = Field(default=500, gt=0, description="Most messages taken from Kafka per batch.")
    linger_ms: int = Field(default=50, ge=0, description="Longest the worker waits to fill a batch.")
    session_timeout_ms: int = Field(default=10_000, ge=1000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    isolation_level: Literal["read_uncommitted", "read_committed"] = "read_committed"
    security: KafkaSecurity = KafkaSecurity()

    @field_validator("bootstrap_servers")
    @classmethod
    def _split_servers(cls, value: list[str]) -> list[str]:
        # "${SIDECAR_KAFKA_BOOTSTRAP}" may hold a comma-separated list.
        servers = [s.strip() for item in value for s in item.split(",") if s.strip()]
        if not servers:
            raise ValueError("at least one bootstrap server is required")
        return servers

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from exc
        return value


class IngestHookSourceConfig(_Strict):
    """Documents written through the sidecar's bulk/document APIs (`sidecar.hook`) to these indices."""

    indices: Annotated[list[str], OneOrMore, Field(min_length=1)] = Field(
        description="Index names or patterns (`*`, `?` wildcards) whose documents are enriched."
    )


class SourceConfig(_Strict):
    kafka: KafkaSourceConfig | None = None
    ingest_hook: IngestHookSourceConfig | None = None

    @model_validator(mode="after")
    def _some_source(self) -> SourceConfig:
        if self.kafka is None and self.ingest_hook is None:
            raise ValueError("set [kafka] and/or [ingest_hook]")
        return self


# --- inference and fields --------------------------------------------------------------------------


class InferenceConfig(_Strict):
    """Where inference runs: in this process (default) or a remote sidecar's `_inference` API."""

    url: str | None = Field(default=None, description="Base URL of a remote sidecar; in-process when absent.")
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    ca_file: str | None = None

    def open_remote(self) -> RemoteInference:
        """The client of the remote sidecar at `url` (the project's one `_inference` client)."""
        if self.url is None:
            raise ValueError("remote inference needs a URL")
        key = self.api_key.get_secret_value() if self.api_key else None
        return RemoteInference(self.url, api_key=key, timeout_s=self.timeout_s, ca_file=self.ca_file)


class TargetType(StrEnum):
    RANK_FEATURES = "rank_features"
    SPARSE_VECTOR = "sparse_vector"
    DENSE_VECTOR = "dense_vector"

    @property
    def sparse(self) -> bool:
        return self is not TargetType.DENSE_VECTOR


class PruningConfig(_Strict):
    top_k: int | None = Field(default=None, gt=0)
    min_weight: float | None = Field(default=None, ge=0)
    max_ratio: float | None = Field(default=None, ge=0, le=1)

    def to_pruning(self) -> Pruning:
        return Pruning(self.top_k, self.min_weight, self.max_ratio)


class FieldConfig(_Strict):
    input: Annotated[list[FieldPath], OneOrMore, Field(min_length=1)] = Field(
        description="Field path(s) whose text is encoded; several are joined with a newline."
    )
    endpoint: str = Field(description="Inference endpoint id, e.g. `.splade-tiny`.")
    target: FieldPath = Field(description="Field path written with the result.")
    type: TargetType = TargetType.RANK_FEATURES
    pruning: PruningConfig | None = None
    chunking: dict[str, Any] | None = Field(
        default=None,
        description="Elasticsearch `chunking_settings` applied by the worker before inference (chunk vectors "
        "combined, max per token); by default the endpoint's own chunking applies.",
    )
    skip_if_unchanged: bool = Field(
        default=False,
        description="Store a content hash beside the vector and reuse the stored vector when equal.",
    )
    hash_field: FieldPath | None = Field(
        default=None, description="Where the hash goes; default `<target>_hash`."
    )
    required: bool = Field(default=True, description="A missing input sends the document to the dead letter.")

    @field_validator("chunking")
    @classmethod
    def _chunking(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                ChunkingSettings.from_dict(value)
            except SidecarError as exc:
                raise ValueError(exc.reason) from exc
        return value

    @property
    def chunking_settings(self) -> ChunkingSettings | None:
        return None if self.chunking is None else ChunkingSettings.from_dict(self.chunking)

    @property
    def hash_path(self) -> str:
        return self.hash_field or f"{self.target}_hash"


# --- sink ------------------------------------------------------------------------------------------


class Engine(StrEnum):
    ELASTICSEARCH = "elasticsearch"
    OPENSEARCH = "opensearch"


class Operation(StrEnum):
    INDEX = "index"
    CREATE = "create"
    UPDATE = "update"  # partial update with doc_as_upsert


class Versioning(StrEnum):
    AUTO = "auto"  # external where it applies (see `PipelineConfig.external_versioning`), else none
    EXTERNAL = "external"  # `version_type=external` by Kafka offset; an error where it cannot apply
    NONE = "none"  # the engine's internal versions: the last write wins, whoever sends it


class SinkAuth(_Strict):
    api_key: SecretStr | None = Field(default=None, description="Elasticsearch API key (the encoded form).")
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None
    verify_certs: bool = True


class BulkConfig(_Strict):
    max_docs: int = Field(default=500, gt=0, description="Most documents in one bulk request.")
    max_bytes: int = Field(default=5 * 1024 * 1024, gt=0, description="Largest bulk request body.")
    concurrency: int = Field(default=2, gt=0, description="Bulk requests in flight at once.")


class SinkConfig(_Strict):
    engine: Engine
    urls: Annotated[list[str], OneOrMore, Field(min_length=1)]
    auth: SinkAuth = SinkAuth()
    index: str = Field(description="Target index; date math like `<docs-{now/d}>` is resolved per batch.")
    operation: Operation = Operation.INDEX
    routing: FieldPath | None = Field(default=None, description="Field path whose value routes the document.")
    refresh: Literal["false", "true", "wait_for"] = "false"
    bulk: BulkConfig = BulkConfig()
    request_timeout_s: float = Field(default=30.0, gt=0)
    versioning: Versioning = Field(
        default=Versioning.AUTO,
        description="Write each document with an external version from its Kafka offset, so a stale writer "
        "(a consumer that lost its partition) never overwrites a newer version.",
    )

    @field_validator("refresh", mode="before")
    @classmethod
    def _refresh(cls, value: Any) -> Any:
        return str(value).lower() if isinstance(value, bool) else value


# --- errors and worker -----------------------------------------------------------------------------


class BackoffConfig(_Strict):
    initial_ms: int = Field(default=200, gt=0)
    max_ms: int = Field(default=30_000, gt=0)

    def policy(self) -> Backoff:
        return Backoff.from_ms(self.initial_ms, self.max_ms)


class Tolerance(StrEnum):
    """Kafka Connect's `errors.tolerance`: what a record the worker cannot index does to the pipeline."""

    ALL = "all"  # it goes to the dead letter and the pipeline moves on
    NONE = "none"  # the pipeline stops at it, its offset uncommitted


class OnNull(StrEnum):
    """What a message with a null value (a tombstone) does."""

    DEAD_LETTER = "dead_letter"  # recorded in the dead letter; nothing in the engine changes
    DELETE = "delete"  # deletes the document whose id is the message key
    IGNORE = "ignore"  # skipped, counted in sidecar_worker_skipped_total


class OnMalformed(StrEnum):
    """What a document the engine refuses (mapping conflict, parse error) does."""

    DEAD_LETTER = "dead_letter"
    FAIL = "fail"  # the pipeline stops at it, as with `tolerance: none`


class ErrorsConfig(_Strict):
    tolerance: Tolerance = Field(
        default=Tolerance.ALL,
        description="`all`: records that cannot be indexed go to the dead letter; `none`: stop at the first.",
    )
    dead_letter_topic: str | None = None
    dead_letter_index: str | None = Field(
        default=None,
        description="With `tolerance: all` and no dead-letter topic, defaults to `<pipeline name>-dead-letter`.",
    )
    on_null: OnNull = Field(default=OnNull.DEAD_LETTER, description="Null-valued messages (tombstones).")
    on_malformed: OnMalformed = Field(
        default=OnMalformed.DEAD_LETTER, description="Documents the engine refuses."
    )
    max_retries: int = Field(
        default=5, ge=0, description="Retries of a 429/5xx bulk item before its dead letter."
    )
    backoff: BackoffConfig = BackoffConfig()


class WorkerConfig(_Strict):
    max_in_flight_docs: int = Field(
        default=4000, gt=0, description="Partitions pause while more are unacknowledged."
    )
    commit_interval_ms: int = Field(default=1000, gt=0)
    shutdown_timeout_s: float = Field(
        default=30.0, gt=0, description="Time in-flight batches get on SIGTERM."
    )


class PipelineConfig(_Strict):
    name: str
    description: str | None = None
    source: SourceConfig
    inference: InferenceConfig = InferenceConfig()
    fields: Annotated[list[FieldConfig], Field(min_length=1)]
    sink: SinkConfig
    errors: ErrorsConfig = ErrorsConfig()
    worker: WorkerConfig = WorkerConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be lowercase letters, digits, `_` or `-`, starting with a letter or digit")
        return value

    @property
    def kafka(self) -> KafkaSourceConfig:
        if self.source.kafka is None:
            problem = f"pipeline [{self.name}] has no [source.kafka]; the Kafka worker needs one"
            raise PipelineConfigError(problem, [problem])
        return self.source.kafka

    @property
    def external_versioning(self) -> bool:
        """Whether documents are written with `version_type=external` from their Kafka offset.

        It needs ids from the message key (one key's messages share a partition, so their offsets
        order them) and the `index` operation (`create` and `update` take internal versions only);
        `auto` also wants one topic, since offsets of different topics are unrelated.
        """
        kafka = self.source.kafka
        versioning = self.sink.versioning
        if versioning is Versioning.NONE or kafka is None:
            return False
        applies = kafka.document_id.from_ is DocumentIdFrom.KEY and self.sink.operation is Operation.INDEX
        if versioning is Versioning.EXTERNAL:
            return applies
        return applies and kafka.pattern is None and len(kafka.topics or ()) == 1

    @property
    def dead_letter_index(self) -> str | None:
        """Where dead letters are indexed: the configured index or, when no destination is configured
        and records are tolerated, `<name>-dead-letter`, so that no record is ever dropped."""
        errors = self.errors
        if errors.dead_letter_index is not None or errors.dead_letter_topic is not None:
            return errors.dead_letter_index
        return f"{self.name}-dead-letter" if errors.tolerance is Tolerance.ALL else None

    @property
    def dead_letter_summary(self) -> str:
        """Where records the pipeline cannot index go, in one line (`sidecar validate` prints it)."""
        errors = self.errors
        if errors.tolerance is Tolerance.NONE:
            return "errors.tolerance is none: the pipeline stops at the first record it cannot index"
        places = [f"topic [{errors.dead_letter_topic}]"] if errors.dead_letter_topic else []
        if self.dead_letter_index:
            default = "" if errors.dead_letter_index else " (the default)"
            places.append(f"index [{self.dead_letter_index}]{default}")
        return "dead letters go to " + " and ".join(places)

    @property
    def endpoint_ids(self) -> list[str]:
        return sorted({f.endpoint for f in self.fields})
