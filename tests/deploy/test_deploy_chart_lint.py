"""`helm lint --strict` on every values combination, and the chart refusing bad values with clear errors."""

from __future__ import annotations

import pytest
from deploy_helpers import CHART, COMBOS, Tools, helm, render, values_args

REQUIRED_COMBOS = {"default", "gpu-workers", "keda-autoscaling", "existing-secret"}


def test_the_required_combinations_exist() -> None:
    assert REQUIRED_COMBOS <= COMBOS.keys()


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_helm_lint_strict(tools: Tools, combo: str) -> None:
    result = helm(tools, "lint", "--strict", str(CHART), *values_args(combo), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["--set", "api.replicas=two"], "/api/replicas"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "workerDefaults.gpu=-1"], "/workerDefaults/gpu"),
        (["--set", "config.device=tpu"], "/config/device"),
        (["--set", "api.autoscaling.targetCPUUtilizationPercentage=150"], "targetCPUUtilizationPercentage"),
        (["--set", "apii.enabled=true"], "apii"),  # a typo at the top level
        (["--set", "workers.Bad_Name.replicas=1"], "Bad_Name"),
        (["--set", "backfill.slices=0"], "/backfill/slices"),
    ],
)
def test_schema_rejects_bad_values(tools: Tools, overrides: list[str], message: str) -> None:
    result = render(tools, *overrides, check=False)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["--set", "workers.orders.replicas=1"], 'pipeline "orders", which is not defined'),
        (
            ["--set", "pipelines.orders=x", "--set", "workers.orders.keda.enabled=true",
             "--set", "config.kafkaBootstrap=kafka:9092"],
            "pipeline \"orders\" has no literal source.kafka.group_id",
        ),
        (
            ["--set", "pipelines.orders=x", "--set", "workers.orders.keda.enabled=true",
             "--set", "workers.orders.keda.consumerGroup=g"],
            "keda.bootstrapServers (or config.kafkaBootstrap) is required",
        ),
        (
            ["--set", "pipelines.orders=x", "--set", "workers.orders.keda.enabled=true",
             "--set", "workers.orders.autoscaling.enabled=true"],
            "autoscaling (CPU HPA) and keda are exclusive",
        ),
        (["--set", "backfill.enabled=true"], "backfill.pipeline is required"),
        (["--set", "backfill.enabled=true", "--set", "backfill.pipeline=nope"], 'pipeline "nope"'),
    ],
)  # fmt: skip
def test_templates_fail_on_inconsistent_values(tools: Tools, overrides: list[str], message: str) -> None:
    result = render(tools, *overrides, check=False)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_notes_render(tools: Tools, combo: str) -> None:
    result = helm(tools, "install", "search", str(CHART), "--dry-run=client", "--namespace", "retrieval",
                  *values_args(combo))  # fmt: skip
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "http://search-sparse-sidecar-api.retrieval.svc:8080" in notes
    assert ("no API keys are configured" in notes) == (combo in {"default", "gpu-workers"})
    assert ("keeps its own endpoint registry" in notes) == (combo in {"default", "keda-autoscaling"})
