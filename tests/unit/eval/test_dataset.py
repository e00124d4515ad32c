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
        ('{"_id": "d2", "text": "ok"}', "q\td\t1\nq\td2\t0.5\n", "qrels.tsv:2: score \\[0.5\\] is not an integer"),
        ('{"_id": "d2", "text": "ok"}', "q 0 d 1 extra\n", "qrels.tsv:1: expected .* got 5 columns"),
        ('{"_id": "d2", "text": "ok"}', "nope\td\t1\n", "no judgment names a query of queries.jsonl"),
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


def beir_with_splits(folder: Path) -> Path:
    write(folder, [{"_id": "d1", "text": "a"}, {"_id": "d2", "text": "b"}],
          [{"_id": "q1", "text": "x"}, {"_id": "q2", "text": "y"}], "")
    (folder / "qrels.tsv").unlink()
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq2\td2\t2\n")
    return folder


def test_split_chooses_the_qrels_file(tmp_path: Path) -> None:
    folder = beir_with_splits(tmp_path / "splits")
    assert load_dataset(folder).qrels == {"q1": {"d1": 1}}  # test by default
    dev = load_dataset(folder, split="dev")
    assert dev.qrels == {"q2": {"d2": 2}} and dev.queries == {"q2": "y"}
    assert dev.fingerprint != load_dataset(folder).fingerprint
    with pytest.raises(NotFoundError, match=r"no split \[train\]: qrels/ holds \['dev', 'test'\]"):
        load_dataset(folder, split="train")
    with pytest.raises(ParseError, match="must be a plain name"):
        load_dataset(folder, split="../test")


def test_flat_qrels_file_serves_any_split(tmp_path: Path) -> None:
    folder = write(tmp_path / "flat", [{"_id": "d", "text": "t"}], [{"_id": "q", "text": "t"}], "q\td\t1\n")
    assert load_dataset(folder, split="dev").qrels == {"q": {"d": 1}}


@pytest.mark.parametrize(
    "qrels",
    [
        "q1 0 d1 1\nq1 0 d2 0\nq2 0 d2 2\n",  # TREC: qid iteration docid relevance, spaces
        "q1\t0\td1\t1\nq1\t0\td2\t0\nq2\t0\td2\t2\n",  # TREC with tabs
        "query_id\tdoc_id\trelevance\nq1\td1\t1.0\nq1\td2\t0\nq2\td2\t2.0\n",  # another header, float grades
        "qid Q0 docno rel\nq1 Q0 d1 1\nq1 Q0 d2 0\nq2 Q0 d2 2\n",  # a TREC header
        "\nquery-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq1\td2\t0\r\nq2\td2\t2\r\n",  # blank first line, CRLF
    ],
)
def test_qrels_formats_and_headers_by_content(tmp_path: Path, qrels: str) -> None:
    folder = write(tmp_path / "f", [{"_id": "d1", "text": "a"}, {"_id": "d2", "text": "b"}],
                   [{"_id": "q1", "text": "x"}, {"_id": "q2", "text": "y"}], qrels)
    data = load_dataset(folder)
    assert data.qrels == {"q1": {"d1": 1, "d2": 0}, "q2": {"d2": 2}}
    assert data.warnings == []


def test_a_bad_first_line_is_an_error_not_a_header(tmp_path: Path) -> None:
    folder = write(tmp_path / "f", [{"_id": "d", "text": "t"}], [{"_id": "q", "text": "t"}], "q\td\tyes\n")
    with pytest.raises(ParseError, match=r"qrels.tsv:1: score \[yes\] is not an integer"):
        load_dataset(folder)


def test_unknown_ids_are_warned_with_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    qrels = "q1\td1\t1\nq1\tgone1\t1\nq1\tgone2\t1\nq2\tgone1\t1\nq9\td1\t1\nq8\td1\t1\nq8\td2\t1\n"
    folder = write(tmp_path / "w", [{"_id": "d1", "text": "a"}, {"_id": "d2", "text": "b"}],
                   [{"_id": "q1", "text": "x"}, {"_id": "q2", "text": "y"}], qrels)
    with caplog.at_level("WARNING", logger="sidecar.eval.dataset"):
        data = load_dataset(folder)
    # Unknown queries are dropped; judgments of unknown documents are kept (recall counts them).
    assert data.qrels == {"q1": {"d1": 1, "gone1": 1, "gone2": 1}, "q2": {"gone1": 1}}
    assert data.queries == {"q1": "x", "q2": "y"}
    assert data.warnings == [
        "qrels.tsv: 2 query ids are not in queries.jsonl (q8, q9): their 3 judgments are ignored",
        "qrels.tsv: 2 document ids are not in corpus.jsonl (gone1, gone2): 3 judgments no method can "
        "retrieve (kept, as standard tools count them: recall stays below 1)",
    ]
    assert [r.getMessage() for r in caplog.records] == [f"dataset [w]: {w}" for w in data.warnings]


def test_long_lists_of_unknown_ids_are_cut(tmp_path: Path) -> None:
    qrels = "".join(f"q\tx{n}\t1\n" for n in range(8))
    folder = write(tmp_path / "w", [{"_id": "d", "text": "t"}], [{"_id": "q", "text": "t"}], qrels)
    (warning,) = load_dataset(folder).warnings
    assert warning.startswith("qrels.tsv: 8 document ids are not in corpus.jsonl (x0, x1, x2, x3, x4 and 3 more)")
