"""Turn a classic SMART-format test collection (CACM, CISI, CRAN, MED, ...) into the BEIR layout
that `sidecar eval` reads (`sidecar eval convert --format smart`).

SMART files are records that start at `.I <id>`; each following `.<letter>` line opens a field whose
text runs to the next marker. Documents: `.T` is the title, `.W` the text; other fields (`.A`
authors, `.B` bibliography, `.X` citations, ...) are dropped. Queries: `.T` and `.W` together are
the text. Relevance lines are TREC's `qid 0 docid relevance` (four columns, the second `0`) or
`qid docid` pairs, where later columns (CISI's and CACM's `0 0.000000`) are ignored and every pair
counts as relevant (score 1). Numeric ids lose leading zeros on every side (CRAN's queries are
`.I 001`, its relevance file says `1`). Files are read as UTF-8, else Latin-1 (older collections).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sidecar.errors import NotFoundError, ParseError
from sidecar.eval.dataset import check_split, integer_score

_MARKER = re.compile(r"^\.([A-Z])(?:\s+(.*?))?\s*$")
QRELS_HEADER = "query-id\tcorpus-id\tscore\n"


class QueryIds(StrEnum):
    """Where a query's id comes from: its `.I` line, or its position in the file (1, 2, ...), as
    collections whose `.I` numbers skip values but whose relevance file counts queries (CRAN)."""

    FIELD = "field"
    POSITION = "position"


@dataclass(frozen=True)
class Record:
    record_id: str
    fields: dict[str, str]  # marker letter -> text (whitespace collapsed)


@dataclass(frozen=True)
class Converted:
    docs: int
    queries: int
    judgments: int
    qrels: Path


def normalise_id(raw: str) -> str:
    return str(int(raw)) if raw.isdigit() else raw


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NotFoundError(f"cannot read [{path}]: {exc.strerror}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # every byte decodes: the classic collections predate UTF-8


def read_smart(path: Path) -> Iterator[Record]:
    """Records in file order; a problem is a ParseError naming the file and line."""
    record_id: str | None = None
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    seen: set[str] = set()

    def finish() -> Record | None:
        if record_id is None:
            return None
        return Record(record_id, {k: " ".join(" ".join(v).split()) for k, v in fields.items()})

    for number, line in enumerate(read_text(path).splitlines(), start=1):
        marker = _MARKER.match(line)
        if marker and marker.group(1) == "I":
            done = finish()
            if done is not None:
                yield done
            raw = (marker.group(2) or "").strip()
            if not raw:
                raise ParseError(f"{path}:{number}: [.I] needs an id")
            record_id = normalise_id(raw)
            if record_id in seen:
                raise ParseError(f"{path}:{number}: id [{record_id}] appears twice")
            seen.add(record_id)
            fields, current = {}, None
        elif marker:
            if record_id is None:
                raise ParseError(f"{path}:{number}: [.{marker.group(1)}] before the first [.I]")
            current = fields.setdefault(marker.group(1), [])
            if marker.group(2):
                current.append(marker.group(2))
        elif line.strip():
            if current is None:
                raise ParseError(f"{path}:{number}: text outside a field (expected .I, .T, .W, ...)")
            current.append(line)
    done = finish()
    if done is not None:
        yield done


def _query_text(record: Record) -> str:
    return " ".join(part for part in (record.fields.get("T", ""), record.fields.get("W", "")) if part)


def read_relevance(path: Path) -> list[tuple[str, str, int]]:
    """(query id, doc id, score) per line: TREC `qid 0 docid rel`, else `qid docid [ignored...]`."""
    judgments = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 4 and parts[1] == "0":
            qid, doc_id, score = parts[0], parts[2], integer_score(path, number, parts[3])
        elif len(parts) >= 2:
            qid, doc_id, score = parts[0], parts[1], 1
        else:
            raise ParseError(f"{path}:{number}: expected [qid docid] or [qid 0 docid relevance]")
        judgments.append((normalise_id(qid), normalise_id(doc_id), score))
    return judgments


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def convert_smart(
    docs: Path, queries: Path, relevance: Path, out: Path, *, split: str = "test",
    query_ids: QueryIds = QueryIds.FIELD,
) -> Converted:
    """Write `out/corpus.jsonl`, `out/queries.jsonl` and `out/qrels/<split>.tsv`."""
    check_split(split)
    corpus = [{"_id": r.record_id, "title": r.fields.get("T", ""), "text": r.fields.get("W", "")}
              for r in read_smart(docs)]
    topics = [{"_id": str(n) if query_ids is QueryIds.POSITION else r.record_id, "text": _query_text(r)}
              for n, r in enumerate(read_smart(queries), start=1)]
    judgments = read_relevance(relevance)
    if not corpus:
        raise ParseError(f"{docs}: no [.I] record")
    if not topics:
        raise ParseError(f"{queries}: no [.I] record")
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "corpus.jsonl", corpus)
    _write_jsonl(out / "queries.jsonl", topics)
    qrels = out / "qrels" / f"{split}.tsv"
    qrels.write_text(QRELS_HEADER + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in judgments), encoding="utf-8")
    return Converted(len(corpus), len(topics), len(judgments), qrels)
