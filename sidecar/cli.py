"""The `sidecar` command line (`sidecar --help` lists every command).

Each subcommand imports its machinery lazily so `sidecar --help` stays fast (no torch import); the
bodies of commands that are no one component's own live in `sidecar.commands`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sidecar.eval.cli import eval_app

if TYPE_CHECKING:
    from sidecar.settings import Settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Learned sparse retrieval beside Elasticsearch and OpenSearch.",
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(help="Settings file: YAML mapping or .env lines (flags > environment > file)."),
]


def _settings(config: Path | None, **flags: object) -> Settings:
    """Settings for a command; an unreadable or invalid file or value ends it with a clear error."""
    from sidecar.errors import SidecarError
    from sidecar.settings import load_settings

    try:
        return load_settings(config, **flags)
    except SidecarError as err:
        typer.echo(f"error: {err.reason}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (env SIDECAR_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080, env SIDECAR_PORT).")] = None,
    config: ConfigOption = None,
) -> None:
    """Run the Elasticsearch-compatible inference API."""
    from sidecar.api.server import serve as run_server

    run_server(_settings(config, host=host, port=port))


@app.command()
def infer(
    texts: Annotated[list[str], typer.Argument(help="One or more texts.")],
    endpoint: Annotated[str, typer.Option("--endpoint", "-e", help="Endpoint id.")] = ".splade-tiny",
    query: Annotated[str | None, typer.Option(help="Query (rerank endpoints).")] = None,
    url: Annotated[str | None, typer.Option(help="Ask a running sidecar instead.")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="SIDECAR_CLIENT_API_KEY", help="API key for --url.")
    ] = None,
    top: Annotated[int, typer.Option(help="Sparse results: how many tokens to show.")] = 15,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw Elasticsearch answer.")] = False,
    config: ConfigOption = None,
) -> None:
    """Print an ad-hoc inference result for TEXTS (loads the model first, with progress on stderr)."""
    import asyncio
    import json

    from rich.console import Console

    from sidecar.api.infer_command import infer_body, render
    from sidecar.errors import SidecarError

    settings = _settings(config)
    try:
        body = asyncio.run(
            infer_body(texts, endpoint=endpoint, settings=settings, url=url, api_key=api_key, query=query)
        )
    except SidecarError as err:
        typer.echo(f"error: {err.es_type}: {err.reason}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False))
    else:
        render(body, texts, top=top, console=Console())


@app.command()
def worker(
    pipeline: Annotated[list[Path], typer.Option("--pipeline", "-p", help="Pipeline file; repeat for more.")],
    metrics_port: Annotated[int, typer.Option(help="Port of /metrics and health (0: any).")] = 9108,
    metrics_host: Annotated[
        str, typer.Option(help="Bind address of the metrics/health server (0.0.0.0 in a pod).")
    ] = "127.0.0.1",
    config: ConfigOption = None,
) -> None:
    """Consume Kafka, enrich with inference, bulk index; at-least-once with idempotent ids."""
    from sidecar.commands.worker import worker_command

    raise typer.Exit(worker_command(pipeline, metrics_host, metrics_port, _settings(config)))


@app.command()
def backfill(
    pipeline: Annotated[Path, typer.Option("--pipeline", "-p", help="The pipeline whose index to enrich.")],
    query: Annotated[str | None, typer.Option(help="Only documents matching this JSON query.")] = None,
    slices: Annotated[int, typer.Option(help="Split the index into N sliced scans (one per pod).")] = 1,
    slice_: Annotated[
        int, typer.Option("--slice", envvar="SIDECAR_BACKFILL_SLICE", help="Which slice this process runs.")
    ] = 0,
    force: Annotated[bool, typer.Option(help="Re-encode every document, enriched or not.")] = False,
    changed: Annotated[bool, typer.Option(help="Re-encode documents whose text changed.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Count only: no inference, no writes.")] = False,
    max_docs_per_second: Annotated[float | None, typer.Option(help="Throttle to R docs/s.")] = None,
    batch_size: Annotated[int, typer.Option(help="Docs per page and checkpoint.")] = 256,
    checkpoint_file: Annotated[
        Path | None, typer.Option(help="Keep the checkpoint in this file instead of the engine.")
    ] = None,
    checkpoint_index: Annotated[str, typer.Option(help="Engine index of checkpoints.")] = (
        "sidecar-backfill-checkpoints"
    ),
    keep_alive: Annotated[str, typer.Option(help="Point-in-time keep-alive between pages.")] = "10m",
    reindex_to: Annotated[
        str | None, typer.Option(help="Copy every document, enriched, into this new index.")
    ] = None,
    alias: Annotated[
        str | None, typer.Option(help="With --reindex-to: move this alias to the new index at the end.")
    ] = None,
    summary_json: Annotated[Path | None, typer.Option(help="Also write the summary here.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve /metrics on this port.")] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Bind address of the metrics server (0.0.0.0 in a pod).")
    ] = "127.0.0.1",
    config: ConfigOption = None,
) -> None:
    """Enrich documents already in the index: resumable (checkpoints), sliceable, throttled."""
    from sidecar.backfill.command import CommandOptions, backfill_command, parse_query
    from sidecar.backfill.runner import BackfillOptions
    from sidecar.backfill.selection import Mode

    if force and changed:
        raise typer.BadParameter("use one of --force and --changed")
    try:
        options = BackfillOptions(
            mode=Mode.ALL if force else Mode.CHANGED if changed else Mode.MISSING,
            query=parse_query(query), slices=slices, slice_id=slice_, dry_run=dry_run,
            max_docs_per_second=max_docs_per_second, batch_size=batch_size, keep_alive=keep_alive,
            reindex_to=reindex_to, alias=alias,
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    raise typer.Exit(backfill_command(CommandOptions(
        pipeline, options, checkpoint_file=checkpoint_file, checkpoint_index=checkpoint_index,
        summary_json=summary_json, metrics_port=metrics_port, metrics_host=metrics_host, config=config,
    )))  # fmt: skip


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Pipeline files and folders (every *.yaml/*.yml inside; default pipelines/)."),
    ] = None,
    check_endpoints: Annotated[
        bool, typer.Option(help="Also look the endpoints up in the local registry (loads no model).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Check pipeline files; print every problem once as FILE:LINE: KEY: MESSAGE."""
    from sidecar.commands.validate import validate_command

    raise typer.Exit(validate_command(paths or [], check_endpoints, _settings(config)))


