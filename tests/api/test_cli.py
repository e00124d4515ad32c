"""`sidecar infer --url` against a running `sidecar serve`: the terminal view and the raw answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.api.sidecar_process import SidecarProcess

SIDECAR_CLI = [str(Path(sys.executable).parent / "sidecar")]


def _infer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIDECAR_CLI, "infer", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_infer_prints_the_heaviest_tokens(sidecar: SidecarProcess) -> None:
    done = _infer("--url", sidecar.url, "--top", "3", "The sky above the port")
    assert done.returncode == 0, done.stderr
    assert "token" in done.stdout and "weight" in done.stdout
    assert "port" in done.stdout


def test_infer_json_is_the_elasticsearch_answer(sidecar: SidecarProcess) -> None:
    done = _infer("--url", sidecar.url, "--json", "-e", ".minilm-l6", "dense please")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["text_embedding"][0]["embedding"]) == 384


def test_infer_reports_errors_with_their_type(sidecar: SidecarProcess) -> None:
    done = _infer("--url", sidecar.url, "-e", "missing", "x")
    assert done.returncode == 1
    assert "resource_not_found_exception" in done.stderr


def test_infer_in_a_fresh_folder_works_on_the_first_call(tmp_path: Path) -> None:
    """No server, no endpoint store yet: the packaged model loads first (outside the request's time
    limit), then the answer comes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    done = subprocess.run(
        [*SIDECAR_CLI, "infer", "--json", "hello world"],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sparse_embedding"][0]["embedding"]
    assert (tmp_path / ".sidecar" / "endpoints.sqlite3").is_file()
