"""The Grafana dashboard shipped with the chart: well-formed, and every query asks for a metric the
sidecar really exports (sidecar.observability.metrics), with labels that metric has."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from deploy_helpers import CHART
from prometheus_client.metrics import MetricWrapperBase

from sidecar.observability import metrics

DASHBOARD = CHART / "dashboards" / "sparse-sidecar.json"
# Labels Prometheus adds when scraping through the ServiceMonitor.
TARGET_LABELS = {"namespace", "pod", "service", "job", "instance", "container", "endpoint"}


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels() -> list[dict[str, Any]]:
    return [panel for panel in _dashboard()["panels"] if panel["type"] != "row"]


def _exported() -> dict[str, tuple[str, set[str]]]:
    """Metric family name -> (type, label names), from the objects the sidecar registers."""
    found: dict[str, tuple[str, set[str]]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):  # prometheus_client has no public accessor for these
            found[value._name] = (str(value._type), set(value._labelnames))
    return found


def test_dashboard_is_well_formed() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "sparse-sidecar" and dashboard["title"] == "sparse-sidecar"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    occupied: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24
        cells = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells
    for panel in _panels():
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])
        assert panel["description"]


def _queries() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in _panels() for target in panel["targets"]]


@pytest.mark.parametrize(
    ("title", "expr"), _queries(), ids=[f"{i}-{t}" for i, (t, _) in enumerate(_queries())]
)
def test_queries_use_exported_metrics_and_labels(title: str, expr: str) -> None:
    exported = _exported()
    names = set(re.findall(r"\b(sidecar_[a-z0-9_]+)\b", expr))
    assert names, f"{title}: no sidecar_ metric"
    for name in names:
        family, suffix = name, ""
        for candidate in ("_bucket", "_total"):
            if name.endswith(candidate) and name.removesuffix(candidate) in exported:
                family, suffix = name.removesuffix(candidate), candidate
        assert family in exported, f"{title}: {name} is not exported by sidecar.observability.metrics"
        kind, labels = exported[family]
        expected_suffix = {"counter": "_total", "histogram": "_bucket", "gauge": ""}[kind]
        assert suffix == expected_suffix, f"{title}: {name} queried as the wrong type ({kind})"
        if kind == "histogram":
            labels = labels | {"le"}
        used = set()
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            used |= {label.strip() for label in group.split(",")}
        for selector in re.findall(name + r"\{([^}]*)\}", expr):
            used |= set(re.findall(r"([a-z_]+)\s*=~?", selector))
        assert used - TARGET_LABELS <= labels, (
            f"{title}: {name} has no label(s) {used - TARGET_LABELS - labels}"
        )


MAIN_SIGNALS = [
    "sidecar_inference_queue_depth", "sidecar_inference_batch_size", "sidecar_inference_batch_tokens",
    "sidecar_inference_queue_seconds", "sidecar_inference_requests_total", "sidecar_inference_errors_total",
    "sidecar_http_requests_total", "sidecar_http_request_seconds", "sidecar_worker_consumer_lag",
    "sidecar_worker_consumed_total", "sidecar_worker_indexed_total", "sidecar_worker_dead_lettered_total",
    "sidecar_worker_retried_total", "sidecar_backfill_docs_total",
]  # fmt: skip


def test_the_dashboard_covers_the_main_signals() -> None:
    queried = " ".join(expr for _, expr in _queries())
    assert [metric for metric in MAIN_SIGNALS if metric not in queried] == []
