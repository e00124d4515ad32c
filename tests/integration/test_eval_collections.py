"""`sidecar eval` on collections that are not SciFact, against the real OpenSearch: a SMART-format
collection converted by `sidecar eval convert`, and a BEIR folder whose `dev` split has TREC qrels;
both judge ids that do not exist, which the run reports as warnings with counts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.eval.runner import EvalOptions, run_eval

pytestmark = pytest.mark.integration

# Six short documents on distinct subjects; each query names one subject in other words.
DOCS = """.I 1
.T
Boundary layer flow over a flat plate
.W
Measurements of the laminar boundary layer on a flat plate in supersonic wind tunnel flow.
.I 2
.T
Blood pressure in hypertension
.W
Treatment of high blood pressure with diuretics lowers the risk of stroke.
.I 3
.T
Compilers for algebraic languages
.W
A compiler translates an algebraic programming language into machine code.
.I 4
.T
Library catalogue indexing
.W
Subject indexing of library catalogues helps readers find books.
.I 5
.T
Heat transfer in turbine blades
.W
Cooling of turbine blades by internal heat transfer passages.
.I 6
.T
Bacterial infection and antibiotics
.W
Antibiotics such as penicillin treat bacterial infection.
"""
QUERIES = """.I 1
.W
laminar boundary layer on a plate in supersonic flow
.I 2
.W
diuretics for high blood pressure
.I 3
.W
compiler for an algebraic programming language
"""
# CISI-style `qid docid 0 0.000000` lines; query 9 and document 77 do not exist.
RELEVANCE = "1 1 0 0.000000\n2 2 0 0.000000\n3 3 0 0.000000\n3 77 0 0.000000\n9 4 0 0.000000\n"


@pytest.fixture
def dataset_name() -> Iterator[str]:
    name = f"coll{uuid.uuid4().hex[:6]}"
    yield name


@pytest.fixture
def cleanup(opensearch_url: str, dataset_name: str) -> Iterator[None]:
    yield
    listed = httpx.get(f"{opensearch_url}/_cat/indices/eval-{dataset_name}-*", params={"format": "json"},
                       timeout=30)
    for row in listed.json() if listed.is_success else []:
        httpx.delete(f"{opensearch_url}/{row['index']}", timeout=30)


async def test_converted_smart_collection(tmp_path: Path, opensearch_url: str, dataset_name: str,
                                          cleanup: None) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "DOCS.ALL").write_text(DOCS)
    (src / "QUERY.TXT").write_text(QUERIES)
    (src / "REL.TXT").write_text(RELEVANCE)
    out = tmp_path / dataset_name
    args = ["eval", "convert", "--format", "smart", "--docs", str(src / "DOCS.ALL"),
            "--queries", str(src / "QUERY.TXT"), "--qrels", str(src / "REL.TXT"), "--out", str(out)]
    converted = CliRunner().invoke(app, args)
    assert converted.exit_code == 0, converted.output

    report = await run_eval(EvalOptions(dataset=out, url=opensearch_url, dense=False,
                                        cache_dir=tmp_path / "cache", reindex=True))
    assert report.docs == 6 and report.queries == 3 and report.index.docs == 6
    assert report.warnings == [
        "qrels/test.tsv: 1 query ids are not in queries.jsonl (9): their 1 judgments are ignored",
        "qrels/test.tsv: 1 document ids are not in corpus.jsonl (77): 1 judgments no method can retrieve "
        "(kept, as standard tools count them: recall stays below 1)",
    ]
    scores = {s.name: s for s in report.scores}
    # Every query's document ranks first for BM25; query 3's missing document caps its recall at 1/2.
    assert scores["bm25"].recall100 == pytest.approx((1 + 1 + 0.5) / 3)
    assert scores["bm25"].ndcg10 > 0.85 and report.reference is None


def test_trec_qrels_in_a_named_split_through_the_command(
    tmp_path: Path, opensearch_url: str, dataset_name: str, cleanup: None
) -> None:
    folder = tmp_path / dataset_name
    (folder / "qrels").mkdir(parents=True)
    docs = [{"_id": "a", "title": "Penicillin", "text": "Antibiotics treat bacterial infection."},
            {"_id": "b", "title": "Turbines", "text": "Cooling of turbine blades by heat transfer."}]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": "q1", "text": "antibiotics against infection"}, {"_id": "q2", "text": "turbine cooling"}]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ta\t1\n")
    (folder / "qrels" / "dev.tsv").write_text("q1 0 a 1.0\nq2 0 b 2\nq2 0 zz 1\n")  # TREC, float grade
    out = tmp_path / "results"
    # A plain test: the command runs its own event loop.
    args = ["eval", "--dataset", str(folder), "--split", "dev", "--no-dense", "--url", opensearch_url,
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--reindex"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 document ids are not in corpus.jsonl (zz)" in result.output
    assert "published:" not in result.output and "harness check" not in result.output  # no --reference
    (saved,) = out.glob(f"{dataset_name}-dev-opensearch-*.json")
    report = json.loads(saved.read_text())
    assert report["split"] == "dev" and report["queries"] == 2 and len(report["warnings"]) == 1
