"""Charts are the optional `reports` extra: without matplotlib everything imports and runs, and
drawing a chart says how to install it."""

from __future__ import annotations

import subprocess
import sys

WITHOUT_MATPLOTLIB = """
import sys
sys.modules["matplotlib"] = None  # `import matplotlib` now raises ImportError, as when not installed
import sidecar.cli, sidecar.eval.command, benchmarks.__main__
from sidecar.eval.report import pyplot
try:
    pyplot()
except ImportError as exc:
    print(exc)
"""


def test_without_matplotlib_the_commands_import_and_charts_say_how_to_install_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "charts need matplotlib: pip install 'sparse-sidecar[reports]'"
