"""README and docs/api.md list every service the server accepts, with the task types it serves."""

from __future__ import annotations

import re
from pathlib import Path

from sidecar.inference.services.base import SERVICES

ROOT = Path(__file__).resolve().parents[3]


def _table_rows() -> dict[str, tuple[set[str], str]]:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("## Services and task types", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = ({t.strip() for t in cells[1].split(",") if t.strip()}, cells[2])
    return rows


def test_docs_api_table_lists_every_served_service_with_its_task_types() -> None:
    rows = _table_rows()
    for name, spec in SERVICES.items():
        assert name in rows, f"docs/api.md has no row for service [{name}]"
        task_types, status = rows[name]
        assert status.startswith("served"), name
        assert task_types == {str(t) for t in spec.task_types}, name
    assert rows["elser"][1] == "served (deprecated)"


def test_readme_lists_every_service() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if line.startswith("Services ("))
    listed = set(re.findall(r"`([a-z0-9_\-]+)`(?: \(deprecated\))?[,.]", line))
    assert listed == set(SERVICES) | {"elser"}
