"""`sidecar --help` is for users: it names every command and carries no developer notes; the
README's command table names every command too."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.eval.cli import eval_app


def test_root_help_lists_every_command_and_no_developer_note() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    commands = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    commands += [g.name or "" for g in app.registered_groups]
    assert {"serve", "worker", "backfill", "validate", "setup", "infer", "search", "eval", "demo"} <= set(commands)
    listed = {line.strip(" │").split()[0] for line in result.stdout.splitlines() if line.startswith("│ ")}
    assert set(commands) <= listed, (commands, result.stdout)
    for note in ("lazily", "torch", "import"):
        assert note not in result.stdout


def test_the_readme_command_table_names_every_command() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `sidecar ")]
    named = {word for row in rows for word in re.findall(r"`sidecar (\w+)", row)}
    commands = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    commands |= {g.name or "" for g in app.registered_groups}
    assert named == commands
    subcommands = {c.name or (c.callback.__name__ if c.callback else "") for c in eval_app.registered_commands}
    assert all(f"`sidecar eval {name}" in readme for name in subcommands)
