"""A backfill loads its pipeline's models before the scan starts (the worker's log lines say so);
a dry run, which encodes nothing, loads none."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.backfill.command import open_inference
from sidecar.pipelines.loader import parse_pipeline_text
from sidecar.settings import Settings

PIPELINE = """
name: docs
source: {kafka: {bootstrap_servers: "k:9092", topics: docs, group_id: g}}
fields:
  - {input: title, endpoint: .splade-tiny, target: ml.tokens, type: rank_features}
sink: {engine: opensearch, urls: "http://os:9200", index: docs}
"""


@pytest.mark.parametrize(("preload", "engines"), [(True, 1), (False, 0)])
async def test_models_load_before_the_scan_unless_dry_run(
    tmp_path: Path, preload: bool, engines: int
) -> None:
    config, problems = parse_pipeline_text(PIPELINE, "docs.yaml", env={})
    assert config is not None, problems
    settings = Settings(registry_path=tmp_path / "r.sqlite3", device="cpu")
    async with open_inference(config, settings, preload=preload) as (service, _):
        assert len(service.pool._engines) == engines
