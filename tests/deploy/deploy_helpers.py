"""Helpers for the deployment checks: running helm, and reading rendered manifests.

The values combinations are the default values plus every `helm/sparse-sidecar/ci/*-values.yaml`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "sparse-sidecar"
RELEASE = "search"
NAMESPACE = "retrieval"
COMBOS: dict[str, Path | None] = {"default": None} | {
    path.name.removesuffix("-values.yaml"): path for path in sorted((CHART / "ci").glob("*-values.yaml"))
}


@dataclass(frozen=True)
class Tools:
    helm: str
    hadolint: str
    validate_python: str


@dataclass
class Rendered:
    """One `helm template` output: the file it was written to and its documents."""

    path: Path
    docs: list[dict[str, Any]]
    values: dict[str, Any] = field(default_factory=dict)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name_suffix: str) -> dict[str, Any]:
        found = [doc for doc in self.all(kind) if doc["metadata"]["name"].endswith(name_suffix)]
        names = [doc["metadata"]["name"] for doc in found]
        assert len(found) == 1, f"expected one {kind} named *{name_suffix}, found {names}"
        return found[0]


def helm(tools: Tools, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([tools.helm, *args], capture_output=True, text=True, check=False, timeout=120)
    if check:
        assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stderr}"
    return result


def values_args(combo: str) -> list[str]:
    path = COMBOS[combo]
    return ["--values", str(path)] if path else []


def render(
    tools: Tools, *extra: str, check: bool = True, release: str = RELEASE
) -> subprocess.CompletedProcess[str]:
    return helm(tools, "template", release, str(CHART), "--namespace", NAMESPACE, *extra, check=check)


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(workload)["containers"]
    result: dict[str, Any] = only
    return result


def env_of(workload: dict[str, Any]) -> dict[str, Any]:
    """Environment as name -> value (plain) or the valueFrom mapping."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(workload).get("env", [])}


def workloads(r: Rendered) -> Iterator[dict[str, Any]]:
    yield from (doc for doc in r.docs if doc["kind"] in {"Deployment", "Job"})
