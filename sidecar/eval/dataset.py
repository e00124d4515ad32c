"""Read a BEIR-layout folder: `corpus.jsonl`, `queries.jsonl` and `qrels.tsv` (or `qrels/test.tsv`).

Queries are kept only when the qrels judge them, as BEIR evaluates. Every problem is a
`ParseError` naming the file and line, or a `NotFoundError` for a missing file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidecar.errors import NotFoundError, ParseError


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
    qrels: dict[str, dict[str, int]]
    fingerprint: str = field(default="")  # changes when any of the three files changes


def _find(folder: Path, *names: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise NotFoundError(f"dataset [{folder}] has no {' or '.join(names)}")


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


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.rstrip("\r\n").split("\t")
            if not line.strip() or (number == 1 and parts[0] == "query-id"):
                continue
            if len(parts) != 3:
                raise ParseError(f"{path}:{number}: expected [query-id, corpus-id, score] separated by tabs")
            try:
                score = int(parts[2])
            except ValueError as exc:
                raise ParseError(f"{path}:{number}: score [{parts[2]}] is not an integer") from exc
            qrels.setdefault(parts[0], {})[parts[1]] = score
    return qrels


def load_dataset(folder: str | Path) -> Dataset:
    root = Path(folder)
    if not root.is_dir():
        raise NotFoundError(f"dataset folder [{root}] does not exist")
    paths = [
        _find(root, "corpus.jsonl"),
        _find(root, "queries.jsonl"),
        _find(root, "qrels.tsv", "qrels/test.tsv"),
    ]
    corpus, queries, qrels = load_corpus(paths[0]), load_queries(paths[1]), load_qrels(paths[2])
    unknown = sorted(q for q in qrels if q not in queries)
    if unknown:
        raise ParseError(f"{paths[2]}: query ids {unknown[:5]} are not in {paths[1].name}")
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return Dataset(
        name=root.resolve().name,
        corpus=corpus,
        queries={q: text for q, text in queries.items() if q in qrels},
        qrels=qrels,
        fingerprint=digest.hexdigest()[:16],
    )
