"""`sidecar setup`: create the index, mappings or index template the pipelines need."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sidecar.errors import PipelineConfigError
from sidecar.inference.loading import with_progress
from sidecar.pipelines.loader import load_pipelines
from sidecar.settings import Settings

if TYPE_CHECKING:
    from sidecar.inference.catalog import EndpointCatalog


async def _dimensions(catalog: EndpointCatalog, endpoints: Sequence[str]) -> dict[str, int]:
    return {endpoint: await catalog.dimensions(endpoint) for endpoint in endpoints}


async def _setup(paths: Sequence[Path], settings: Settings) -> list[str]:
    from sidecar.inference.catalog import LocalCatalog
    from sidecar.sinks import create_sink
    from sidecar.sinks.setup import setup_pipeline
    from sidecar.worker.main import open_local_service

    configs = load_pipelines(paths)
    lines: list[str] = []
    local: Any = None
    try:
        for config in configs:
            dims: dict[str, int] = {}
            dense = [f.endpoint for f in config.fields if not f.type.sparse]
            remote = None
            if dense:
                catalog: EndpointCatalog
                if config.inference.url is not None:
                    remote = config.inference.open_remote()
                    catalog = remote
                else:
                    local = local or await open_local_service(settings)
                    catalog = LocalCatalog(local)
                # A dense endpoint without configured dimensions loads its model to measure them.
                dims = await with_progress(_dimensions(catalog, dense), f"measuring the dimensions of {dense}")
                if remote is not None:
                    await remote.close()
            sink = create_sink(config.sink, config.errors, pipeline=config.name)
            try:
                lines += [f"{config.name}: {line}" for line in await setup_pipeline(config, sink, dims)]
            finally:
                await sink.close()
    finally:
        if local is not None:
            await local.close()
    return lines


def setup_command(paths: Sequence[Path], settings: Settings) -> int:
    try:
        lines = asyncio.run(_setup(paths, settings))
    except PipelineConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"error: setup failed: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0
