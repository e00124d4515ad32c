"""The one place that turns the project's errors into Elasticsearch error bodies.

Every `SidecarError` carries its HTTP status and Elasticsearch `type`; this module renders the
envelope Elasticsearch uses:

    {"error": {"root_cause": [{"type": T, "reason": R}], "type": T, "reason": R}, "status": N}

Routing failures use Elasticsearch's short form, `{"error": "<sentence>", "status": N}`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from sidecar import redact
from sidecar.errors import AuthenticationError, RequestTimeoutError, SidecarError

log = logging.getLogger(__name__)

# What Elasticsearch sends with a 401, so clients know which schemes they may use.
WWW_AUTHENTICATE = ["ApiKey", 'Bearer realm="security"']


def error_body(err: SidecarError) -> dict[str, Any]:
    """The Elasticsearch error envelope for `err`."""
    reason = redact.url(err.reason)  # the last guard: no message carries a URL's password out
    if getattr(err, "short_form", False):
        return {"error": reason, "status": err.status}
    cause: dict[str, Any] = {"type": err.es_type, "reason": reason}
    if isinstance(err, AuthenticationError):
        cause["header"] = {"WWW-Authenticate": WWW_AUTHENTICATE}
    top = dict(cause)
    nested = err.__cause__
    if isinstance(nested, SidecarError) and nested is not err:
        top["caused_by"] = {"type": nested.es_type, "reason": redact.url(nested.reason)}
    return {"error": {"root_cause": [cause], **top}, "status": err.status}


def error_headers(err: SidecarError) -> dict[str, str]:
    """Headers that must accompany the error response (401: WWW-Authenticate; 408: Connection: close)."""
    if isinstance(err, AuthenticationError):
        return {"WWW-Authenticate": ", ".join(WWW_AUTHENTICATE)}
    if isinstance(err, RequestTimeoutError):  # the rest of a slow body is not worth waiting for
        return {"Connection": "close"}
    return {}


def unexpected_error(exc: BaseException) -> SidecarError:
    """Wrap a bug (an exception nobody raised on purpose) as a 500, keeping the cause for the log."""
    wrapped = SidecarError(f"{type(exc).__name__}: {exc}", status=500, es_type="exception")
    wrapped.__cause__ = exc
    return wrapped


def no_handler_body(path: str, method: str) -> dict[str, Any]:
    """Elasticsearch's answer to a path no route serves (status 400)."""
    return {"error": f"no handler found for uri [{path}] and method [{method}]", "status": 400}


def incorrect_method_body(path: str, method: str, allowed: Iterable[str]) -> dict[str, Any]:
    """Elasticsearch's answer to a known path called with a method it does not serve (status 405)."""
    methods = ", ".join(sorted(set(allowed)))
    return {
        "error": f"Incorrect HTTP method for uri [{path}] and method [{method}], allowed: [{methods}]",
        "status": 405,
    }


def encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def log_error(err: SidecarError) -> None:
    """Server-side failures are logged with their cause; client errors only at debug level."""
    reason = redact.url(err.reason)
    if err.status >= 500:
        log.error("request failed: %s", reason, exc_info=err.__cause__ or err)
    else:
        log.debug("request rejected: %s %s", err.es_type, reason)
