"""Checks at `PUT` of what a remote endpoint will send: its URLs and its secrets.

Refused with 400 (`validation_exception`) when the endpoint is created, not discovered as a 500 or
a 502 on every later call: a URL that is not absolute `http`/`https` (`file://`, no host, malformed)
and a secret that cannot travel in an HTTP header (control characters such as a trailing CR/LF,
non-ASCII). Secrets are never quoted in the message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from sidecar import redact
from sidecar.errors import SettingsValidationError

SCHEMES = ("http", "https")
# Secrets that travel in a request header as they are; others are signing keys or documents
# (`secret_key`, `service_account_json` may hold newlines) and are checked by their service.
HEADER_SECRETS = frozenset({"api_key", "entra_id", "access_key"})


def url_problem(value: Any) -> str | None:
    """Why `value` is not an absolute http(s) URL, or None."""
    if not isinstance(value, str):
        return "it must be a string"
    if not value.isprintable() or any(c.isspace() for c in value):
        return "it holds blanks or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises for a port that is not a number in range
        httpx.URL(value)
    except (httpx.InvalidURL, ValueError) as exc:
        return f"it is malformed ({exc})"
    if parts.scheme.lower() not in SCHEMES:
        return f"only {' and '.join(SCHEMES)} URLs are accepted"
    if not parts.hostname:
        return "it has no host"
    return None


def secret_problem(value: Any) -> str | None:
    """Why `value` cannot be sent in a header, or None (without quoting it)."""
    if not isinstance(value, str):
        return None  # non-string secrets (e.g. `secret_parameters`) are checked by their service
    if not value.isascii() or not value.isprintable():
        return "it holds control or non-ASCII characters"
    return None


def check_remote_settings(service_settings: dict[str, Any], secrets: Iterable[str]) -> None:
    problems: list[str] = []
    for key, value in service_settings.items():
        if key == "url" or key.endswith("_url"):
            if isinstance(value, str) and "${" in value:
                continue  # a `custom` template: its service checks the URL it renders
            why = url_problem(value)
            if why is not None:
                shown = redact.url(str(value))
                problems.append(f"[service_settings] Invalid url [{shown}] received for field [{key}]: {why}")
    for key in sorted(HEADER_SECRETS & set(secrets)):
        why = secret_problem(service_settings.get(key))
        if why is not None:
            problems.append(f"[service_settings] Invalid value for field [{key}]: {why}")
    if problems:
        body = " ".join(f"{i}: {p};" for i, p in enumerate(problems, 1))
        raise SettingsValidationError(f"Validation Failed: {body}")
