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
    "sidecar_inference_queue_seconds", "Time a text waited before its batch ran.", ["model"], buckets=_TIME_BUCKETS
)
INFERENCE_BATCH_SECONDS = Histogram(
    "sidecar_inference_batch_seconds", "Time one model batch took to run.", ["model"], buckets=_TIME_BUCKETS
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
