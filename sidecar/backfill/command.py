"""`sidecar backfill`: wire a pipeline's inference, sink, dead letters and checkpoints to a `Backfill`.

Exit codes: 0 finished, 3 stopped by SIGTERM/SIGINT (the checkpoint allows resuming), 2 invalid
configuration, 1 any other failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from sidecar.backfill.checkpoint import (
    CHECKPOINT_INDEX,
    CheckpointStore,
    EngineCheckpointStore,
    FileCheckpointStore,
)
from sidecar.backfill.progress import LogProgress, ProgressReporter, RichProgress, summary_table
from sidecar.backfill.reindex import prepare_target
from sidecar.backfill.runner import Backfill, BackfillOptions, BackfillResult
from sidecar.deadletter import DeadLetterWriter, open_dead_letters
from sidecar.errors import PipelineConfigError, SidecarError
from sidecar.pipelines.loader import load_pipeline
from sidecar.pipelines.schema import PipelineConfig
from sidecar.settings import Settings, load_settings
from sidecar.sinks import BulkSink, create_sink
from sidecar.sinks.setup import HASH_MAPPING, pipeline_mappings

log = logging.getLogger("sidecar.backfill")

EXIT_STOPPED = 3


@dataclass(frozen=True)
class CommandOptions:
    pipeline: Path
    backfill: BackfillOptions
    checkpoint_file: Path | None = None
    checkpoint_index: str = CHECKPOINT_INDEX
    summary_json: Path | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"  # pods pass 0.0.0.0 so Prometheus can scrape them
    config: Path | None = None


@asynccontextmanager
async def open_inference(
    config: PipelineConfig, settings: Settings, *, preload: bool = True
) -> AsyncIterator[tuple[Any, Any]]:
    """(service, catalog): the remote sidecar of `inference.url`, else an in-process service whose
    models load now (logged), before the scan starts, unless `preload` is off (a dry run)."""
    from sidecar.inference.catalog import LocalCatalog

    if config.inference.url is not None:
        remote = config.inference.open_remote()
        try:
            yield remote, remote
        finally:
            await remote.close()
        return
    from sidecar.worker.main import open_local_service

    local = await open_local_service(settings, config.endpoint_ids if preload else ())
    try:
        yield local, LocalCatalog(local)
    finally:
        await local.close()


async def backfill_mappings(config: PipelineConfig, catalog: Any) -> dict[str, Any]:
    """Target mappings, plus a queryable hash for every field (how un-enriched documents are found)."""
    dims = {f.endpoint: await catalog.dimensions(f.endpoint) for f in config.fields if not f.type.sparse}
    mappings = pipeline_mappings(config, dims)
    for spec in config.fields:
        _nest(mappings["properties"], spec.hash_path, dict(HASH_MAPPING))
    return mappings


def _nest(properties: dict[str, Any], path: str, mapping: dict[str, Any]) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        properties.setdefault(head, mapping)
        return
    child = properties.setdefault(head, {"properties": {}})
    _nest(child.setdefault("properties", {}), rest, mapping)


def _store(options: CommandOptions, config: PipelineConfig, sink: BulkSink) -> CheckpointStore:
    if options.checkpoint_file is not None:
        return FileCheckpointStore(options.checkpoint_file)
    return EngineCheckpointStore(config.sink.engine, getattr(sink, "client"), options.checkpoint_index)  # noqa: B009


def _progress(label: str) -> ProgressReporter:
    return RichProgress(label) if sys.stderr.isatty() else LogProgress(label)


async def run_backfill(options: CommandOptions, settings: Settings, stop: asyncio.Event) -> BackfillResult:
    config = load_pipeline(options.pipeline)
    bf = options.backfill
    async with AsyncExitStack() as stack:
        inference = open_inference(config, settings, preload=not bf.dry_run)  # a dry run loads no model
        service, catalog = await stack.enter_async_context(inference)
        sink = create_sink(config.sink, config.errors, pipeline=config.name)
        stack.push_async_callback(sink.close)
        letters = await _dead_letters(config, sink, stack)
        backfill = Backfill(
            config, service, sink, _store(options, config, sink), bf, dead_letters=letters, stop=stop,
            max_inputs_per_request=min(256, settings.max_inputs_per_request),
            max_input_chars=settings.max_input_chars,
        )  # fmt: skip
        backfill.progress = _progress(backfill.label)
        if not bf.dry_run:
            mappings = await backfill_mappings(config, catalog)
            if bf.reindex_to is None:
                await sink.put_mapping(backfill.index, mappings)
            else:
                target = bf.reindex_to
                log.info(
                    await prepare_target(config, sink, backfill.client, backfill.index, target, mappings)
                )
        return await backfill.run()


async def _dead_letters(config: PipelineConfig, sink: BulkSink, stack: AsyncExitStack) -> DeadLetterWriter:
    letters = await open_dead_letters(config, sink)
    stack.push_async_callback(letters.close)
    return letters


def report(result: BackfillResult, options: CommandOptions, name: str) -> None:
    bf = options.backfill
    title = f"backfill [{name}] slice {bf.slice_id + 1}/{bf.slices}" + (" (dry run)" if bf.dry_run else "")
    rows: list[tuple[str, Any, float | None]] = [("this run", result.run, result.seconds)]
    if result.resumed:
        rows.append(("all runs", result.total, None))
    console = Console() if sys.stdout.isatty() else Console(width=140)  # no wrapped table in log files
    console.print(summary_table(title, rows, dry_run=bf.dry_run))
    for note in result.notes:
        console.print(note)
    if not result.finished:
        console.print("stopped before the end; run the same command again to resume")
    if options.summary_json is not None:
        summary = {
            "pipeline": name,
            "slice": bf.slice_id,
            "slices": bf.slices,
            "dry_run": bf.dry_run,
            "finished": result.finished,
            "resumed": result.resumed,
            "seconds": round(result.seconds, 3),
            "run": result.run.as_dict(),
            "total": result.total.as_dict(),
            "notes": result.notes,
        }
        options.summary_json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


async def _main(options: CommandOptions, settings: Settings) -> BackfillResult:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = None
    if options.metrics_port is not None:
        from sidecar.worker.health import HealthServer

        server = HealthServer(options.metrics_host, options.metrics_port, live=lambda: (True, {}), ready=lambda: (True, {}))
        await server.start()
    try:
        return await run_backfill(options, settings, stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if server is not None:
            await server.close()


def backfill_command(options: CommandOptions) -> int:
    from sidecar.observability.logging import configure_logging

    try:
        settings = load_settings(options.config)
    except SidecarError as exc:  # an unreadable or invalid --config file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json_format=settings.log_json)
    try:
        result = asyncio.run(_main(options, settings))
    except PipelineConfigError as exc:
        for problem in exc.problems or [exc.reason]:
            print(problem, file=sys.stderr)
        return 2
    except (SidecarError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report(result, options, load_pipeline(options.pipeline).name)
    return 0 if result.finished else EXIT_STOPPED


def parse_query(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"--query is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError('--query must be a JSON object (a query, e.g. {"term": {"lang": "en"}})')
    return value
