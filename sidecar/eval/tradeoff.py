"""Pruning trade-off: index size against nDCG@10 for document and query top-k pruning.

    python -m sidecar.eval.tradeoff --dataset DIR [--engine opensearch] [--sparse-endpoint ID]

Runs the evaluation (sparse and BM25 only) for every document top-k and query top-k pair and prints
a Markdown table; encodings come from the cache, so only indexing and querying are repeated.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path

from sidecar.eval.runner import EvalOptions, EvalReport, run_eval
from sidecar.pipelines.schema import Engine

DOC_TOP_KS: tuple[int | None, ...] = (None, 256, 128, 64)
QUERY_TOP_KS: tuple[int | None, ...] = (None, 32)


def _score(report: EvalReport, prefix: str) -> float:
    return next(s.ndcg10 for s in report.scores if s.name.startswith(prefix))


def markdown(rows: Sequence[tuple[int | None, int | None, EvalReport]]) -> str:
    lines = [
        "| doc top-k | query top-k | index size (MiB) | sparse postings | sparse nDCG@10 | sparse R@100 "
        "| BM25+sparse minmax nDCG@10 | BM25+sparse RRF nDCG@10 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for doc_k, query_k, report in rows:
        size = report.index.size_bytes
        sparse = next(s for s in report.scores if s.name == "sparse")
        cells = [
            str(doc_k or "none"),
            str(query_k or "none"),
            "?" if size is None else f"{size / 2**20:.1f}",
            f"{report.index.sparse_postings:,}",
            f"{sparse.ndcg10:.4f}",
            f"{sparse.recall100:.4f}",
            f"{_score(report, 'bm25+sparse minmax'):.4f}",
            f"{_score(report, 'bm25+sparse rrf'):.4f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def tradeoff(base: EvalOptions) -> list[tuple[int | None, int | None, EvalReport]]:
    rows = []
    for doc_k in DOC_TOP_KS:
        for query_k in QUERY_TOP_KS:
            options = dataclasses.replace(base, doc_top_k=doc_k, query_top_k=query_k, dense=False)
            rows.append((doc_k, query_k, await run_eval(options)))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--engine", choices=[e.value for e in Engine], default=Engine.OPENSEARCH.value)
    parser.add_argument("--sparse-endpoint", default=None)
    args = parser.parse_args(argv)
    base = EvalOptions(dataset=args.dataset, engine=Engine(args.engine), sparse_endpoint=args.sparse_endpoint)
    print(markdown(asyncio.run(tradeoff(base))))


if __name__ == "__main__":
    main()
