"""Which field settings an evaluation takes from a pipeline file and the command line."""

from __future__ import annotations

from pathlib import Path

from sidecar.eval.runner import DEFAULT_DENSE, DEFAULT_SPARSE, EvalOptions, fields_for

PIPELINE = """
name: products
source: {kafka: {bootstrap_servers: "k:9092", topics: products, group_id: g}}
fields:
  - input: [name, description]
    endpoint: my-splade
    target: ml.tokens
    type: rank_features
    pruning: {top_k: 128}
    chunking: {strategy: word, max_chunk_size: 100, overlap: 10}
    skip_if_unchanged: true
sink: {engine: opensearch, urls: "http://os:9200", index: products}
"""


def test_built_in_endpoints_by_default() -> None:
    sparse, dense = fields_for(EvalOptions(dataset=Path("d")))
    assert sparse == DEFAULT_SPARSE and dense == DEFAULT_DENSE
    assert sparse.endpoint == ".splade-tiny" and list(sparse.input) == ["title", "text"]
    assert dense is not None and dense.endpoint == ".minilm-l6"
    assert fields_for(EvalOptions(dataset=Path("d"), dense=False))[1] is None


def test_pipeline_settings_with_the_evaluation_layout(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE)
    sparse, dense = fields_for(EvalOptions(dataset=Path("d"), pipeline=path))
    # endpoint, pruning and chunking come from the pipeline; inputs and target are the eval index's
    assert sparse.endpoint == "my-splade"
    assert sparse.pruning is not None and sparse.pruning.top_k == 128
    assert sparse.chunking == {"strategy": "word", "max_chunk_size": 100, "overlap": 10}
    assert list(sparse.input) == ["title", "text"] and sparse.target == "sparse"
    assert not sparse.skip_if_unchanged
    assert dense == DEFAULT_DENSE  # the pipeline has no dense field


def test_command_line_endpoints_win(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE)
    options = EvalOptions(dataset=Path("d"), pipeline=path, sparse_endpoint="other", dense_endpoint="e5")
    sparse, dense = fields_for(options)
    assert sparse.endpoint == "other" and sparse.pruning is not None
    assert dense is not None and dense.endpoint == "e5"
