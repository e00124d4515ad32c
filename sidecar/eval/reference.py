"""Published numbers shown beside an evaluation, only when asked for (`--reference`).

A reference is a built-in name (`scifact`) or a JSON file of the same shape:

    {"name": "nfcorpus",
     "published": [{"system": "BM25 (BEIR paper)", "ndcg10": 0.325, "recall100": 0.25}],
     "check": {"method": "bm25 multifield", "ndcg10": 0.325, "tolerance": 0.02}}

`check` (optional) names the run that must land within `tolerance` of a published nDCG@10: the
harness check that validates data, engine set-up and metrics before any model is judged.
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as strict_dataclass

from sidecar.errors import NotFoundError, ParseError
from sidecar.eval.retrieval import BM25_MULTIFIELD

_STRICT = ConfigDict(extra="forbid")


@strict_dataclass(frozen=True, config=_STRICT)
class Published:
    system: str
    ndcg10: float
    recall100: float | None = None


@strict_dataclass(frozen=True, config=_STRICT)
class Check:
    method: str
    ndcg10: float
    tolerance: float


@strict_dataclass(frozen=True, config=_STRICT)
class Reference:
    name: str
    published: list[Published] = field(default_factory=list)
    check: Check | None = None


# From datasets/scifact/README.md and the sources it names (BEIR paper, Anserini, MTEB).
SCIFACT = Reference(
    name="scifact",
    published=[
        Published("BM25 multifield, Elasticsearch (BEIR paper)", 0.665, 0.908),
        Published("BM25 flat (Anserini)", 0.6789, 0.9253),
        Published("SPLADE++ CoCondenser-EnsembleDistil", 0.7041, 0.9353),
        Published("SPLADE-v3", 0.7140, 0.9360),
        Published("Elastic ELSER v2", 0.718, 0.949),
        Published("OpenSearch neural-sparse doc-v2-mini", 0.699),
        Published("all-MiniLM-L6-v2 (MTEB)", 0.645),
    ],
    check=Check(BM25_MULTIFIELD, 0.665, 0.02),
)
BUILTIN: dict[str, Reference] = {SCIFACT.name: SCIFACT}


_ADAPTER: TypeAdapter[Reference] = TypeAdapter(Reference)


def load_reference(spec: str) -> Reference:
    """A built-in reference by name, else a JSON file."""
    if spec.lower() in BUILTIN:
        return BUILTIN[spec.lower()]
    path = Path(spec)
    if not path.is_file():
        raise NotFoundError(f"reference [{spec}] is neither a built-in ({', '.join(BUILTIN)}) nor a file")
    try:
        return _ADAPTER.validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise ParseError(f"{path}: [{where}] {first['msg']}") from exc
