"""`sidecar worker`: settings and JSON logs, then the Kafka worker until a signal."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from sidecar.errors import PipelineConfigError, SidecarError
from sidecar.observability.logging import configure_logging
from sidecar.settings import Settings


def worker_command(paths: Sequence[Path], host: str, port: int, settings: Settings) -> int:
    from sidecar.worker.main import run_worker
    from sidecar.worker.runner import PipelineStartError

    configure_logging(settings.log_level, json_format=settings.log_json)
    try:
        return asyncio.run(run_worker(paths, settings, metrics_host=host, metrics_port=port))
    except PipelineConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except (PipelineStartError, SidecarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
