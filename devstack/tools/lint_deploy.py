"""Lint the deployment: hadolint on the Dockerfile, `helm lint --strict` and `helm template` for the
default values and every `helm/sparse-sidecar/ci/*-values.yaml`, each rendered manifest validated.

Usage: .venv/bin/python devstack/tools/lint_deploy.py   (what `make lint-deploy` runs)
tests/deploy runs the same checks, and asserts what the rendered manifests say, inside `make test`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from fetch_tools import ROOT, ToolFetchError, ensure_tools

CHART = ROOT / "helm" / "sparse-sidecar"
VALIDATOR = Path(__file__).resolve().parent / "validate_manifests.py"
LATEST_KUBE = "1.35"  # helm 4.1's default API capabilities


def _step(title: str, cmd: list[str], output: Path | None = None) -> bool:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if output is not None and result.returncode == 0:
        output.write_text(result.stdout)
    status = "ok" if result.returncode == 0 else "FAILED"
    print(f"{status:>6}  {title}")
    if result.returncode != 0:
        print((result.stdout + result.stderr).strip())
    return result.returncode == 0


def _min_kube_version() -> str:
    match = re.search(r'^kubeVersion:\s*">=\s*(\d+\.\d+)', (CHART / "Chart.yaml").read_text(), re.MULTILINE)
    if match is None:
        raise SystemExit('Chart.yaml: kubeVersion must read ">=X.Y..."')
    return match.group(1)


def main() -> int:
    try:
        tools = ensure_tools()
    except ToolFetchError as exc:
        print(f"lint_deploy: {exc}", file=sys.stderr)
        return 1
    hadolint = [tools.hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "Dockerfile")]
    ok = _step("hadolint Dockerfile", hadolint)
    combos: dict[str, list[str]] = {"default": []}
    for path in sorted((CHART / "ci").glob("*-values.yaml")):
        combos[path.name.removesuffix("-values.yaml")] = ["--values", str(path)]
    with tempfile.TemporaryDirectory() as tmp:
        rendered = []
        for name, values in combos.items():
            ok &= _step(f"helm lint --strict ({name})", [tools.helm, "lint", "--strict", str(CHART), *values])
            out = Path(tmp) / f"{name}.yaml"
            template = [tools.helm, "template", "sidecar", str(CHART), *values]
            if _step(f"helm template ({name})", template, out):
                rendered.append(str(out))
            else:
                ok = False
        kube = [_min_kube_version(), LATEST_KUBE]
        versions = [arg for version in kube for arg in ("--kube-version", version)]
        validate = [tools.validate_python, str(VALIDATOR), *versions, *rendered]
        ok &= _step(f"manifests valid for Kubernetes {' and '.join(kube)}", validate)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
