"""Every `sidecar_*` Prometheus metric, in one place (other modules import the objects from here).

Buckets are chosen per metric: batch sizes are counts, batch tokens follow the token budget, and
queue/inference times span sub-millisecond CPU batches to multi-second remote calls.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_TIME_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --- inference ------------------------------------------------------------------------------------
INFERENCE_QUEUE_DEPTH = Gauge(
    "sidecar_inference_queue_depth", "Texts waiting in a model's batching queue.", ["model"]
)
INFERENCE_BATCH_SIZE = Histogram(
    "sidecar_inference_batch_size",
    "Texts per model batch.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
INFERENCE_BATCH_TOKENS = Histogram(
    "sidecar_inference_batch_tokens",
    "Tokens (padded) per model batch.",
    ["model"],
    buckets=(16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536),
)
INFERENCE_QUEUE_SECONDS = Histogram(
    "sidecar_inference_queue_seconds", "Time a text waited before its batch ran.", ["model"],
    buckets=_TIME_BUCKETS,
)
INFERENCE_BATCH_SECONDS = Histogram(
    "sidecar_inference_batch_seconds", "Time one model batch took to run.", ["model"], buckets=_TIME_BUCKETS
)
# Per request (one `BatchingEngine.encode` call), by stage; queue and inference are its slowest text's.
INFERENCE_REQUEST_TOKENIZE_SECONDS = Histogram(
    "sidecar_inference_request_tokenize_seconds",
    "Time to tokenize one request's texts.",
    ["model"],
    buckets=_TIME_BUCKETS,
)
INFERENCE_REQUEST_QUEUE_SECONDS = Histogram(
    "sidecar_inference_request_queue_seconds",
    "Time a request's texts waited, once tokenized, until their batch entered the model.",
    ["model"],
    buckets=_TIME_BUCKETS,
)
INFERENCE_REQUEST_INFERENCE_SECONDS = Histogram(
    "sidecar_inference_request_inference_seconds",
    "Time from a request's batch entering the model to its results being decoded (forward pass and post-processing).",
    ["model"],
    buckets=_TIME_BUCKETS,
)
INFERENCE_REQUESTS = Counter(
    "sidecar_inference_requests_total", "Inference requests served.", ["inference_id", "task_type"]
)
INFERENCE_ERRORS = Counter(
    "sidecar_inference_errors_total",
    "Inference requests that failed, by error type.",
    ["inference_id", "task_type", "error"],
)
INFERENCE_REQUEST_SECONDS = Histogram(
    "sidecar_inference_request_seconds",
    "End-to-end time of one inference request.",
    ["inference_id", "task_type"],
    buckets=_TIME_BUCKETS,
)
INFERENCE_REMOTE_RETRIES = Counter(
    "sidecar_inference_remote_retries_total", "Retries of calls to remote inference services.", ["service"]
)

# --- HTTP API -------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "sidecar_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "sidecar_http_request_seconds",
    "Time to answer one HTTP request, by route template.",
    ["method", "route"],
    buckets=_TIME_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge("sidecar_http_inference_in_flight", "Inference HTTP requests being served.")

# --- Kafka worker (sidecar.worker, sidecar.sinks) ---------------------------------------------------
WORKER_CONSUMED = Counter("sidecar_worker_consumed_total", "Kafka messages consumed.", ["pipeline"])
WORKER_INDEXED = Counter(
    "sidecar_worker_indexed_total", "Documents the engine acknowledged (created, updated or existing).", ["pipeline"]
)
WORKER_DEAD_LETTERED = Counter(
    "sidecar_worker_dead_lettered_total", "Messages sent to the dead letter, by error type.", ["pipeline", "error"]
)
WORKER_RETRIED = Counter(
    "sidecar_worker_retried_total",
    "Retries: `item` (429/5xx bulk items), `request` (whole bulk requests), `inference`, `dead_letter`.",
    ["pipeline", "kind"],
)
WORKER_TOMBSTONES = Counter(
    "sidecar_worker_tombstones_total",
    "Null-valued messages, by what `errors.on_null` did: delete, ignore or dead_letter.",
    ["pipeline", "action"],
)
WORKER_SKIPPED_UNCHANGED = Counter(
    "sidecar_worker_skipped_unchanged_total", "Vectors reused because the text was unchanged.", ["pipeline"]
)
WORKER_CONSUMER_LAG = Gauge(
    "sidecar_worker_consumer_lag", "High watermark minus committed offset.", ["pipeline", "topic", "partition"]
)
WORKER_COMMITTED_OFFSET = Gauge(
    "sidecar_worker_committed_offset", "Last offset committed.", ["pipeline", "topic", "partition"]
)
WORKER_IN_FLIGHT = Gauge("sidecar_worker_in_flight_docs", "Messages consumed but not yet acknowledged.", ["pipeline"])
WORKER_PAUSED = Gauge(
    "sidecar_worker_paused",
    "1 while consumption is paused, by reason (in_flight, engine, inference, dead_letter, target, rebalance).",
    ["pipeline", "reason"],
)
WORKER_BULK_SECONDS = Histogram(
    "sidecar_worker_bulk_seconds", "Time of one bulk request.", ["pipeline"], buckets=_TIME_BUCKETS
)
WORKER_BATCH_SECONDS = Histogram(
    "sidecar_worker_batch_seconds", "Time from consuming a batch to acknowledging it.", ["pipeline"],
    buckets=_TIME_BUCKETS,
)
WORKER_BATCH_DOCS = Histogram(
    "sidecar_worker_batch_docs", "Messages per batch.", ["pipeline"],
    buckets=(1, 4, 16, 64, 128, 256, 512, 1024, 2048, 4096),
)

# --- ingest hook (sidecar.hook) and backfill (sidecar.backfill) --------------------------------------
HOOK_DOCS = Counter(
    "sidecar_hook_docs_total",
    "Documents through the ingest hook, by outcome: enriched, passed, failed (4xx item), overloaded (429).",
    ["pipeline", "outcome"],
)
HOOK_ENRICH_SECONDS = Histogram(
    "sidecar_hook_enrich_seconds",
    "Time to enrich one window of a bulk request.",
    ["pipeline"],
    buckets=_TIME_BUCKETS,
)
BACKFILL_DOCS = Counter(
    "sidecar_backfill_docs_total", "Documents a backfill enriched and the engine acknowledged.", ["pipeline"]
)
BACKFILL_SCANNED = Counter("sidecar_backfill_scanned_total", "Documents a backfill read.", ["pipeline"])
BACKFILL_SKIPPED = Counter(
    "sidecar_backfill_skipped_total", "Documents a backfill read and left alone (up to date).", ["pipeline"]
)
BACKFILL_FAILED = Counter(
    "sidecar_backfill_failed_total", "Documents a backfill sent to the dead letter.", ["pipeline"]
)
