"""Liveness and readiness for orchestrators (the Helm chart probes exactly these paths).

Live: the process answers. Ready: the inference service started (the preloaded endpoints' models
loaded: `serve` listens meanwhile and answers 503 `starting`) and the endpoint registry answers;
during shutdown readiness turns false first so traffic drains away.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from sidecar.api.deps import resolve
from sidecar.api.rendering import EsJSONResponse

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/_sidecar/health/live", summary="Liveness probe")
async def live() -> Response:
    return EsJSONResponse({"status": "live"})


async def readiness(request: Request) -> tuple[bool, dict[str, Any]]:
    state = request.app.state
    service = state.service
    if state.stopping:
        return False, {"status": "stopping"}
    if service is None or not state.started:
        error = getattr(state, "start_error", None)
        if error is not None:
            return False, {"status": "start_failed", "reason": type(error).__name__}
        return False, {"status": "starting"}
    detail: dict[str, Any] = {}
    try:
        check = getattr(service, "ready", None)
        if check is not None and not await resolve(check()):
            return False, {"status": "models_not_ready"}
        ping = getattr(service.registry, "ping", None)
        if ping is not None:  # reaches the store itself (the endpoint list may come from a cache)
            await resolve(ping())
        endpoints = await resolve(service.registry.list(None))
        detail["endpoints"] = len(endpoints)
    except Exception as exc:  # any failure means "not ready"; the log keeps the cause
        log.warning("readiness check failed: %s", exc, exc_info=exc)
        return False, {"status": "registry_unreachable", "reason": type(exc).__name__}
    return True, {"status": "ready", **detail}


@router.get("/_sidecar/health/ready", summary="Readiness probe: models loaded and registry reachable")
async def ready(request: Request) -> Response:
    ok, body = await readiness(request)
    return EsJSONResponse(body, status_code=200 if ok else 503)
