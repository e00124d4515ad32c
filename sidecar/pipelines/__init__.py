"""Pipeline files: the typed schema and the loader that reports problems with file, line and key."""

from sidecar.pipelines.loader import (
    Problem,
    load_pipeline,
    load_pipelines,
    parse_pipeline_text,
    validate_file,
)
from sidecar.pipelines.schema import PipelineConfig

__all__ = [
    "PipelineConfig",
    "Problem",
    "load_pipeline",
    "load_pipelines",
    "parse_pipeline_text",
    "validate_file",
]
