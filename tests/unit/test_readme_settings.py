"""README's `SIDECAR_*` table is the settings model's: names, defaults and descriptions.

On a difference the failure prints the table to paste into README.md (section "Configuration").
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from sidecar.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = "| variable | default | meaning |"


def _shown(value: Any) -> str:
    """A default as it would be written in the variable (JSON for lists and objects)."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, list | dict):
        return f"`{json.dumps(value, default=str)}`"
    return f"`{value}`"


def settings_table() -> list[str]:
    rows = [HEADER, "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        assert default is not PydanticUndefined, f"setting [{name}] has no default"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `SIDECAR_{name.upper()}` | {_shown(default)} | {description} |")
    return rows


def readme_table() -> list[str]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER)
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_the_readme_settings_table_is_the_settings_model() -> None:
    expected = settings_table()
    assert readme_table() == expected, "README.md's settings table should read:\n" + "\n".join(expected)
