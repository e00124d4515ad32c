from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sidecar.cli import app

GOOD = """\
name: ok
source: {kafka: {bootstrap_servers: "k:9092", topics: docs, group_id: g}}
fields: [{input: title, endpoint: .splade-tiny, target: ml.tokens}]
sink: {engine: opensearch, urls: "http://os:9200", index: docs}
"""


def test_validate_prints_every_problem_and_fails(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("group_id: g", "group_id: g, extra: 1").replace("index: docs", "index: Docs"))
    result = CliRunner().invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert f"{good}: ok" in lines
    assert any(
        line.startswith(f"{bad}:2: source.kafka.extra: Extra inputs are not permitted") for line in lines
    )


def test_validate_passes_on_valid_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    result = CliRunner().invoke(app, ["validate", str(good)])
    assert result.exit_code == 0, result.stdout


def test_validate_checks_endpoints_against_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD.replace(".splade-tiny", "my-custom-sparse"))
    monkeypatch.setenv("SIDECAR_REGISTRY_PATH", str(tmp_path / "endpoints.sqlite3"))
    result = CliRunner().invoke(app, ["validate", "--check-endpoints", str(good)])
    assert result.exit_code == 1
    assert f"{good}:3: fields[0].endpoint: Inference endpoint not found [my-custom-sparse]" in result.stdout
