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


def test_validate_takes_folders_and_reports_a_broken_file_once(tmp_path: Path) -> None:
    (tmp_path / "a-good.yaml").write_text(GOOD)
    nested = tmp_path / "more"
    nested.mkdir()
    (nested / "b-good.yml").write_text(GOOD.replace("name: ok", "name: ok2"))
    (nested / "notes.txt").write_text("not a pipeline")
    broken = tmp_path / "c-broken.yaml"
    broken.write_text(GOOD.replace("index: docs", "index: Docs"))
    # The broken file named twice (inside the folder and on its own) is still checked once.
    result = CliRunner().invoke(app, ["validate", str(tmp_path), str(broken)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    about = {path: [line for line in lines if line.startswith(f"{path}:")] for path in (broken, nested)}
    assert len(about[broken]) == 1 and about[broken][0].startswith(f"{broken}:4: sink.index: "), lines
    order = [line.split(":")[0] for line in lines if line.endswith(": ok") or line.startswith(f"{broken}:")]
    assert order == [str(tmp_path / "a-good.yaml"), str(broken), str(nested / "b-good.yml")]
    assert "notes.txt" not in result.stdout


def test_an_unset_variable_is_reported_once_with_how_to_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIDECAR_TEST_KAFKA", raising=False)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(GOOD.replace('"k:9092"', '"${SIDECAR_TEST_KAFKA}"'))
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{pipeline}:2: source.kafka.bootstrap_servers: environment variable [SIDECAR_TEST_KAFKA] is not "
        "set: export SIDECAR_TEST_KAFKA=... (or `source .devstack/env` for the local stack), or give a "
        "default as ${SIDECAR_TEST_KAFKA:-value}"
    ]


def test_a_missing_path_or_an_empty_folder_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["validate", str(empty), str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"{empty}: <folder>: holds no *.yaml or *.yml file",
        f"{tmp_path / 'nope.yaml'}: <file>: no such file or folder",
    ]


def test_the_shipped_pipelines_are_valid_with_the_local_stack_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The names `make stack-up` writes into .devstack/env (values only need to be well-formed here).
    for name, value in {
        "SIDECAR_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
        "SIDECAR_OPENSEARCH_URL": "http://127.0.0.1:19200",
        "SIDECAR_ES_URL": "http://127.0.0.1:19201",
    }.items():
        monkeypatch.setenv(name, value)
    repo = Path(__file__).resolve().parents[3]
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(app, ["validate", "pipelines/examples"])
    assert result.exit_code == 0, result.stdout
    assert sum(line.endswith(": ok") for line in result.stdout.splitlines()) == 3
    bare = CliRunner().invoke(app, ["validate"])
    assert bare.exit_code == 0, bare.stdout
