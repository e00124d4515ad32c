"""`--reference`: the built-in SciFact rows or a JSON file; bad files are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sidecar.errors import NotFoundError, ParseError
from sidecar.eval.reference import SCIFACT, Check, Published, Reference, load_reference


def test_built_in_by_name_any_case() -> None:
    assert load_reference("scifact") is SCIFACT and load_reference("SciFact") is SCIFACT
    assert SCIFACT.check == Check("bm25 multifield", 0.665, 0.02)
    assert Published("SPLADE++ CoCondenser-EnsembleDistil", 0.7041, 0.9353) in SCIFACT.published


def test_a_file(tmp_path: Path) -> None:
    path = tmp_path / "nf.json"
    path.write_text(json.dumps({"name": "nfcorpus", "published": [{"system": "BM25", "ndcg10": 0.325}]}))
    assert load_reference(str(path)) == Reference("nfcorpus", [Published("BM25", 0.325, None)], None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"name": "x", "published": [{"system": "a", "ndcg10": "high"}]}', r"\[published.0.ndcg10\]"),
        ('{"name": "x", "check": {"method": "bm25", "ndcg10": 0.5}}', r"\[check.tolerance\] Field required"),
        ('{"name": "x", "extra": 1}', r"\[extra\] Unexpected keyword argument"),
        ("[1, 2", r"Invalid JSON"),
    ],
)
def test_bad_files(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(body)
    with pytest.raises(ParseError, match=rf"r.json: .*{message}"):
        load_reference(str(path))


def test_neither_name_nor_file() -> None:
    with pytest.raises(NotFoundError, match=r"reference \[nfcorpus\] is neither a built-in \(scifact\) nor a file"):
        load_reference("nfcorpus")
