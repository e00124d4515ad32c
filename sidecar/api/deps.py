"""What handlers get from the application: the settings, the inference service, its registry, limits.

The service is put on `app.state` by `create_app` (tests may inject their own object implementing
`InferenceServiceProtocol` plus a `registry`); handlers reach it only through these functions.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from fastapi import Request

from sidecar.api.limits import InFlightLimiter
from sidecar.errors import ModelNotReadyError
from sidecar.inference.types import InferenceServiceProtocol
from sidecar.settings import Settings

T = TypeVar("T")


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def service_of(request: Request) -> InferenceServiceProtocol:
    service: InferenceServiceProtocol | None = request.app.state.service
    if service is None:
        raise ModelNotReadyError("the inference service is not started")
    return service


def registry_of(request: Request) -> Any:
    return service_of(request).registry  # type: ignore[attr-defined]


def limiter_of(request: Request) -> InFlightLimiter:
    limiter: InFlightLimiter = request.app.state.limiter
    return limiter


async def resolve(value: T | Any) -> Any:
    """The registry may be synchronous or asynchronous; accept both."""
    if inspect.isawaitable(value):
        return await value
    return value
