"""`sidecar serve`: run the API under uvicorn with JSON logs and a graceful shutdown.

On SIGTERM/SIGINT: readiness turns false at once (so load balancers stop sending), uvicorn stops
accepting connections and lets in-flight requests finish (up to `shutdown_grace_s`), then the
lifespan closes the inference service.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
import yaml
from fastapi import FastAPI

from sidecar.api.app import create_app
from sidecar.errors import SettingsValidationError
from sidecar.observability.logging import configure_logging
from sidecar.settings import Settings, load_settings


def settings_from(config: Path | None, **flags: Any) -> Settings:
    """Settings from a config file (YAML mapping or `.env` lines), the environment, then CLI flags.

    Environment variables win over the file, flags (when given) win over both.
    """
    if config is None or config.suffix not in (".yaml", ".yml"):
        return load_settings(_env_file=config, **flags)
    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise SettingsValidationError(f"[{config}] must hold a mapping of settings")
    values = {str(key).lower().removeprefix("sidecar_"): value for key, value in data.items()}
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise SettingsValidationError(f"[{config}] has unknown settings {unknown}")
    from_file = {k: v for k, v in values.items() if f"SIDECAR_{k.upper()}" not in os.environ}
    return load_settings(**{**from_file, **{k: v for k, v in flags.items() if v is not None}})


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
