"""`sidecar eval convert --format smart`: a tiny SMART collection written here, converted by the
command, then read by the evaluation's own dataset loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.errors import NotFoundError, ParseError
from sidecar.eval.convert import QueryIds, convert_smart, read_smart
from sidecar.eval.dataset import load_dataset

# Three documents as the classic collections write them: `.T` title, `.A` authors, `.W` abstract
# over several lines, `.B`/`.X` bibliographic and citation fields that the conversion drops.
DOCS = """.I 1
.T
Preliminary Report-International Algebraic Language
.B
CACM December, 1958
.A
Perlis, A. J.
.I 2
.T
Extraction of Roots by Repeated Subtractions for Digital Computers
.W
A method of extracting roots
by repeated subtraction.
.B
CACM December, 1958
.X
2\t5\t2
.I 003
.T Techniques Department on Matrix Program Schemes
.W
Matrix schemes for
  digital computers.
"""

# CRAN-style query ids: `.I 001`, numbers that skip (`004`); the relevance file counts 1, 2, 3.
QUERIES = """.I 001
.W
roots by subtraction
.I 002
.T
matrix
.W
program schemes
.I 004
.W
algebraic language
"""


def write_collection(folder: Path, relevance: str, docs: str = DOCS, queries: str = QUERIES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "DOCS.ALL").write_text(docs)
    (folder / "QUERY.TEXT").write_text(queries)
    (folder / "qrels.text").write_text(relevance)
    return folder


def run_convert(src: Path, out: Path, *extra: str) -> tuple[int, str]:
    args = ["eval", "convert", "--format", "smart", "--docs", str(src / "DOCS.ALL"),
            "--queries", str(src / "QUERY.TEXT"), "--qrels", str(src / "qrels.text"), "--out", str(out), *extra]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_smart_collection_converted_then_loaded(tmp_path: Path) -> None:
    # CACM's and CISI's relevance lines: `qid docid 0 0` (the trailing columns mean nothing).
    src = write_collection(tmp_path / "src", "01 2  0 0\n02 3  0 0.000000\n4 1 0 0\n")
    code, output = run_convert(src, tmp_path / "cacm")
    assert code == 0, output
    assert "3 documents, 3 queries, 3 judgments (qrels/test.tsv)" in output
    assert "sidecar eval --dataset" in output

    corpus = [json.loads(line) for line in (tmp_path / "cacm" / "corpus.jsonl").read_text().splitlines()]
    assert corpus[0] == {"_id": "1", "title": "Preliminary Report-International Algebraic Language", "text": ""}
    assert corpus[1]["text"] == "A method of extracting roots by repeated subtraction."
    assert corpus[2] == {"_id": "3", "title": "Techniques Department on Matrix Program Schemes",
                         "text": "Matrix schemes for digital computers."}

    data = load_dataset(tmp_path / "cacm")
    assert data.name == "cacm" and len(data.corpus) == 3
    assert data.queries == {"1": "roots by subtraction", "2": "matrix program schemes", "4": "algebraic language"}
    assert data.qrels == {"1": {"2": 1}, "2": {"3": 1}, "4": {"1": 1}}
    assert data.warnings == []


def test_trec_relevance_and_positional_query_ids(tmp_path: Path) -> None:
    # MED's shape `qid 0 docid rel`; CRAN's relevance file numbers queries by position.
    src = write_collection(tmp_path / "src", "1 0 2 1\n2 0 3 2\n2 0 1 0\n3 0 1 1\n")
    code, output = run_convert(src, tmp_path / "cran", "--query-ids", "position", "--split", "dev")
    assert code == 0, output
    assert (tmp_path / "cran" / "qrels" / "dev.tsv").read_text().startswith("query-id\tcorpus-id\tscore\n")
    data = load_dataset(tmp_path / "cran", split="dev")
    assert data.queries == {"1": "roots by subtraction", "2": "matrix program schemes", "3": "algebraic language"}
    assert data.qrels == {"1": {"2": 1}, "2": {"3": 2, "1": 0}, "3": {"1": 1}}


def test_relevance_naming_unknown_ids_is_converted_then_warned(tmp_path: Path) -> None:
    src = write_collection(tmp_path / "src", "1 2\n1 99\n7 1\n")
    assert run_convert(src, tmp_path / "out")[0] == 0
    data = load_dataset(tmp_path / "out")
    assert data.qrels == {"1": {"2": 1, "99": 1}}
    assert data.warnings == [
        "qrels/test.tsv: 1 query ids are not in queries.jsonl (7): their 1 judgments are ignored",
        "qrels/test.tsv: 1 document ids are not in corpus.jsonl (99): 1 judgments no method can retrieve "
        "(kept, as standard tools count them: recall stays below 1)",
    ]


def test_latin1_files_are_read(tmp_path: Path) -> None:
    src = write_collection(tmp_path / "src", "1 1\n")
    (src / "DOCS.ALL").write_bytes(".I 1\n.T\nR\xe9sum\xe9 of Fourier\n".encode("latin-1"))
    convert_smart(src / "DOCS.ALL", src / "QUERY.TEXT", src / "qrels.text", tmp_path / "out")
    assert load_dataset(tmp_path / "out").corpus["1"].title == "Résumé of Fourier"


@pytest.mark.parametrize(
    ("docs", "message"),
    [
        ("stray text\n.I 1\n.W\nx\n", r"DOCS.ALL:1: text outside a field"),
        (".W\nx\n", r"DOCS.ALL:1: \[.W\] before the first \[.I\]"),
        (".I 1\n.W\nx\n.I\n.W\ny\n", r"DOCS.ALL:4: \[.I\] needs an id"),
        (".I 1\n.W\nx\n.I 01\n.W\ny\n", r"DOCS.ALL:4: id \[1\] appears twice"),
        ("", r"DOCS.ALL: no \[.I\] record"),
    ],
)
def test_bad_smart_files_name_file_and_line(tmp_path: Path, docs: str, message: str) -> None:
    src = write_collection(tmp_path / "src", "1 1\n", docs=docs)
    with pytest.raises(ParseError, match=message):
        convert_smart(src / "DOCS.ALL", src / "QUERY.TEXT", src / "qrels.text", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_bad_relevance_lines(tmp_path: Path) -> None:
    src = write_collection(tmp_path / "src", "1 2\n5\n")
    with pytest.raises(ParseError, match=r"qrels.text:2: expected \[qid docid\] or \[qid 0 docid relevance\]"):
        convert_smart(src / "DOCS.ALL", src / "QUERY.TEXT", src / "qrels.text", tmp_path / "out")
    (src / "qrels.text").write_text("1 0 2 0.5\n")
    with pytest.raises(ParseError, match=r"qrels.text:1: score \[0.5\] is not an integer"):
        convert_smart(src / "DOCS.ALL", src / "QUERY.TEXT", src / "qrels.text", tmp_path / "out")


def test_command_errors(tmp_path: Path) -> None:
    src = write_collection(tmp_path / "src", "1 1\n")
    code, output = run_convert(src, tmp_path / "out", "--format", "trec")
    assert code == 2 and "the only format is smart" in output
    code, output = run_convert(src, tmp_path / "out", "--query-ids", "order")
    assert code == 2 and "use field or position" in output
    (src / "QUERY.TEXT").unlink()
    code, output = run_convert(src, tmp_path / "out")
    assert code == 1 and "resource_not_found_exception: cannot read" in output and "QUERY.TEXT" in output
    with pytest.raises(NotFoundError):
        list(read_smart(src / "QUERY.TEXT"))


def test_query_ids_from_the_field_keep_non_numeric_ids(tmp_path: Path) -> None:
    src = write_collection(tmp_path / "src", "A1 1\n", queries=".I A1\n.W\nfirst\n")
    convert_smart(src / "DOCS.ALL", src / "QUERY.TEXT", src / "qrels.text", tmp_path / "o", query_ids=QueryIds.FIELD)
    assert load_dataset(tmp_path / "o").queries == {"A1": "first"}
