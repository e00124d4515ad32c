"""The `sidecar` command line: serve | worker | backfill | setup | validate | search | infer | eval.

Each subcommand imports its machinery lazily so `sidecar --help` stays fast (no torch import).
"""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


@app.callback()
def _root() -> None:
    """Learned sparse retrieval beside Elasticsearch and OpenSearch."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
