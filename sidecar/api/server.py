"""`sidecar serve`: run the API under uvicorn with JSON logs and a graceful shutdown.

On SIGTERM/SIGINT: readiness turns false at once (so load balancers stop sending), uvicorn stops
accepting connections and lets in-flight requests finish (up to `shutdown_grace_s`), then the
lifespan closes the inference service.
"""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

from sidecar.api.app import create_app
from sidecar.observability.logging import configure_logging
from sidecar.settings import Settings


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.stopping = True
        super().handle_exit(sig, frame)


def serve(settings: Settings) -> None:
    configure_logging(settings.log_level, json_format=settings.log_json)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the sidecar's JSON logging
        access_log=False,  # the sidecar logs its own access records (with request ids)
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        lifespan="on",
        server_header=False,
    )
    _DrainingServer(config, app).run()
