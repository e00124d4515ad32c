"""Read a BEIR-layout folder: `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv` (or one flat
`qrels.tsv` where the folder has no `qrels/` subfolder).

Qrels lines are BEIR's `query-id corpus-id score` or TREC's `qid iteration docid relevance`, told
apart by their number of columns (tabs, else any whitespace); a first line naming its columns is a
header and skipped; scores are integers (`1.0` counts as 1). Queries are kept only when the qrels
judge them, as BEIR evaluates. Judgments naming queries absent from `queries.jsonl` are dropped;
judgments naming documents absent from the corpus are kept (standard tools count them too, so
recall cannot reach 1); both are reported as warnings with counts. Every problem is a `ParseError`
naming the file and line, or a `NotFoundError` for a missing file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidecar.errors import NotFoundError, ParseError

log = logging.getLogger(__name__)

DEFAULT_SPLIT = "test"
# A header's first column names the query id (`query-id`, `query_id`, `qid`, `topic`...) or its
# last names the grade: a real qrels line has a number there.
_HEADER_FIRST = re.compile(r"^(query[-_ ]?id|qid|topic([-_ ]?id)?|query)$", re.IGNORECASE)
_HEADER_LAST = re.compile(r"^(score|rel|relevance|label|grade|judg(e)?ment)$", re.IGNORECASE)
_EXAMPLES = 5
_SPLIT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")

Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str


@dataclass
class Dataset:
    name: str
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: Qrels
    fingerprint: str = field(default="")  # changes when any of the three files changes
    warnings: list[str] = field(default_factory=list)  # problems the evaluation survives


def _find(folder: Path, *names: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise NotFoundError(f"dataset [{folder}] has no {' or '.join(names)}")


def check_split(split: str) -> str:
    """A split names a file in `qrels/`: a plain name, never a path."""
    if not _SPLIT.match(split):
        raise ParseError(f"split [{split}] must be a plain name (letters, digits, '-', '_', '.')")
    return split


def qrels_path(folder: Path, split: str = DEFAULT_SPLIT) -> Path:
    """`qrels/<split>.tsv`; a folder without `qrels/` may hold one flat `qrels.tsv` instead."""
    check_split(split)
    sub = folder / "qrels"
    if sub.is_dir():
        if (sub / f"{split}.tsv").is_file():
            return sub / f"{split}.tsv"
        found = sorted(p.stem for p in sub.glob("*.tsv"))
        raise NotFoundError(f"dataset [{folder}] has no split [{split}]: qrels/ holds {found or 'nothing'}")
    return _find(folder, "qrels.tsv", f"qrels/{split}.tsv")


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ParseError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
            if not isinstance(row, dict) or not isinstance(row.get("_id"), str | int):
                raise ParseError(f"{path}:{number}: expected an object with an [_id]")
            rows.append((number, row))
    return rows


def _text(path: Path, number: int, row: dict[str, Any], key: str, required: bool) -> str:
    value = row.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ParseError(f"{path}:{number}: [{key}] must be a string")
    return value


def load_corpus(path: Path) -> dict[str, Document]:
    corpus: dict[str, Document] = {}
    for number, row in _jsonl(path):
        doc_id = str(row["_id"])
        corpus[doc_id] = Document(
            doc_id, _text(path, number, row, "title", False), _text(path, number, row, "text", True)
        )
    return corpus


def load_queries(path: Path) -> dict[str, str]:
    return {str(row["_id"]): _text(path, number, row, "text", True) for number, row in _jsonl(path)}


def _is_header(parts: list[str]) -> bool:
    return bool(_HEADER_FIRST.match(parts[0]) or _HEADER_LAST.match(parts[-1]))


def integer_score(path: Path, number: int, raw: str) -> int:
    """A relevance grade: an integer, or a float with an integer value (`1.0`)."""
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value.is_integer():
        raise ParseError(f"{path}:{number}: score [{raw}] is not an integer")
    return int(value)


def load_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    seen_line = False
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
            if not line.strip():
                continue
            first, seen_line = not seen_line, True
            if first and _is_header(parts):
                continue
            if len(parts) == 3:  # BEIR: query-id, corpus-id, score
                qid, doc_id, raw = parts
            elif len(parts) == 4:  # TREC: qid, iteration (unused), docid, relevance
                qid, _, doc_id, raw = parts
            else:
                raise ParseError(f"{path}:{number}: expected [query-id, corpus-id, score] (BEIR, tab-separated) "
                                 f"or [qid, iteration, docid, relevance] (TREC), got {len(parts)} columns")
            qrels.setdefault(qid, {})[doc_id] = integer_score(path, number, raw)
    return qrels


def _examples(ids: list[str]) -> str:
    more = f" and {len(ids) - _EXAMPLES} more" if len(ids) > _EXAMPLES else ""
    return ", ".join(ids[:_EXAMPLES]) + more


def check_qrels(qrels: Qrels, queries: dict[str, str], corpus: dict[str, Document],
                names: tuple[str, str, str]) -> tuple[Qrels, list[str]]:
    """Drop judgments of unknown queries; keep those of unknown documents. Warnings with counts.
    `names`: the qrels, queries and corpus file names, for the messages."""
    warnings = []
    unknown_q = sorted(q for q in qrels if q not in queries)
    if unknown_q:
        dropped = sum(len(qrels[q]) for q in unknown_q)
        warnings.append(f"{names[0]}: {len(unknown_q)} query ids are not in {names[1]} "
                        f"({_examples(unknown_q)}): their {dropped} judgments are ignored")
    kept = {q: judged for q, judged in qrels.items() if q in queries}
    unknown_d = sorted({d for judged in kept.values() for d in judged if d not in corpus})
    if unknown_d:
        count = sum(1 for judged in kept.values() for d in judged if d not in corpus)
        warnings.append(f"{names[0]}: {len(unknown_d)} document ids are not in {names[2]} "
                        f"({_examples(unknown_d)}): {count} judgments no method can retrieve "
                        "(kept, as standard tools count them: recall stays below 1)")
    return kept, warnings


def load_dataset(folder: str | Path, split: str = DEFAULT_SPLIT) -> Dataset:
    root = Path(folder)
    if not root.is_dir():
        raise NotFoundError(f"dataset folder [{root}] does not exist")
    paths = [_find(root, "corpus.jsonl"), _find(root, "queries.jsonl"), qrels_path(root, split)]
    corpus, queries, raw_qrels = load_corpus(paths[0]), load_queries(paths[1]), load_qrels(paths[2])
    names = (paths[2].relative_to(root).as_posix(), paths[1].name, paths[0].name)
    qrels, warnings = check_qrels(raw_qrels, queries, corpus, names)
    if not qrels:
        raise ParseError(f"{paths[2]}: no judgment names a query of {paths[1].name}")
    for warning in warnings:
        log.warning("dataset [%s]: %s", root.name, warning)
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return Dataset(
        name=root.resolve().name,
        corpus=corpus,
        queries={q: text for q, text in queries.items() if q in qrels},
        qrels=qrels,
        fingerprint=digest.hexdigest()[:16],
        warnings=warnings,
    )
