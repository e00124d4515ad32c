"""Bodies of `sidecar worker`, `sidecar validate` and `sidecar setup` (the CLI stays a thin shell)."""

from __future__ import annotations

import asyncio
import glob
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sidecar.errors import PipelineConfigError, SidecarError
from sidecar.inference.types import TaskType
from sidecar.pipelines.loader import load_pipelines, validate_file
from sidecar.settings import Settings, load_settings

log = logging.getLogger("sidecar.worker")


def configure_logging(settings: Settings) -> None:
    if logging.getLogger().handlers:
        return
    fmt = (
        '{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","message":"%(message)s"}'
        if settings.log_json
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.basicConfig(level=settings.log_level.upper(), format=fmt, stream=sys.stderr)
    for noisy in ("aiokafka", "opensearch", "elastic_transport", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _settings(config: Path | None) -> Settings:
    return load_settings(_env_file=config)


def worker_command(paths: Sequence[Path], host: str, port: int, config: Path | None) -> int:
    from sidecar.worker.main import run_worker
    from sidecar.worker.runner import PipelineStartError

    settings = _settings(config)
    configure_logging(settings)
    try:
        return asyncio.run(run_worker(paths, settings, metrics_host=host, metrics_port=port))
    except PipelineConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except (PipelineStartError, SidecarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _registry_lookup() -> Callable[[str], TaskType | None]:
    """Task types from the local endpoint registry, without loading any model."""
    from sidecar.errors import NotFoundError
    from sidecar.inference.registry import EndpointRegistry

    registry = EndpointRegistry.from_settings(load_settings())

    def lookup(inference_id: str) -> TaskType | None:
        try:
            return TaskType(registry.get(inference_id).task_type)
        except NotFoundError:
            return None

    return lookup


def validate_command(paths: Sequence[Path], check_endpoints: bool) -> int:
    files = [Path(p) for p in paths] or [Path(p) for p in sorted(glob.glob("pipelines/*.yaml"))]
    if not files:
        print("no pipeline files given and none in pipelines/*.yaml", file=sys.stderr)
        return 2
    lookup = _registry_lookup() if check_endpoints else None
    failed = 0
    for path in files:
        _, problems = validate_file(path, task_type_of=lookup)
        for problem in problems:
            print(problem)
        if problems:
            failed += 1
        else:
            print(f"{path}: ok")
    return 1 if failed else 0


async def _setup(paths: Sequence[Path], settings: Settings) -> list[str]:
    from sidecar.sinks import create_sink
    from sidecar.sinks.setup import setup_pipeline
    from sidecar.worker.inference import EndpointCatalog, LocalCatalog, RemoteInference
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
                    remote = RemoteInference(config.inference)
                    catalog = remote
                else:
                    local = local or await open_local_service(settings)
                    catalog = LocalCatalog(local)
                dims = {endpoint: await catalog.dimensions(endpoint) for endpoint in dense}
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


def setup_command(paths: Sequence[Path], config: Path | None) -> int:
    settings = _settings(config)
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