@app.command()
def setup(
    pipeline: Annotated[list[Path], typer.Option("--pipeline", "-p", help="Pipeline file; repeat for more.")],
    config: ConfigOption = None,
) -> None:
    """Create the index, mappings or index template the pipelines need."""
    from sidecar.commands.setup import setup_command

    raise typer.Exit(setup_command(pipeline, _settings(config)))


@app.command()
def demo(
    pipeline: Annotated[Path, typer.Option(help="The demo pipeline.")] = Path("pipelines/demo.yaml"),
    samples: Annotated[Path, typer.Option(help="JSONL documents to produce.")] = Path(
        "pipelines/samples/everyday-science.jsonl"
    ),
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the documents to be indexed.")] = 300.0,
    config: ConfigOption = None,
) -> None:
    """Produce the sample documents to Kafka, run the worker until indexed, print a semantic search."""
    from sidecar.commands.demo import demo_command

    raise typer.Exit(demo_command(pipeline, samples, timeout, config))


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="The query text.")],
    pipeline: Annotated[Path, typer.Option("--pipeline", "-p", help="The pipeline whose index to search.")],
    k: Annotated[int, typer.Option("--k", help="Hits to show.")] = 10,
    hybrid: Annotated[bool, typer.Option(help="Fuse with the engine's BM25 (and dense fields).")] = False,
    fusion: Annotated[str, typer.Option(help="Hybrid fusion: minmax or rrf.")] = "minmax",
    weights: Annotated[
        str | None, typer.Option(help="Fusion weights, `0.5,0.5` or `bm25=0.5,sparse=0.5`.")
    ] = None,
    query_top_k: Annotated[int, typer.Option(help="Sparse query terms kept (0: all).")] = 32,
    as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Search the index a pipeline fills: sparse, or hybrid with BM25 (and dense)."""
    from sidecar.search.command import search_command

    raise typer.Exit(search_command(pipeline, text, k=k, hybrid=hybrid, fusion=fusion, weights=weights,
                                    query_top_k=query_top_k, as_json=as_json, settings=_settings(config)))


# `sidecar eval` runs an evaluation; `sidecar eval convert` brings a collection into its layout.
app.add_typer(eval_app, name="eval", help="Search quality on a BEIR-layout dataset (`convert`: SMART to BEIR).")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
