"""Query-string and path parameters, parsed once for every route the way Elasticsearch parses them.

Each route declares the parameters it knows with `query_options(...)`; unknown parameters are
refused (`illegal_argument_exception`, as Elasticsearch does), booleans accept only `true`/`false`
(or an empty value meaning true) and durations use Elasticsearch's time units.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from sidecar.errors import IllegalArgumentError, SidecarError, StatusError
from sidecar.inference.types import TaskType

# Parameters every Elasticsearch route accepts.
COMMON_PARAMS = ("pretty", "human", "error_trace", "filter_path")

_TIME_RE = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>nanos|micros|ms|s|m|h|d)$")
_UNIT_SECONDS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_PARAM_DOCS: dict[str, tuple[str, dict[str, Any]]] = {
    "pretty": ("Indent the JSON answer.", {"type": "boolean"}),
    "human": ("Accepted for compatibility; has no effect.", {"type": "boolean"}),
    "error_trace": ("Accepted for compatibility; has no effect.", {"type": "boolean"}),
    "filter_path": (
        "Comma-separated dot paths (with `*`, `**`, `-` to exclude) to keep.",
        {"type": "string"},
    ),
    "timeout": ("How long to wait, in Elasticsearch time units (`30s`, `500ms`).", {"type": "string"}),
    "dry_run": ("Only report what deleting would affect.", {"type": "boolean"}),
    "force": ("Delete even when pipelines reference the endpoint.", {"type": "boolean"}),
}


class ParseException(SidecarError):
    """Elasticsearch's `parse_exception` for values such as a malformed time."""

    status = 400
    es_type = "parse_exception"


@dataclass(frozen=True)
class QueryOptions:
    pretty: bool = False
    filter_path: list[str] = field(default_factory=list)
    timeout: float | None = None
    dry_run: bool = False
    force: bool = False


def parse_bool(name: str, raw: str | None, default: bool = False) -> bool:
    if raw is None:
        return default
    if raw in ("", "true"):
        return True
    if raw == "false":
        return False
    raise IllegalArgumentError(
        f"Failed to parse value [{raw}] as only [true] or [false] are allowed.",
    )


def parse_time(name: str, raw: str) -> float | None:
    """Seconds for an Elasticsearch time value; None for `-1` (wait forever)."""
    value = raw.strip().lower()
    if value == "-1":
        return None
    if value == "0":
        return 0.0
    match = _TIME_RE.match(value)
    if match is None:
        raise ParseException(
            f"failed to parse setting [{name}] with value [{raw}] as a time value: "
            "unit is missing or unrecognized"
        )
    return float(match.group("num")) * _UNIT_SECONDS[match.group("unit")]


def parse_task_type(raw: str) -> TaskType:
    try:
        return TaskType(raw.lower())
    except ValueError:
        raise StatusError(f"Unknown task_type [{raw}]") from None


def _check_known(request: Request, allowed: frozenset[str]) -> None:
    unknown = [name for name in request.query_params if name not in allowed]
    if unknown:
        listed = ", ".join(f"[{name}]" for name in sorted(set(unknown)))
        noun = "parameter" if len(set(unknown)) == 1 else "parameters"
        raise IllegalArgumentError(f"request [{request.url.path}] contains unrecognized {noun}: {listed}")


def query_options(*extra: str) -> Callable[[Request], QueryOptions]:
    """A FastAPI dependency that parses the common parameters plus `extra` ones."""
    allowed = frozenset(COMMON_PARAMS + extra)

    def dependency(request: Request) -> QueryOptions:
        _check_known(request, allowed)
        params = request.query_params
        filter_path = [p.strip() for p in params.get("filter_path", "").split(",") if p.strip()]
        timeout = params.get("timeout")
        for flag in ("human", "error_trace"):
            parse_bool(flag, params.get(flag))
        return QueryOptions(
            pretty=parse_bool("pretty", params.get("pretty")),
            filter_path=filter_path,
            timeout=parse_time("timeout", timeout) if timeout is not None else None,
            dry_run=parse_bool("dry_run", params.get("dry_run")),
            force=parse_bool("force", params.get("force")),
        )

    return dependency


def query_docs(*extra: str) -> list[dict[str, Any]]:
    """OpenAPI descriptions of the parameters `query_options(*extra)` accepts."""
    docs = []
    for name in COMMON_PARAMS + extra:
        description, schema = _PARAM_DOCS[name]
        docs.append(
            {"name": name, "in": "query", "required": False, "description": description, "schema": schema}
        )
    return docs
