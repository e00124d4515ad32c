"""`sidecar --help` is for users: it names every command and carries no developer notes."""

from __future__ import annotations

from typer.testing import CliRunner

from sidecar.cli import app


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
