"""`sidecar eval` (run an evaluation) and `sidecar eval convert` (bring a collection into the BEIR
layout). Imports stay lazy so `sidecar --help` loads no torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

eval_app = typer.Typer(no_args_is_help=True, add_completion=False)


@eval_app.callback(invoke_without_command=True)
def run(
    ctx: typer.Context,
    dataset: Annotated[Path | None, typer.Option(
        help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (or one flat qrels.tsv).")] = None,
    split: Annotated[str, typer.Option(help="Judgments to score: qrels/<split>.tsv.")] = "test",
    reference: Annotated[str | None, typer.Option(
        help="Published numbers to show beside ours: `scifact` or a JSON file (docs/quality.md).")] = None,
    pipeline: Annotated[Path | None, typer.Option(help="Take endpoints, pruning, chunking from it.")] = None,
    sparse_endpoint: Annotated[str | None, typer.Option(help="Sparse endpoint (.splade-tiny).")] = None,
    dense_endpoint: Annotated[str | None, typer.Option(help="Dense endpoint (.minilm-l6).")] = None,
    engine: Annotated[str, typer.Option(help="opensearch or elasticsearch (local stack).")] = "opensearch",
    url: Annotated[str | None, typer.Option(help="Engine URL (default from SIDECAR_*_URL).")] = None,
    doc_top_k: Annotated[int | None, typer.Option(help="Sparse terms kept per document.")] = None,
    query_top_k: Annotated[int, typer.Option(help="Sparse terms kept per query (0: all).")] = 32,
    max_length: Annotated[int | None, typer.Option(help="Model input length in tokens.")] = None,
    bm25: Annotated[str | None, typer.Option(help="BM25 `k1,b` (default: the engine's 1.2,0.75).")] = None,
    dense: Annotated[bool, typer.Option(help="Also evaluate the dense endpoint.")] = True,
    sweep: Annotated[bool, typer.Option(help="Also sweep min-max fusion weights.")] = False,
    reindex: Annotated[bool, typer.Option(help="Rebuild the index even when it matches.")] = False,
    cache_dir: Annotated[Path, typer.Option(help="Folder for cached encodings.")] = Path(".cache/eval"),
    out: Annotated[Path, typer.Option(help="Folder for the JSON results and the chart.")] = Path(
        ".cache/eval/results"
    ),
    config: Annotated[Path | None, typer.Option(
        help="Settings file: YAML mapping or .env lines (flags > environment > file).")] = None,
) -> None:
    """Index a BEIR dataset into the local engine; nDCG@10 and Recall@100 per method."""
    if ctx.invoked_subcommand is not None:
        return
    if dataset is None:
        raise typer.BadParameter("missing: the BEIR folder to evaluate", param_hint="'--dataset'")
    from sidecar.errors import SidecarError
    from sidecar.eval.command import eval_command, print_error
    from sidecar.eval.reference import load_reference
    from sidecar.eval.runner import EvalOptions
    from sidecar.pipelines.schema import Engine

    try:
        chosen = Engine(engine)
    except ValueError:
        raise typer.BadParameter("use opensearch or elasticsearch", param_hint="--engine") from None
    try:
        k1_b = tuple(float(x) for x in bm25.split(",")) if bm25 else None
    except ValueError:
        k1_b = ()
    if k1_b is not None and len(k1_b) != 2:
        raise typer.BadParameter("expected two numbers, e.g. 0.9,0.4", param_hint="--bm25")
    try:
        published = load_reference(reference) if reference else None
    except SidecarError as err:
        raise typer.Exit(print_error(err)) from None
    options = EvalOptions(dataset=dataset, split=split, engine=chosen, url=url, pipeline=pipeline,
                          sparse_endpoint=sparse_endpoint, dense_endpoint=dense_endpoint, doc_top_k=doc_top_k,
                          query_top_k=query_top_k or None, bm25=k1_b, max_length=max_length, dense=dense,
                          reindex=reindex, sweep=sweep, cache_dir=cache_dir, reference=published,
                          config=config)
    raise typer.Exit(eval_command(options, out))


@eval_app.command()
def convert(
    docs: Annotated[Path, typer.Option(help="Documents file (`.I`, `.T`, `.W` records).")],
    queries: Annotated[Path, typer.Option(help="Queries file (`.I`, `.W` records).")],
    qrels: Annotated[Path, typer.Option(help="Relevance file: `qid docid` or `qid 0 docid rel` lines.")],
    out: Annotated[Path, typer.Option(help="Folder to write the BEIR layout into.")],
    input_format: Annotated[str, typer.Option("--format", help="Input format: smart.")] = "smart",
    split: Annotated[str, typer.Option(help="Write the judgments as qrels/<split>.tsv.")] = "test",
    query_ids: Annotated[str, typer.Option(
        help="field: a query's id is its `.I` number; position: its place in the file (CRAN).")] = "field",
) -> None:
    """Convert a SMART-format test collection (CACM, CISI, CRAN, MED...) into the BEIR layout."""
    from sidecar.errors import SidecarError
    from sidecar.eval.command import print_error
    from sidecar.eval.convert import QueryIds, convert_smart

    if input_format != "smart":
        raise typer.BadParameter("the only format is smart", param_hint="--format")
    try:
        ids = QueryIds(query_ids)
    except ValueError:
        raise typer.BadParameter("use field or position", param_hint="--query-ids") from None
    try:
        done = convert_smart(docs, queries, qrels, out, split=split, query_ids=ids)
    except SidecarError as err:
        raise typer.Exit(print_error(err)) from None
    typer.echo(f"wrote {out}: {done.docs} documents, {done.queries} queries, {done.judgments} judgments "
               f"({done.qrels.relative_to(out).as_posix()}); evaluate with: sidecar eval --dataset {out}"
               + (f" --split {split}" if split != "test" else ""))
