"""OpenAPI details FastAPI cannot infer, because bodies and query strings are parsed by hand.

Bodies are read in `sidecar.api.bodies` (to answer with Elasticsearch's error types rather than
FastAPI's 422), so each route documents its body and parameters through `openapi_extra`.
"""

from __future__ import annotations

import warnings
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from sidecar.api.params import query_docs


def operation(
    *params: str, body: type[BaseModel] | None = None, body_required: bool = True
) -> dict[str, Any]:
    """`openapi_extra` for a route: its query parameters and (optional) JSON body."""
    extra: dict[str, Any] = {"parameters": query_docs(*params)}
    if body is not None:
        schema = body.model_json_schema()
        extra["requestBody"] = {
            "required": body_required,
            # The vendor media types are accepted too; one documented type keeps fuzzing focused.
            "content": {"application/json": {"schema": schema}},
        }
    return extra


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"description": "An Elasticsearch error body: `{error: {root_cause, type, reason}, status}`."},
}


def install(app: FastAPI) -> None:
    """Generate the document once, with unique operation ids even for multi-method routes.

    FastAPI gives every method of a route the same operation id (and warns); the second and later
    ones get the method appended here, so any router module may serve several methods per route.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Duplicate Operation ID", category=UserWarning)
                schema = get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            seen: set[str] = set()
            for operations in schema.get("paths", {}).values():
                for method, operation in operations.items():
                    operation_id = operation.get("operationId")
                    if operation_id in seen:
                        operation["operationId"] = operation_id = f"{operation_id}_{method}"
                    seen.add(operation_id)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
