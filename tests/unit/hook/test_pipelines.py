"""`source.ingest_hook` in pipeline files and how the hook picks a pipeline for an index."""

from __future__ import annotations

import pytest

from sidecar.errors import PipelineConfigError
from sidecar.hook.pipelines import PipelineSelector
from sidecar.pipelines.loader import parse_pipeline_text
from tests.unit.hook.conftest import HookFactory

HOOK_ONLY = """
name: h
source:
  ingest_hook:
    indices: logs-*
fields: [{input: t, endpoint: .splade-tiny, target: v}]
sink: {engine: opensearch, urls: "http://e:9200", index: logs}
"""


def test_a_hook_only_pipeline_is_valid_and_not_a_worker_pipeline() -> None:
    config, problems = parse_pipeline_text(HOOK_ONLY, "h.yaml")
    assert problems == [] and config is not None
    assert config.source.ingest_hook is not None and config.source.ingest_hook.indices == ["logs-*"]
    with pytest.raises(PipelineConfigError, match=r"has no \[source.kafka\]") as caught:
        _ = config.kafka
    assert caught.value.problems


def test_a_pipeline_needs_some_source() -> None:
    _, problems = parse_pipeline_text(
        HOOK_ONLY.replace("  ingest_hook:\n    indices: logs-*\n", "  {}\n"), "x.yaml"
    )
    assert [str(p) for p in problems] == ["x.yaml:3: source: set [kafka] and/or [ingest_hook]"]
    _, problems = parse_pipeline_text(HOOK_ONLY.replace("indices: logs-*", "indices: []"), "x.yaml")
    assert problems and problems[0].key == "source.ingest_hook.indices"


def test_selection_by_pattern_exclusion_and_date_math(make_hook: HookFactory) -> None:
    selector: PipelineSelector = make_hook().selector
    assert selector.select("articles") is not None
    assert selector.select("articles-2025") is not None
    assert selector.select("articles-raw") is None  # excluded by `-articles-raw`
    assert selector.select("logs") is None and selector.select(None) is None
    assert selector.select("<articles-{now/d}>") is not None  # resolved, then matched
    assert selector.select("<logs-{now/d}>") is None
    assert selector.select("<articles-{now/bad}>") is None  # invalid date math: passed through
