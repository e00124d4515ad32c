"""What a search derives from a pipeline, and how fusion weights are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.errors import RequestValidationError
from sidecar.inference import loading
from sidecar.pipelines.loader import parse_pipeline_text
from sidecar.pipelines.schema import Engine
from sidecar.search.engine import EngineClient
from sidecar.search.searcher import (
    BM25,
    DEFAULT_WEIGHTS,
    DENSE,
    SPARSE,
    Searcher,
    SearchTarget,
    parse_weights,
    search,
)
from sidecar.search.session import open_service_encoder
from sidecar.settings import Settings

PIPELINE = """
name: docs
source: {kafka: {bootstrap_servers: "k:9092", topics: docs, group_id: g}}
fields:
  - {input: [title, body], endpoint: .splade-tiny, target: ml.tokens, type: rank_features}
  - {input: body, endpoint: .minilm-l6, target: ml.vec, type: dense_vector}
sink: {engine: elasticsearch, urls: "http://es:9200", index: docs-v1}
"""


def target_from(text: str) -> SearchTarget:
    config, problems = parse_pipeline_text(text, "test.yaml", env={})
    assert config is not None, problems
    return SearchTarget.from_pipeline(config)


def test_target_from_pipeline() -> None:
    target = target_from(PIPELINE)
    assert target.engine is Engine.ELASTICSEARCH
    assert target.index == "docs-v1"
    assert target.text_fields == ("title", "body")
    assert (target.sparse_field, target.sparse_endpoint) == ("ml.tokens", ".splade-tiny")
    assert (target.dense_field, target.dense_endpoint) == ("ml.vec", ".minilm-l6")
    assert target.methods(hybrid=False) == (SPARSE,)
    assert target.methods(hybrid=True) == (BM25, SPARSE, DENSE)


def test_dense_only_pipeline_searches_dense() -> None:
    text = PIPELINE.replace(
        "  - {input: [title, body], endpoint: .splade-tiny, target: ml.tokens, type: rank_features}\n", ""
    )
    target = target_from(text)
    assert target.methods(hybrid=False) == (DENSE,)
    assert target.methods(hybrid=True) == (BM25, DENSE)


def test_demo_pipeline_is_searchable() -> None:
    config, problems = parse_pipeline_text(
        Path("pipelines/demo.yaml").read_text(), "demo.yaml",
        env={"SIDECAR_KAFKA_BOOTSTRAP": "k:1", "SIDECAR_OPENSEARCH_URL": "http://os:9200"},
    )
    assert config is not None, problems
    target = SearchTarget.from_pipeline(config)
    assert target.methods(hybrid=True) == (BM25, SPARSE)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, DEFAULT_WEIGHTS[(BM25, SPARSE)]),
        ("0.3,0.7", (0.3, 0.7)),
        ("sparse=0.6, bm25=0.4", (0.4, 0.6)),
        ("sparse=1", (0.0, 1.0)),
        ([1, 2], (1.0, 2.0)),
    ],
)
def test_parse_weights(raw: str | list[float] | None, expected: tuple[float, ...]) -> None:
    assert parse_weights(raw, (BM25, SPARSE)) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [("0.5", "got 1 weights"), ("a,b", "not numbers"), ("dense=1", "weights name"), ("0,0", "not all 0"),
     ("-1,2", ">= 0")],
)
def test_bad_weights(raw: str, message: str) -> None:
    with pytest.raises(RequestValidationError, match=message):
        parse_weights(raw, (BM25, SPARSE))


async def test_search_rejects_empty_text_and_bad_k_before_any_call() -> None:
    target = target_from(PIPELINE)
    client = EngineClient(["http://127.0.0.1:9"])  # never reached: validation comes first
    searcher = Searcher(target, client, encoder=None)  # type: ignore[arg-type]
    with pytest.raises(RequestValidationError, match="empty"):
        await searcher.search("   ")
    with pytest.raises(RequestValidationError, match="k must be"):
        await searcher.search("dogs", k=0)
    await client.close()


async def test_bad_fusion_settings_fail_before_encoding() -> None:
    client = EngineClient(["http://127.0.0.1:9"])
    searcher = Searcher(target_from(PIPELINE), client, encoder=None)  # type: ignore[arg-type]
    with pytest.raises(RequestValidationError, match="unknown fusion"):
        await searcher.search("dogs", hybrid=True, fusion="borda")
    with pytest.raises(RequestValidationError, match="got 2 weights"):
        await searcher.search("dogs", hybrid=True, weights="0.5,0.5")  # three methods here
    await client.close()


def test_the_endpoints_whose_models_load_first_are_those_of_the_methods() -> None:
    target = target_from(PIPELINE)
    assert target.endpoints(target.methods(hybrid=False)) == [".splade-tiny"]
    assert target.endpoints(target.methods(hybrid=True)) == [".splade-tiny", ".minilm-l6"]


async def test_a_bad_search_fails_before_the_inference_service_opens(tmp_path: Path) -> None:
    config, problems = parse_pipeline_text(PIPELINE, "test.yaml", env={})
    assert config is not None, problems
    settings = Settings(registry_path=tmp_path / "r.sqlite3", device="cpu")
    with pytest.raises(RequestValidationError, match="unknown fusion"):
        await search(config, "dogs", hybrid=True, fusion="borda", settings=settings)
    with pytest.raises(RequestValidationError, match="empty"):
        await search(config, " ", settings=settings)
    assert not (tmp_path / "r.sqlite3").exists()  # no service was opened, no model loaded


async def test_the_query_models_load_when_the_encoder_opens_with_progress_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(loading, "NOTICE_AFTER_S", 0.0)  # the notice is due before the load begins
    settings = Settings(registry_path=tmp_path / "r.sqlite3", device="cpu")
    async with open_service_encoder(settings, preload=[".splade-tiny"]) as encoder:
        # Other lines (log records of earlier tests' handlers) may share stderr: look for the notice.
        assert any(line.startswith("loading model ") for line in capsys.readouterr().err.splitlines())
        assert await encoder.sparse(".splade-tiny", "dogs")
