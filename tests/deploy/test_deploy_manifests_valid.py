"""Every rendered manifest validates: core kinds against the Kubernetes JSON schemas bundled in
kubernetes-validate (strict: unknown fields fail), for the oldest Kubernetes the chart supports and a
current one; KEDA and Prometheus Operator objects against the project's schemas in devstack/tools/crd-schemas.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import CHART, COMBOS, ROOT, Rendered, Tools, render

VALIDATOR = ROOT / "devstack" / "tools" / "validate_manifests.py"
LATEST_KUBE = "1.35"  # helm 4.1's default capabilities


def _min_kube_version() -> str:
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.match(r">=\s*(\d+\.\d+)", constraint)
    assert match, constraint
    return match.group(1)


def validate(tools: Tools, *files: Path) -> list[dict[str, Any]]:
    cmd = [tools.validate_python, str(VALIDATOR), "--json", "--kube-version", _min_kube_version(),
           "--kube-version", LATEST_KUBE, *map(str, files)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert result.stderr == "", result.stderr
    report: list[dict[str, Any]] = json.loads(result.stdout)
    assert result.returncode == (1 if any(item["problems"] for item in report) else 0)
    return report


@pytest.fixture(scope="module")
def reports(tools: Tools, rendered: dict[str, Rendered]) -> dict[str, list[dict[str, Any]]]:
    # One validator process for all combinations: its start-up (schema loading) dominates.
    report = validate(tools, *(r.path for r in rendered.values()))
    return {combo: [item for item in report if item["file"] == str(r.path)] for combo, r in rendered.items()}


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_every_manifest_is_valid(reports: dict[str, list[dict[str, Any]]], rendered: dict[str, Rendered],
                                 combo: str) -> None:  # fmt: skip
    report = reports[combo]
    assert len(report) == len(rendered[combo].docs) > 0
    problems = [f"{item['kind']}/{item['name']}: {p}" for item in report for p in item["problems"]]
    assert problems == []


def test_the_combinations_cover_every_kind_the_chart_renders(rendered: dict[str, Rendered]) -> None:
    kinds = {doc["kind"] for r in rendered.values() for doc in r.docs}
    assert kinds == {
        "ServiceAccount", "ConfigMap", "Secret", "Service", "Deployment", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "Job", "ScaledObject", "ServiceMonitor", "NetworkPolicy",
    }  # fmt: skip


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][0]
    return result


# The validator must fail on the mistakes it exists to catch, or the checks above prove nothing.
BROKEN: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("default", "Deployment", lambda d: _container(d)["securityContext"].update(readOnlyRootFs=True),
     "'readOnlyRootFs' was unexpected"),
    ("default", "HorizontalPodAutoscaler", lambda d: d["spec"].update(maxReplicas="ten"),
     "'ten' is not of type"),
    ("default", "Service", lambda d: d["metadata"].update(name="Search_API"), "not a DNS-1123"),
    ("gpu-workers", "Deployment", lambda d: d["metadata"]["labels"].update(bad="x" * 64),
     "not a valid label"),
    ("keda-autoscaling", "ScaledObject",
     lambda d: d["spec"]["triggers"][0]["metadata"].update(lagThreshold=5),
     "5 is not of type 'string'"),
    ("keda-autoscaling", "ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(path="metrics"),
     "does not match"),
    ("existing-secret", "Job", lambda d: d["spec"].update(completions="six"), "'six' is not of type"),
    ("existing-secret", "Job", lambda d: d["metadata"].update(name="j" * 62), "exceeds 63 characters"),
]  # fmt: skip


@pytest.mark.parametrize(("combo", "kind", "mutate", "expected"), BROKEN)
def test_validator_rejects_broken_manifests(
    tools: Tools,
    rendered: dict[str, Rendered],
    tmp_path: Path,
    combo: str,
    kind: str,
    mutate: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    doc = json.loads(json.dumps(rendered[combo].all(kind)[0]))
    mutate(doc)
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    (item,) = validate(tools, broken)
    assert any(expected in problem for problem in item["problems"]), item["problems"]


def test_validator_rejects_unknown_kinds(tools: Tools, tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    (item,) = validate(tools, unknown)
    assert any("no schema" in problem for problem in item["problems"])


def test_long_names_are_shortened_within_kubernetes_limits(tools: Tools, tmp_path: Path) -> None:
    longest_release = "r" * 53  # helm's own limit
    text = render(tools, "--set", "pipelines.long-pipeline-name=x",
                  "--set", "workers.a-worker-with-a-long-name-12.pipelines[0]=long-pipeline-name",
                  "--set", "backfill.enabled=true", "--set", "backfill.pipeline=long-pipeline-name",
                  "--set", "backfill.slices=100", release=longest_release).stdout  # fmt: skip
    manifests = tmp_path / "long.yaml"
    manifests.write_text(text)
    report = validate(tools, manifests)
    assert len(report) == 10
    assert [problem for item in report for problem in item["problems"]] == []
