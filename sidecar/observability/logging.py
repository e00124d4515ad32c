"""Structured logs: one JSON object per line, carrying the id of the request being served.

The HTTP layer sets `request_id_var` for each request; every record logged while that request runs
(by any module) carries it, so one grep follows a request through batching and inference.
Records never include request bodies or headers, so API keys and texts stay out of the logs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

from sidecar import redact

request_id_var: ContextVar[str | None] = ContextVar("sidecar_request_id", default=None)

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged as a field.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, request_id and `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key != "request_id":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class RedactFilter(logging.Filter):
    """No log line carries a URL's user and password, whoever logged it (`sidecar.redact`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact.url(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact.url(logging.Formatter().formatException(record.exc_info))
        return True


class RequestIdFilter(logging.Filter):
    """Adds the current request id to records for plain-text formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or "-"
        return True


def _iso_time(created: float) -> str:
    millis = int((created % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


def configure_logging(level: str = "INFO", *, json_format: bool = True) -> None:
    """Route the root logger (and uvicorn's) to stderr, as JSON lines or readable text: the one log
    set-up of every long-running command (serve, worker, backfill, demo)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactFilter())
    if json_format:
        handler.setFormatter(JsonFormatter())  # adds request_id only when a request is being served
    else:
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn installs its own handlers; send its records through ours instead. Its access log is
    # replaced by the sidecar's own access record (which has the request id and duration).
    for name in ("uvicorn", "uvicorn.error"):
        uv_logger = logging.getLogger(name)
        uv_logger.handlers.clear()
        uv_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Client libraries log every connection at INFO; their warnings and errors still come through.
    for name in ("aiokafka", "opensearch", "elastic_transport", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
