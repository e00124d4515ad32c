"""`make run`: the demo pipeline end to end on the local stack (see `sidecar demo --help`)."""

from __future__ import annotations

import sys
from pathlib import Path

from sidecar.commands.demo import demo_command

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    sys.exit(
        demo_command(ROOT / "pipelines/demo.yaml", ROOT / "pipelines/samples/everyday-science.jsonl", 300.0)
    )
