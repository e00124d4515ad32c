"""The ingest hook's routes: Elasticsearch's document-write APIs, enriched on the way to the engine.

`POST|PUT /_bulk`, `POST|PUT /{index}/_bulk`, `PUT|POST /{index}/_doc/{id}`, `POST /{index}/_doc`,
`PUT|POST /{index}/_create/{id}`. Query parameters (`refresh`, `routing`, `pipeline`, ...) reach the
engine unchanged. The same authentication, body limit and in-flight limit as the rest of the API
apply (they are middleware and `limiter_of`). The work happens in `sidecar.hook`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from sidecar.api.auth import load_keys
from sidecar.api.deps import limiter_of
from sidecar.api.openapi import ERROR_RESPONSES
from sidecar.api.params import QueryOptions, parse_bool
from sidecar.api.rendering import EsJSONResponse, es_json
from sidecar.errors import IllegalArgumentError, RoutingError
from sidecar.hook.handlers import handle_bulk, handle_document
from sidecar.hook.pipelines import concrete_index
from sidecar.hook.state import Hook
from sidecar.hook.upstream import UpstreamAnswer, engine_path


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Runs after the app's own lifespan started the inference service (FastAPI nests router lifespans).
    settings = app.state.settings
    hook = Hook.build(settings, app.state.service, auth_enabled=bool(load_keys(settings)))
    app.state.hook = hook
    try:
        yield
    finally:
        app.state.hook = None
        if hook is not None:
            await hook.close()


router = APIRouter(tags=["ingest hook"], responses=ERROR_RESPONSES, lifespan=_lifespan)

_PARAMS = [
    {"name": name, "in": "query", "required": False, "description": text, "schema": {"type": "string"}}
    for name, text in (
        ("refresh", "`true`, `false` or `wait_for`; passed to the engine."),
        ("routing", "Default routing; passed to the engine."),
        ("pipeline", "The engine's own ingest pipeline; passed to the engine."),
        ("filter_path", "Keep only these paths of the answer."),
    )
]
_BULK_DOC: dict[str, Any] = {
    "parameters": _PARAMS,
    "requestBody": {"required": True, "content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
}
_DOC_DOC: dict[str, Any] = {
    "parameters": _PARAMS,
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
}


def _hook(request: Request) -> Hook:
    hook: Hook | None = getattr(request.app.state, "hook", None)
    if hook is None:
        raise IllegalArgumentError(
            "the ingest hook is not configured: set SIDECAR_HOOK_PIPELINES and/or SIDECAR_HOOK_UPSTREAM_URL"
        )
    return hook


def _path_names(request: Request, kind: str) -> tuple[str, str | None]:
    """The index and document id of `/{index}/{kind}[/{id}]`, read from the path as sent.

    The decoded path cannot tell a `/` inside a name (`%2F`, as in the date math
    `<logs-{now/d}>`) from a separator, so the routes match any index and the names are split
    here, on the raw path, as Elasticsearch does. A date-math index is resolved (see
    `sidecar.pipelines.date_math`) so that the look-ups and the write agree on one index.
    """
    raw = request.scope.get("raw_path") or request.url.path.encode()
    segments = raw.split(b"?", 1)[0].decode("latin-1").split("/")
    if len(segments) < 3 or segments[2] != kind or (kind == "_bulk" and len(segments) != 3):
        raise _no_handler(request)
    index = unquote(segments[1])
    doc_id = unquote("/".join(segments[3:])) if len(segments) > 3 else None
    if not index or doc_id == "":
        raise _no_handler(request)
    return concrete_index(index) or index, doc_id


def _no_handler(request: Request) -> RoutingError:
    uri = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RoutingError(f"no handler found for uri [{uri}] and method [{request.method}]")


def _render_options(request: Request) -> QueryOptions:
    params = request.query_params
    paths = [p.strip() for p in params.get("filter_path", "").split(",") if p.strip()]
    return QueryOptions(pretty=parse_bool("pretty", params.get("pretty")), filter_path=paths)


def _passed_on(answer: UpstreamAnswer) -> Response:
    response = Response(answer.body, status_code=answer.status, media_type=answer.content_type)
    for warning in answer.warnings:  # e.g. deprecations: the client logs them as the engine's own
        response.headers.append("warning", warning)
    return response


async def _bulk(request: Request, index: str | None) -> Response:
    hook = _hook(request)
    if index is not None:
        index, _ = _path_names(request, "_bulk")
    path = engine_path("_bulk") if index is None else engine_path(index, "_bulk")
    async with limiter_of(request).slot():
        answer = await handle_bulk(
            hook,
            path,
            request.query_params.multi_items(),
            request.stream(),
            default_index=index,
            authorization=request.headers.get("authorization"),
        )
    if isinstance(answer, UpstreamAnswer):
        return _passed_on(answer)
    return es_json(answer, _render_options(request))


async def _document(request: Request, *, create: bool) -> Response:
    hook = _hook(request)
    kind = "_create" if create else "_doc"
    index, doc_id = _path_names(request, kind)
    path = engine_path(index, kind) if doc_id is None else engine_path(index, kind, doc_id)
    async with limiter_of(request).slot():
        answer = await handle_document(
            hook,
            request.method,
            path,
            request.query_params.multi_items(),
            await request.body(),
            index=index,
            doc_id=doc_id,
            create=create,
            authorization=request.headers.get("authorization"),
        )
    if isinstance(answer, UpstreamAnswer):
        return _passed_on(answer)
    status, body = answer
    return EsJSONResponse(body, status_code=status)


@router.api_route("/_bulk", methods=["POST", "PUT"], summary="Bulk write, enriched", openapi_extra=_BULK_DOC)
async def bulk(request: Request) -> Response:
    return await _bulk(request, None)


# `{index:path}`: an index name may hold an encoded `/` (date math); `_path_names` splits the path.
@router.api_route(
    "/{index:path}/_bulk",
    methods=["POST", "PUT"],
    summary="Bulk write to an index, enriched",
    openapi_extra=_BULK_DOC,
)
async def index_bulk(request: Request, index: str) -> Response:
    return await _bulk(request, index)


@router.api_route(
    "/{index:path}/_doc/{doc_id:path}",
    methods=["PUT", "POST"],
    summary="Index a document, enriched",
    openapi_extra=_DOC_DOC,
)
async def index_document(request: Request, index: str, doc_id: str) -> Response:
    return await _document(request, create=False)


@router.post(
    "/{index:path}/_doc", summary="Index a document with a generated id, enriched", openapi_extra=_DOC_DOC
)
async def index_document_auto_id(request: Request, index: str) -> Response:
    return await _document(request, create=False)


@router.api_route(
    "/{index:path}/_create/{doc_id:path}",
    methods=["PUT", "POST"],
    summary="Create a document, enriched",
    openapi_extra=_DOC_DOC,
)
async def create_document(request: Request, index: str, doc_id: str) -> Response:
    return await _document(request, create=True)
