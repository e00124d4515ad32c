"""Open the query encoder a pipeline implies: a remote sidecar (`inference.url`) or an in-process service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sidecar.pipelines.schema import PipelineConfig
from sidecar.search.encode import QueryEncoder, ServiceQueryEncoder
from sidecar.settings import Settings, load_settings


@asynccontextmanager
async def open_service_encoder(
    settings: Settings | None = None, preload: Sequence[str] = ()
) -> AsyncIterator[ServiceQueryEncoder]:
    """An in-process inference service, closed on exit. The `preload` endpoints' models load now,
    with a progress line on stderr when that takes a while; others load on first use."""
    from sidecar.inference.loading import load_models
    from sidecar.inference.service import InferenceService

    service = InferenceService.from_settings(settings or load_settings())
    try:
        await service.start()
        await load_models(service, preload)
        yield ServiceQueryEncoder(service)
    finally:
        await service.close()


@asynccontextmanager
async def open_encoder(
    pipeline: PipelineConfig,
    given: QueryEncoder | None = None,
    settings: Settings | None = None,
    preload: Sequence[str] = (),
) -> AsyncIterator[QueryEncoder]:
    if given is not None:
        yield given
    elif pipeline.inference.url is not None:
        remote = pipeline.inference.open_remote()
        try:
            yield ServiceQueryEncoder(remote)
        finally:
            await remote.close()
    else:
        async with open_service_encoder(settings, preload) as local:
            yield local
