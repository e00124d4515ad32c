"""`sidecar validate [PATH...]`: check pipeline files and folders, each problem once with FILE:LINE."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from sidecar.inference.types import TaskType
from sidecar.pipelines.loader import validate_file
from sidecar.settings import Settings

DEFAULT_FOLDER = Path("pipelines")


def pipeline_files(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """Files named, and every `*.yaml`/`*.yml` under folders named (sorted), each once; and a
    problem line for each path that is neither."""
    files: list[Path] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                problems.append(f"{path}: <folder>: holds no *.yaml or *.yml file")
            files += found
        elif path.exists():
            files.append(path)
        else:
            problems.append(f"{path}: <file>: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in files))
    named = {p.resolve(): p for p in reversed(files)}  # print each file as the user first named it
    return [named[p] for p in unique], problems


def _registry_lookup(settings: Settings) -> Callable[[str], TaskType | None]:
    """Task types from the local endpoint registry, without loading any model."""
    from sidecar.errors import NotFoundError
    from sidecar.inference.registry import EndpointRegistry

    registry = EndpointRegistry.from_settings(settings)

    def lookup(inference_id: str) -> TaskType | None:
        try:
            return TaskType(registry.get(inference_id).task_type)
        except NotFoundError:
            return None

    return lookup


def validate_command(paths: Sequence[Path], check_endpoints: bool, settings: Settings) -> int:
    """0 when every file is valid, 1 when some file has problems, 2 when there is nothing to check."""
    files, problems = pipeline_files(paths or [DEFAULT_FOLDER])
    for problem in problems:
        print(problem)
    if not files:
        if not problems:
            print("no pipeline files to check", file=sys.stderr)
        return 2
    lookup = _registry_lookup(settings) if check_endpoints else None
    failed = bool(problems)
    for path in files:
        config, found = validate_file(path, task_type_of=lookup)
        for problem in dict.fromkeys(str(p) for p in found):
            print(problem)
        if found:
            failed = True
        else:
            print(f"{path}: ok")
            if config is not None and config.source.kafka is not None:
                print(f"{path}: {config.dead_letter_summary}")
    return 1 if failed else 0
