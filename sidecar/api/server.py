"""`sidecar serve`: run the API under uvicorn with JSON logs and a graceful shutdown.

On SIGTERM/SIGINT: readiness turns false at once (so load balancers stop sending), uvicorn stops
accepting connections and lets in-flight requests finish (up to `shutdown_grace_s`), then the
lifespan closes the inference service.
"""

from __future__ import annotations

import resource
from types import FrameType

import uvicorn
from fastapi import FastAPI

from sidecar.api.app import create_app
from sidecar.api.connections import guarded_protocol
from sidecar.observability.logging import configure_logging
from sidecar.settings import Settings

_RESERVED_DESCRIPTORS = 64  # for model files, the registry, outgoing connections


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.stopping = True
        super().handle_exit(sig, frame)


def connection_limit(wanted: int) -> int:
    """`wanted`, lowered so open connections leave descriptors for files, models and clients."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - _RESERVED_DESCRIPTORS))


def server_config(settings: Settings, app: FastAPI) -> uvicorn.Config:
    """uvicorn's configuration for `sidecar serve` (also used by tests, with port 0)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(
            settings.http_header_timeout_s, connection_limit(settings.http_max_connections)
        ),
        timeout_keep_alive=settings.http_keep_alive_s,
        log_config=None,  # keep the sidecar's JSON logging
        access_log=False,  # the sidecar logs its own access records (with request ids)
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        lifespan="on",
        server_header=False,
    )


def serve(settings: Settings) -> None:
    configure_logging(settings.log_level, json_format=settings.log_json)
    app = create_app(settings)
    _DrainingServer(server_config(settings, app), app).run()
