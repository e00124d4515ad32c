"""OpenAPI details FastAPI cannot infer, because bodies and query strings are parsed by hand.

Bodies are read in `sidecar.api.bodies` (to answer with Elasticsearch's error types rather than
FastAPI's 422), so each route documents its body and parameters through `openapi_extra`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from sidecar.api.params import query_docs

JSON_TYPES = ("application/json", "application/vnd.elasticsearch+json; compatible-with=8")


def operation(
    *params: str, body: type[BaseModel] | None = None, body_required: bool = True
) -> dict[str, Any]:
    """`openapi_extra` for a route: its query parameters and (optional) JSON body."""
    extra: dict[str, Any] = {"parameters": query_docs(*params)}
    if body is not None:
        schema = body.model_json_schema()
        extra["requestBody"] = {
            "required": body_required,
            "content": {media: {"schema": schema} for media in JSON_TYPES[:1]},
        }
    return extra


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"description": "An Elasticsearch error body: `{error: {root_cause, type, reason}, status}`."},
}
