"""One settings loader for every command: `--config` is YAML or `.env` (by extension or content),
with the precedence flags > environment > file > defaults, and a clear error for a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.errors import SettingsValidationError
from sidecar.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SIDECAR_PORT", "SIDECAR_MAX_QUEUE", "SIDECAR_LOG_LEVEL", "SIDECAR_PRELOAD_ENDPOINTS"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("settings.yaml", "port: 9000\nmax_queue: 7\npreload_endpoints: [.splade-tiny]\n"),
        (
            "settings.yml",
            "SIDECAR_PORT: 9000\nSIDECAR_MAX_QUEUE: 7\nSIDECAR_PRELOAD_ENDPOINTS: [.splade-tiny]\n",
        ),
        (
            "sidecar.env",
            'SIDECAR_PORT=9000\nSIDECAR_MAX_QUEUE=7\nSIDECAR_PRELOAD_ENDPOINTS=[".splade-tiny"]\n',
        ),
        ("settings.conf", "port: 9000\nmax_queue: 7\npreload_endpoints: [.splade-tiny]\n"),  # YAML by content
        (
            "settings",
            'export SIDECAR_PORT=9000\nSIDECAR_MAX_QUEUE=7\nSIDECAR_PRELOAD_ENDPOINTS=[".splade-tiny"]\n',
        ),
    ],
)
def test_a_config_file_in_either_format(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    settings = load_settings(path)
    assert (settings.port, settings.max_queue, settings.preload_endpoints) == (9000, 7, [".splade-tiny"])


@pytest.mark.parametrize("name", ["settings.yaml", "settings.env"])
def test_flags_beat_the_environment_which_beats_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = tmp_path / name
    sep = ": " if name.endswith(".yaml") else "="
    path.write_text("".join(f"SIDECAR_{key}{sep}{value}\n" for key, value in
                            {"PORT": 1111, "MAX_QUEUE": 2222, "LOG_LEVEL": "DEBUG"}.items()))  # fmt: skip
    monkeypatch.setenv("SIDECAR_PORT", "3333")
    monkeypatch.setenv("SIDECAR_MAX_QUEUE", "4444")
    settings = load_settings(path, port=5555, max_queue=None)  # None: the flag was not given
    assert (settings.port, settings.max_queue, settings.log_level) == (5555, 4444, "DEBUG")
    assert load_settings().log_level == "INFO"  # the file applies only where it is named


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port: [unclosed\n", "is not valid YAML"),
        ("- a\n- list\n", "must hold a mapping of settings"),
        ("colour: blue\n", "has unknown settings ['colour']"),
        ("port: not-a-number\n", "invalid settings"),
    ],
)
def test_a_bad_yaml_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SettingsValidationError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        load_settings(path)
    assert str(path) in err.value.reason


def test_unknown_settings_in_a_dotenv_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text("SIDECAR_PORTT=1\nOTHER_TOOL=ignored\n")
    with pytest.raises(SettingsValidationError, match=r"unknown settings \['portt'\]"):
        load_settings(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsValidationError, match="cannot read the config file"):
        load_settings(tmp_path / "nope.yaml")


@pytest.mark.parametrize("command", ["serve", "worker -p x.yaml", "setup -p x.yaml", "backfill -p x.yaml",
                                     "validate", "infer hello", "search hello -p x.yaml", "demo"])  # fmt: skip
def test_every_command_reports_a_bad_config_file_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no .devstack/env here for `demo` to read
    monkeypatch.setenv("SIDECAR_LOG_LEVEL", "INFO")  # `demo` only sets it when unset
    path = tmp_path / "bad.yaml"
    path.write_text("colour: blue\n")
    result = CliRunner().invoke(app, [*command.split(), "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert f"error: config file [{path}] has unknown settings ['colour']" in result.output


def test_eval_reports_a_bad_config_file_before_any_encoding(tmp_path: Path) -> None:
    dataset = tmp_path / "tiny"
    (dataset / "qrels").mkdir(parents=True)
    (dataset / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "sky"}\n')
    (dataset / "queries.jsonl").write_text('{"_id": "q1", "text": "sky"}\n')
    (dataset / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    path = tmp_path / "bad.yaml"
    path.write_text("colour: blue\n")
    result = CliRunner().invoke(app, ["eval", "--dataset", str(dataset), "--config", str(path)])
    assert result.exit_code == 1, result.output
    assert f"config file [{path}] has unknown settings ['colour']" in result.output
