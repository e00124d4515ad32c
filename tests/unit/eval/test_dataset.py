"""The BEIR-layout loader, on small files written here and on the SciFact copy in datasets/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sidecar.errors import NotFoundError, ParseError
from sidecar.eval.dataset import load_dataset

SCIFACT = Path(__file__).resolve().parents[3] / "datasets" / "scifact"


Rows = list[dict[str, object]]


def write(folder: Path, corpus: Rows, queries: Rows, qrels: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (folder / "qrels.tsv").write_text(qrels)
    return folder


def test_small_dataset(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "tiny",
        [{"_id": "d1", "title": "T", "text": "one"}, {"_id": 2, "text": "two"}],
        [{"_id": "q1", "text": "first"}, {"_id": "q2", "text": "unjudged"}],
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\t2\t0\n",
    )
    data = load_dataset(folder)
    assert data.name == "tiny"
    assert data.corpus["2"].title == "" and data.corpus["d1"].text == "one"
    assert data.queries == {"q1": "first"}  # only judged queries are evaluated
    assert data.qrels == {"q1": {"d1": 1, "2": 0}}
    assert len(data.fingerprint) == 16


def test_qrels_in_the_beir_subfolder(tmp_path: Path) -> None:
    folder = write(tmp_path / "x", [{"_id": "d", "text": "t"}], [{"_id": "q", "text": "t"}], "")
    (folder / "qrels.tsv").unlink()
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\td\t2\n")
    assert load_dataset(folder).qrels == {"q": {"d": 2}}


@pytest.mark.parametrize(
    ("corpus_line", "qrels", "message"),
    [
        ("{not json", "", "corpus.jsonl:2: invalid JSON"),
        ('{"title": "no id"}', "", "corpus.jsonl:2: expected an object"),
        ('{"_id": "d2", "text": 5}', "", r"corpus.jsonl:2: \[text\] must be a string"),
        ('{"_id": "d2", "text": "ok"}', "q\td\n", "qrels.tsv:1: expected"),
        ('{"_id": "d2", "text": "ok"}', "q\td\tone\n", "score \\[one\\] is not an integer"),
        ('{"_id": "d2", "text": "ok"}', "nope\td\t1\n", "query ids \\['nope'\\]"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, corpus_line: str, qrels: str, message: str) -> None:
    folder = write(tmp_path / "bad", [{"_id": "d", "text": "t"}], [{"_id": "q", "text": "t"}], qrels)
    with (folder / "corpus.jsonl").open("a") as f:
        f.write(corpus_line + "\n")
    with pytest.raises(ParseError, match=message):
        load_dataset(folder)


def test_missing_folder_or_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        load_dataset(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match=r"corpus\.jsonl"):
        load_dataset(tmp_path / "empty")


def test_scifact_counts() -> None:
    data = load_dataset(SCIFACT)
    assert len(data.corpus) == 5183
    assert len(data.queries) == 300
    assert sum(len(j) for j in data.qrels.values()) == 339
