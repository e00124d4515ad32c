"""`sidecar worker`: run one or more pipelines in one process until SIGTERM/SIGINT.

Pipelines without `inference.url` share one in-process `InferenceService` (one model copy, one
batching engine); the others call their remote sidecar. Shutdown order on a signal: stop polling,
finish in-flight batches, commit, leave the group, close the clients, then the inference service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sidecar.inference.catalog import EndpointCatalog, LocalCatalog
from sidecar.inference.types import InferenceServiceProtocol
from sidecar.pipelines.loader import load_pipelines
from sidecar.pipelines.schema import PipelineConfig
from sidecar.settings import Settings
from sidecar.worker.health import HealthServer
from sidecar.worker.runner import PipelineRunner

log = logging.getLogger(__name__)

STUCK_LOOP_S = 60.0


async def open_local_service(settings: Settings, preload: Sequence[str] = ()) -> Any:
    """The in-process inference service, with the models of `preload` endpoints loaded and warm."""
    from sidecar.inference.service import InferenceService

    service = InferenceService.from_settings(settings)
    began = time.monotonic()
    if preload:  # a model load takes seconds to minutes: the log says what the process is doing
        log.info("loading the models of endpoints %s ...", list(preload))
    await service.start(preload=list(preload))
    if preload:
        log.info(
            "models loaded", extra={"endpoints": list(preload), "load_s": round(time.monotonic() - began, 3)}
        )
    return service


class Worker:
    def __init__(self, configs: Sequence[PipelineConfig], settings: Settings) -> None:
        self.configs = list(configs)
        self.settings = settings
        self.runners: list[PipelineRunner] = []
        self._closers: list[Any] = []
        self._stop = asyncio.Event()

    async def start(self) -> None:
        local: Any = None
        for config in self.configs:
            service: InferenceServiceProtocol
            catalog: EndpointCatalog
            if config.inference.url is not None:
                remote = config.inference.open_remote()
                self._closers.append(remote.close)
                service, catalog = remote, remote
            else:
                if local is None:
                    endpoints = {e for c in self.configs if c.inference.url is None for e in c.endpoint_ids}
                    local = await open_local_service(self.settings, sorted(endpoints))
                    self._closers.append(local.close)
                service, catalog = local, LocalCatalog(local)
            self.runners.append(PipelineRunner(config, service, catalog, self.settings))
        try:
            for runner in self.runners:
                await runner.start()
        except BaseException:
            for runner in self.runners:
                with contextlib.suppress(Exception):
                    await runner.close()
            raise

    def stop(self) -> None:
        if not self._stop.is_set():
            log.info("stopping: finishing in-flight batches, committing, leaving the groups")
        self._stop.set()
        for runner in self.runners:
            runner.stop()

    async def run(self) -> None:
        tasks = [asyncio.create_task(r.run(), name=f"pipeline-{r.name}") for r in self.runners]
        stopper = asyncio.create_task(self._stop.wait())
        # One pipeline ending (a fatal error) stops the others: the process must restart as a whole.
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        self.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        stopper.cancel()
        for runner, result in zip(self.runners, results, strict=True):
            if isinstance(result, BaseException) and runner.fatal is None:
                runner.fatal = result

    async def close(self) -> None:
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                await close()

    @property
    def failed(self) -> bool:
        return any(r.fatal is not None for r in self.runners)

    def live(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        stuck = [r.name for r in self.runners if r.started and now - r.last_loop > STUCK_LOOP_S]
        return not stuck, {"stuck": stuck}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        states = [r.health() for r in self.runners]
        ok = bool(states) and all(
            s["started"]
            and s["engine_reachable"]
            and not s["fatal"]
            and not s["dead_letter_failing"]
            and not s["target_problem"]
            for s in states
        )
        return ok and not self._stop.is_set(), {"pipelines": states}


async def run_worker(
    paths: Sequence[str | Path],
    settings: Settings,
    *,
    metrics_host: str = "127.0.0.1",  # pods pass 0.0.0.0 (the Helm chart does)
    metrics_port: int | None = 9108,
) -> int:
    """Run until a signal; returns the process exit code (1 when a pipeline failed)."""
    configs = load_pipelines(paths)
    worker = Worker(configs, settings)
    health = None
    if metrics_port is not None:
        health = HealthServer(metrics_host, metrics_port, live=worker.live, ready=worker.ready)
        await health.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    try:
        await worker.start()
        await worker.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await worker.close()
        if health is not None:
            await health.close()
    return 1 if worker.failed else 0
