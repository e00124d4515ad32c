"""What can fail fails before the corpus is encoded: a dataset folder whose name makes no index
name, an engine that does not answer, a reference that does not exist, a missing option."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.errors import RemoteServiceError, SidecarError
from sidecar.eval.runner import EvalOptions, index_prefix, run_eval


def tiny(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(json.dumps({"_id": "d", "title": "t", "text": "x"}) + "\n")
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "x"}) + "\n")
    (folder / "qrels.tsv").write_text("q\td\t1\n")
    return folder


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A port bound but not listening: connections are refused, and no other process can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_index_prefix_rules() -> None:
    assert index_prefix("SciFact") == "eval-scifact-"
    for name, bad in (("My Data", "' '"), ("a:b", "':'"), ("x#1,y", "'#', ','")):
        with pytest.raises(SidecarError, match=rf"must not contain the following characters \[{bad}\]") as err:
            index_prefix(name)
        assert err.value.es_type == "invalid_index_name_exception" and err.value.status == 400
    with pytest.raises(SidecarError, match="too long"):
        index_prefix("x" * 240)


def test_bad_folder_name_fails_before_the_engine_or_any_encoding(tmp_path: Path, refused_url: str) -> None:
    cache = tmp_path / "cache"
    options = EvalOptions(dataset=tiny(tmp_path / "My Data"), url=refused_url, cache_dir=cache)
    with pytest.raises(SidecarError, match=r"Invalid index name \[eval-my data-...\].*rename the dataset folder"):
        asyncio.run(run_eval(options))
    assert not cache.exists()


def test_unreachable_engine_fails_before_any_encoding(tmp_path: Path, refused_url: str) -> None:
    cache = tmp_path / "cache"
    options = EvalOptions(dataset=tiny(tmp_path / "tiny"), url=refused_url, cache_dir=cache)
    with pytest.raises(RemoteServiceError, match=rf"opensearch is not reachable at \[{refused_url}\].*make stack-up"):
        asyncio.run(run_eval(options))
    assert not cache.exists()  # nothing was encoded (encodings are cached as they finish)


def test_command_line_errors(tmp_path: Path, refused_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--split", "dev"])
    assert result.exit_code == 2 and "'--dataset': missing" in result.output
    folder = tiny(tmp_path / "tiny")
    result = runner.invoke(app, ["eval", "--dataset", str(folder), "--reference", "nope", "--url", refused_url])
    assert result.exit_code == 1 and "reference [nope] is neither a built-in" in result.output
    cache = tmp_path / "cache"
    result = runner.invoke(app, ["eval", "--dataset", str(folder), "--url", refused_url, "--cache-dir", str(cache),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "is not reachable" in result.output
    assert not cache.exists() and not (tmp_path / "out").exists()
