"""`sidecar demo` (what `make run` runs) end to end on the real Kafka and OpenSearch, from a fresh
folder: the samples are produced, the worker loads its model (saying so) and indexes them, and each
demo query finds its own sample among the three it shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "pipelines" / "samples" / "everyday-science.jsonl"
# The model-loading notice is due at once (not after a second), so the test does not depend on
# how long the load takes on this machine.
RUN_CLI = (
    "import sidecar.inference.loading as l; l.NOTICE_AFTER_S = 0.0; from sidecar.cli import main; main()"
)


@pytest.fixture
def demo_index(opensearch_url: str) -> Iterator[str]:
    name = f"demo-test-{uuid.uuid4().hex[:8]}"
    yield name
    for index in (name, f"{name}-dlq"):
        httpx.delete(f"{opensearch_url}/{index}", params={"ignore_unavailable": "true"}, timeout=30)


def test_the_demo_indexes_the_samples_and_finds_them(
    tmp_path: Path, kafka_bootstrap: str, opensearch_url: str, demo_index: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
    env |= {
        "SIDECAR_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SIDECAR_OPENSEARCH_URL": opensearch_url,
        "SIDECAR_DEMO_TOPIC": demo_index,
        "SIDECAR_DEMO_GROUP": demo_index,
        "SIDECAR_DEMO_INDEX": demo_index,
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLI, "demo", "--pipeline", str(ROOT / "pipelines" / "demo.yaml"),
         "--samples", str(SAMPLES), "--timeout", "600"],
        capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "starting the worker: loading the models of ['.splade-tiny'] ...\n" in done.stderr
    samples = SAMPLES.read_text().splitlines()
    out = done.stdout
    assert f"produced {len(samples)} documents to Kafka topic ['{demo_index}']" in out
    assert f"worker indexed them into [{demo_index}]" in out
    # Every demo query answers three samples, its own subject among them.
    titles = {json.loads(line)["id"]: json.loads(line)["title"] for line in samples}
    for query, sample in (("why is the sky blue during the day", "sky-blue"),
                          ("keeping my online accounts safe from hackers", "password-manager"),
                          ("how do plants make their food", "photosynthesis"),
                          ("what makes bread dough rise", "sourdough")):  # fmt: skip
        hits = out.split(f"query: {query}\n", 1)[1].splitlines()[1:4]  # after the "encoded as" line
        shown = [hit.split(maxsplit=2)[2] for hit in hits]
        assert [hit.split()[0] for hit in hits] == ["1.", "2.", "3."], out
        assert set(shown) <= set(titles.values()) and titles[sample] in shown, out
    count = httpx.get(f"{opensearch_url}/{demo_index}/_count", timeout=30).json()["count"]
    assert count == len(samples)
