"""Hybrid naming and fusion over runs, the weight grid, and the report outputs."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from sidecar.eval.indexing import IndexInfo, mapping
from sidecar.eval.methods import Hybrid, default_hybrids, fuse_runs, weight_grid
from sidecar.eval.reference import SCIFACT
from sidecar.eval.report import harness_check, print_report, write_chart, write_json
from sidecar.eval.retrieval import MethodScore
from sidecar.eval.runner import EvalReport, Weights
from sidecar.eval.tradeoff import markdown
from sidecar.search.fusion import Fusion


def test_weight_grid() -> None:
    assert weight_grid(2, 0.5) == [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    grid = weight_grid(3, 0.1)
    assert len(grid) == 66  # C(12, 2) compositions of 10 into 3 parts
    assert all(abs(sum(w) - 1) < 1e-9 for w in grid)


def test_default_hybrids_only_combine_available_methods() -> None:
    weights: Weights = {("bm25", "sparse"): (0.4, 0.6)}
    names = [h.name for h in default_hybrids(["bm25", "sparse"], weights)]
    assert names == ["bm25+sparse minmax 0.4/0.6", "bm25+sparse minmax 0.5/0.5", "bm25+sparse rrf"]
    # equal weights are not repeated; missing weights default to equal ones
    names = [h.name for h in default_hybrids(["bm25", "sparse", "dense"], {("bm25", "sparse"): (0.5, 0.5)})]
    assert names == ["bm25+sparse minmax 0.5/0.5", "bm25+sparse rrf", "bm25+dense minmax 0.5/0.5",
                     "bm25+dense rrf", "bm25+sparse+dense minmax 0.33/0.33/0.33", "bm25+sparse+dense rrf"]


def test_fuse_runs_per_query() -> None:
    runs = {"bm25": {"q1": [("a", 3.0), ("b", 1.0)], "q2": [("c", 1.0)]}, "sparse": {"q1": [("b", 5.0)]}}
    fused = fuse_runs(runs, Hybrid(("bm25", "sparse"), Fusion.MINMAX, (0.5, 0.5)), size=10)
    assert fused["q1"] == [("a", 0.5), ("b", 0.5)]
    assert fused["q2"] == [("c", 0.5)]


def test_mapping_english_text_and_vector_fields() -> None:
    es = mapping("elasticsearch", 384, {"k": 1})
    props = es["mappings"]["properties"]
    assert props["title"] == props["text"] == {"type": "text", "analyzer": "english"}
    assert props["sparse"] == {"type": "rank_features"}
    assert props["dense"]["type"] == "dense_vector" and props["dense"]["dims"] == 384
    assert es["mappings"]["_meta"] == {"k": 1}
    assert es["settings"]["number_of_shards"] == 1
    assert "dense" not in mapping("opensearch", None, {})["mappings"]["properties"]
    knn = mapping("opensearch", 8, {})["mappings"]["properties"]["dense"]
    # The Lucene engine: k-NN's default (faiss) needs a native library the local stack lacks.
    assert knn == {"type": "knn_vector", "dimension": 8,
                   "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"}}
    assert "similarity" not in es["settings"]
    anserini = mapping("opensearch", None, {}, bm25=(0.9, 0.4))["settings"]["similarity"]
    assert anserini == {"default": {"type": "BM25", "k1": 0.9, "b": 0.4}}


def sample_report() -> EvalReport:
    return EvalReport(
        dataset="scifact", engine="opensearch", queries=300, docs=5183,
        scores=[MethodScore("bm25", 0.66, 0.9, "engine"), MethodScore("sparse", 0.64, 0.88)],
        index=IndexInfo("eval-x", 5183, 12 * 1024 * 1024, 4.2, False, 1000),
        sparse_endpoint=".splade-tiny", dense_endpoint=".minilm-l6", dense_in_engine=False,
        doc_top_k=None, query_top_k=32, max_length=512, encode_seconds=0.0,
        sweep=[{"methods": ["bm25", "sparse"], "weights": [0.5, 0.5], "ndcg10": 0.7, "recall100": 0.93}],
    )


def test_report_table_json_and_chart(tmp_path: Path) -> None:
    report = sample_report()
    report.reference = SCIFACT
    report.warnings = ["qrels.tsv: 2 document ids are not in corpus.jsonl (a, b): 2 judgments ..."]
    console = Console(record=True, width=160)
    print_report(report, console)
    text = console.export_text()
    assert "bm25" in text and "0.6600" in text and "scifact (test) on opensearch" in text
    assert "published: BM25 multifield" in text and "0.6650" in text
    assert "12.0 MiB" in text and "brute force" in text and "weight sweep" in text
    assert "warning: qrels.tsv: 2 document ids are not in corpus.jsonl" in text
    write_json(report, tmp_path / "r.json")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["scores"][0]["ndcg10"] == 0.66 and saved["warnings"] == report.warnings
    assert saved["reference"]["check"] == {"method": "bm25 multifield", "ndcg10": 0.665, "tolerance": 0.02}
    write_chart(report, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_published_rows_only_when_asked_for() -> None:
    report = sample_report()  # named scifact, but no --reference
    console = Console(record=True, width=160)
    print_report(report, console)
    assert "published" not in console.export_text() and "harness check" not in console.export_text()


def test_harness_check_against_the_published_bm25() -> None:
    report = sample_report()
    report.reference = SCIFACT
    assert harness_check(report) is None  # no multifield BM25 row in this report
    report.scores.append(MethodScore("bm25 multifield", 0.6697, 0.904))
    ok, sentence = harness_check(report)  # type: ignore[misc]
    assert ok and "+0.0047" in sentence and "within ±0.02" in sentence
    report.scores[-1] = MethodScore("bm25 multifield", 0.6906, 0.919)
    ok, sentence = harness_check(report)  # type: ignore[misc]
    assert not ok and "OUTSIDE" in sentence
    report.reference = None  # the folder name alone attaches nothing
    assert harness_check(report) is None


def test_tradeoff_markdown_rows() -> None:
    report = sample_report()
    report.scores += [
        MethodScore("bm25+sparse minmax 0.5/0.5", 0.7, 0.93),
        MethodScore("bm25+sparse rrf", 0.69, 0.92),
    ]
    table = markdown([(None, 32, report), (64, None, report)])
    lines = table.splitlines()
    assert lines[0].startswith("| doc top-k | query top-k | index size (MiB)")
    assert lines[2] == "| none | 32 | 12.0 | 1,000 | 0.6400 | 0.8800 | 0.7000 | 0.6900 |"
    assert lines[3].startswith("| 64 | none |")
