"""The ASGI application: routers, middleware, error handlers and the inference service's lifetime.

    request -> EsCompatMiddleware (headers, request id, access log, metrics, last-resort errors)
            -> BodyTimeoutMiddleware (408 for slow bodies) -> AuthMiddleware (optional API keys) -> DecompressMiddleware (gzip bodies)
            -> BodyLimitMiddleware (413, inflated bytes)
            -> router (one module per concern) -> handler -> InferenceService

`create_app(settings)` builds the real service from settings when the app starts; tests may pass
any object implementing `InferenceServiceProtocol` (with a `registry`) as `service`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError as FastAPIValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from sidecar.api import es_errors, openapi
from sidecar.api.auth import Authenticator, AuthMiddleware, load_keys
from sidecar.api.compression import DecompressMiddleware
from sidecar.api.connections import BodyTimeoutMiddleware
from sidecar.api.limits import BodyLimitMiddleware, InFlightLimiter
from sidecar.api.middleware import EsCompatMiddleware
from sidecar.api.rendering import EsJSONResponse
from sidecar.api.routes import (
    cluster_hooks,
    health,
    inference_crud,
    inference_perform,
    ingest_hook,
    metrics,
    root,
)
from sidecar.errors import ParseError, SidecarError
from sidecar.settings import Settings, load_settings

log = logging.getLogger(__name__)

OPENAPI_URL = "/_sidecar/openapi.json"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state
    state.stopping = False
    if state.service is None:
        from sidecar.inference.service import InferenceService  # torch loads here, not at import

        state.service = InferenceService.from_settings(state.settings)
    # The server listens while models load (readiness answers 503 "starting" meanwhile), so
    # orchestrators see a live process and the log shows progress instead of a silent port.
    starting = asyncio.create_task(_start_service(state))
    if not state.settings.preload_endpoints:
        await starting
    try:
        yield
    finally:
        # Readiness turns false before models go away; in-flight requests already finished
        # (uvicorn drains them before running the lifespan shutdown).
        state.stopping = True
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        close = getattr(state.service, "close", None)
        if close is not None:
            await close()
        log.info("sidecar API stopped")


async def _start_service(state: Any) -> None:
    """Start the service and load the preloaded endpoints' models; readiness waits for this."""
    start = getattr(state.service, "start", None)
    preload = list(state.settings.preload_endpoints)
    began = time.monotonic()
    try:
        if start is not None and "preload" in inspect.signature(start).parameters:
            if preload:
                log.info("loading the models of endpoints %s ...", preload)
            await start(preload=preload)
        elif start is not None:
            await start()
    except Exception as exc:  # stays not ready; the log and the readiness body say why
        state.start_error = exc
        log.error("sidecar API failed to start: %s", exc, exc_info=exc)
        return
    state.started = True
    log.info("sidecar API ready", extra={"startup_s": round(time.monotonic() - began, 3)})


def _request_uri(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _allowed_methods(request: Request) -> set[str]:
    """Every method some route serves at this path (Elasticsearch lists them in its 405 answer)."""
    probe = {"type": "http", "path": request.url.path, "root_path": "", "method": "GET", "headers": []}
    allowed: set[str] = set()
    for route in request.app.state.api_routes:
        match, _ = route.matches(dict(probe))
        if match is not Match.NONE:
            allowed |= set(route.methods)
    return allowed


async def _sidecar_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, SidecarError):  # registered for SidecarError only
        raise exc
    es_errors.log_error(exc)
    return EsJSONResponse(
        es_errors.error_body(exc), status_code=exc.status, headers=es_errors.error_headers(exc)
    )


async def _routing_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # registered for HTTPException only
        raise exc
    uri, method = _request_uri(request), request.method
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        body = es_errors.incorrect_method_body(uri, method, allowed)
        return EsJSONResponse(body, status_code=405, headers={"Allow": ", ".join(sorted(allowed))})
    if exc.status_code == 404:
        return EsJSONResponse(es_errors.no_handler_body(uri, method), status_code=400)
    return EsJSONResponse({"error": str(exc.detail), "status": exc.status_code}, status_code=exc.status_code)


async def _fastapi_validation_error(request: Request, exc: Exception) -> Response:
    return await _sidecar_error(request, ParseError(f"failed to parse request: {exc}"))


def create_app(settings: Settings | None = None, *, service: Any = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(
        title="sparse-sidecar",
        summary="Elasticsearch-compatible inference API for learned sparse and dense retrieval.",
        version=root._sidecar_version(),
        openapi_url=OPENAPI_URL,
        docs_url="/_sidecar/docs",
        redoc_url=None,
        lifespan=_lifespan,
        default_response_class=EsJSONResponse,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.started = False
    app.state.start_error = None
    app.state.stopping = False
    app.state.limiter = InFlightLimiter(settings.max_concurrent_requests)

    modules = (root, health, metrics, inference_crud, inference_perform, cluster_hooks, ingest_hook)
    for module in modules:
        app.include_router(module.router)
    app.state.api_routes = [route for module in modules for route in module.router.routes]
    openapi.install(app)

    app.add_exception_handler(SidecarError, _sidecar_error)
    app.add_exception_handler(StarletteHTTPException, _routing_error)
    app.add_exception_handler(FastAPIValidationError, _fastapi_validation_error)

    # Added innermost first: EsCompat wraps Auth, which wraps the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(DecompressMiddleware)  # outside the body limit: it counts inflated bytes
    app.add_middleware(AuthMiddleware, authenticator=Authenticator(load_keys(settings)))
    app.add_middleware(BodyTimeoutMiddleware, timeout_s=settings.http_body_timeout_s)
    app.add_middleware(EsCompatMiddleware)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory sidecar.api.app:app_from_env` (settings from `SIDECAR_*`)."""
    return create_app(load_settings())
