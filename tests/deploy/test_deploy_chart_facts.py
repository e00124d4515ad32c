"""What the rendered chart must say beyond schema validity: security, probes, GPUs, scaling, secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from deploy_helpers import CHART, COMBOS, Rendered, container, env_of, pod_spec, workloads

from sidecar.pipelines import parse_pipeline_text

LIVE, READY = "/_sidecar/health/live", "/_sidecar/health/ready"
PIPELINE_DIR = "/etc/sidecar/pipelines/"
PIPELINE_COMBOS = sorted(
    c for c, path in COMBOS.items() if path and yaml.safe_load(path.read_text()).get("pipelines")
)
# What the operator's own Secret holds in the existing-secret combination (the chart cannot know).
EXISTING_SECRET_KEYS = {
    "sidecar-engine-credentials": {"KAFKA_BOOTSTRAP", "KAFKA_PASSWORD", "OPENSEARCH_PASSWORD"}
}


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_every_pod_is_locked_down(rendered: dict[str, Rendered], combo: str) -> None:
    for workload in workloads(rendered[combo]):
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's numeric user
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        security = container(workload)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        # The only writable paths are volumes.
        mounts = {m["mountPath"]: m["name"] for m in container(workload)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 - a path inside the pod
        assert "emptyDir" in volumes[mounts["/var/lib/sidecar"]]
        assert env_of(workload)["SIDECAR_REGISTRY_PATH"].startswith("/var/lib/sidecar/")


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_probes_hit_the_real_endpoints_on_the_served_port(rendered: dict[str, Rendered], combo: str) -> None:
    for deployment in rendered[combo].all("Deployment"):
        main = container(deployment)
        (port,) = main["ports"]
        assert main["livenessProbe"]["httpGet"] == {"path": LIVE, "port": port["name"]}
        assert main["startupProbe"]["httpGet"] == {"path": LIVE, "port": port["name"]}
        assert main["readinessProbe"]["httpGet"] == {"path": READY, "port": port["name"]}
        args = main["args"]
        if deployment["metadata"]["labels"]["app.kubernetes.io/component"] == "api":
            assert args[:5] == ["serve", "--host", "0.0.0.0", "--port", str(port["containerPort"])]  # noqa: S104
        else:
            assert args[0] == "worker"
            assert args[args.index("--metrics-port") + 1] == str(port["containerPort"])
            assert args[args.index("--metrics-host") + 1] == "0.0.0.0"  # noqa: S104 - probes come from outside


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_selectors_match_their_pods(rendered: dict[str, Rendered], combo: str) -> None:
    r = rendered[combo]
    deployments = r.all("Deployment")
    for deployment in deployments:
        assert _selects(deployment["spec"]["selector"]["matchLabels"], _pod_labels(deployment))
    for pdb in r.all("PodDisruptionBudget"):
        matched = [d for d in deployments if _selects(pdb["spec"]["selector"]["matchLabels"], _pod_labels(d))]
        assert [d["metadata"]["name"] for d in matched] == [pdb["metadata"]["name"]]
    for service in r.all("Service"):
        matched = [d for d in deployments if _selects(service["spec"]["selector"], _pod_labels(d))]
        assert matched, service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            assert all(port["targetPort"] in {p["name"] for p in container(d)["ports"]} for d in matched)
    by_name = {d["metadata"]["name"]: d for d in deployments}
    for scaler in r.all("HorizontalPodAutoscaler") + r.all("ScaledObject"):
        target = by_name[scaler["spec"]["scaleTargetRef"]["name"]]
        # The autoscaler owns the replica count: a helm upgrade must not reset it.
        assert "replicas" not in target["spec"]


def test_default_values_render_the_api_only(rendered: dict[str, Rendered]) -> None:
    r = rendered["default"]
    assert sorted(doc["kind"] for doc in r.docs) == sorted(
        ["ServiceAccount", "Service", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    )
    api = r.one("Deployment", "-api")
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container(api)["image"] == f"sparse-sidecar:{app_version}"
    assert "nvidia.com/gpu" not in json.dumps(api)
    hpa = r.one("HorizontalPodAutoscaler", "-api")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    # Without keys no key file is mounted, and the NOTES warn about it (test_deploy_chart_lint).
    assert "SIDECAR_API_KEYS_FILE" not in env_of(api)
    # torch threads follow the CPU the pod asked for.
    assert env_of(api)["SIDECAR_TORCH_THREADS"]["resourceFieldRef"]["resource"] == "requests.cpu"


def test_gpu_workers(rendered: dict[str, Rendered]) -> None:
    r = rendered["gpu-workers"]
    products = r.one("Deployment", "-worker-products")
    resources = container(products)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == 1
    assert container(products)["image"].endswith("-cuda")
    assert env_of(products)["SIDECAR_DEVICE"] == "cuda"
    pod = pod_spec(products)
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true", "kubernetes.io/os": "linux"}
    tolerations = {t["key"]: t for t in pod["tolerations"]}
    assert tolerations["nvidia.com/gpu"] == {
        "key": "nvidia.com/gpu",
        "operator": "Exists",
        "effect": "NoSchedule",
    }
    assert "dedicated" in tolerations
    assert products["spec"]["replicas"] == 3

    feeds = r.one("Deployment", "-worker-feeds")
    args = container(feeds)["args"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--pipeline"] == [
        "/etc/sidecar/pipelines/news.yaml", "/etc/sidecar/pipelines/blogs.yaml",
    ]  # fmt: skip
    assert "nvidia.com/gpu" not in json.dumps(feeds)
    assert "tolerations" not in pod_spec(feeds)
    assert env_of(feeds)["SIDECAR_DEVICE"] == "auto"

    # Every pipeline a worker names is a file in the ConfigMap, with the content given in values.
    data = r.one("ConfigMap", "-pipelines")["data"]
    for name, content in r.values["pipelines"].items():
        expected = content if isinstance(content, dict) else yaml.safe_load(content)
        assert yaml.safe_load(data[f"{name}.yaml"]) == expected
    for deployment in r.all("Deployment"):
        mounts = {m["name"]: m for m in container(deployment)["volumeMounts"]}
        assert mounts["pipelines"] == {
            "name": "pipelines",
            "mountPath": "/etc/sidecar/pipelines",
            "readOnly": True,
        }
        for arg in container(deployment)["args"]:
            if arg.startswith("/etc/sidecar/pipelines/"):
                assert arg.removeprefix("/etc/sidecar/pipelines/") in data

    api = r.one("Deployment", "-api")
    assert container(api)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert env_of(api)["SIDECAR_REGISTRY_INDEX"] == ".sidecar-endpoints"


def test_keda_autoscaling(rendered: dict[str, Rendered]) -> None:
    r = rendered["keda-autoscaling"]
    scaled = r.one("ScaledObject", "-worker-orders")["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (1, 12)
    assert [t["metadata"]["topic"] for t in scaled["triggers"]] == ["orders", "orders-eu"]
    for trigger in scaled["triggers"]:
        assert trigger["type"] == "kafka"
        assert trigger["authenticationRef"] == {"name": "kafka-sasl"}
        meta: dict[str, Any] = trigger["metadata"]
        assert meta["consumerGroup"] == "sidecar-orders"
        assert meta["bootstrapServers"] == "kafka.data.svc:9092"
        assert meta["lagThreshold"] == "5000"
    # KEDA owns the orders worker's HPA; the reviews worker scales on CPU.
    assert [h["metadata"]["name"] for h in r.all("HorizontalPodAutoscaler")] == [
        "search-sparse-sidecar-api", "search-sparse-sidecar-worker-reviews",
    ]  # fmt: skip

    monitor = r.one("ServiceMonitor", "sparse-sidecar")["spec"]
    assert monitor["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"},
        {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"},
    ]
    scraped = [
        s for s in r.all("Service") if _selects(monitor["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert sorted(p["name"] for s in scraped for p in s["spec"]["ports"]) == ["http", "metrics"]

    dashboard = r.one("ConfigMap", "-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert json.loads(dashboard["data"]["sparse-sidecar.json"]) == json.loads(
        (CHART / "dashboards" / "sparse-sidecar.json").read_text()
    )

    policies = {p["metadata"]["name"]: p["spec"] for p in r.all("NetworkPolicy")}
    api_policy = policies["search-sparse-sidecar-api"]
    assert api_policy["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert len(api_policy["ingress"][0]["from"]) == 2  # callers plus the Prometheus namespace
    assert api_policy["policyTypes"] == ["Ingress", "Egress"]
    assert api_policy["egress"][0]["ports"] == [
        {"port": 53, "protocol": "UDP"},
        {"port": 53, "protocol": "TCP"},
    ]
    worker_policy = policies["search-sparse-sidecar-workers"]
    assert worker_policy["ingress"][0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]

    # Chart-managed secrets: the key file for the API, credentials as env for everyone.
    keys = r.one("Secret", "-api-keys")
    assert keys["stringData"]["api-keys"].split() == ["dev-key-one", "dev-key-two"]
    credentials = r.one("Secret", "-credentials")
    assert credentials["stringData"] == {
        "SIDECAR_KAFKA_SASL_PASSWORD": "kafka-secret",
        "ES_API_KEY": "es-secret",
    }
    for deployment in r.all("Deployment"):
        assert container(deployment)["envFrom"] == [{"secretRef": {"name": credentials["metadata"]["name"]}}]
        assert env_of(deployment)["SIDECAR_MAX_BATCH_TOKENS"] == "16384"
        assert "SIDECAR_KAFKA_SASL_PASSWORD" not in env_of(deployment)  # secrets never inline


def test_existing_secret_with_api_key_auth(rendered: dict[str, Rendered]) -> None:
    r = rendered["existing-secret"]
    assert r.all("Secret") == []  # nothing chart-managed: the Secrets are the operator's
    api = r.one("Deployment", "-api")
    assert env_of(api)["SIDECAR_API_KEYS_FILE"] == "/etc/sidecar/auth/api-keys"
    volume = next(v for v in pod_spec(api)["volumes"] if v["name"] == "api-keys")
    assert volume["secret"]["secretName"] == "sidecar-api-keys"
    assert volume["secret"]["items"] == [{"key": "keys.txt", "path": "api-keys"}]
    mounts = container(api)["volumeMounts"]
    assert {"name": "api-keys", "mountPath": "/etc/sidecar/auth", "readOnly": True} in mounts
    assert container(api)["envFrom"] == [{"secretRef": {"name": "sidecar-engine-credentials"}}]
    assert api["spec"]["replicas"] == 3 and r.all("HorizontalPodAutoscaler") == []
    assert r.one("PodDisruptionBudget", "-api")["spec"]["maxUnavailable"] == "34%"
    digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    assert container(api)["image"] == f"registry.example.com/search/sparse-sidecar@{digest}"
    assert pod_spec(api)["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert {"name": "engine-ca", "mountPath": "/etc/sidecar/ca", "readOnly": True} in mounts
    # Workers never see the API keys.
    worker = r.one("Deployment", "-worker-articles")
    assert "SIDECAR_API_KEYS_FILE" not in env_of(worker)
    assert "api-keys" not in {v["name"] for v in pod_spec(worker)["volumes"]}


def test_backfill_job_runs_sliced_pods(rendered: dict[str, Rendered]) -> None:
    job = rendered["existing-secret"].one("Job", "-backfill-r1")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert (spec["completions"], spec["parallelism"]) == (6, 3)
    assert spec["backoffLimitPerIndex"] == 3
    assert pod_spec(job)["restartPolicy"] == "Never"  # required by backoffLimitPerIndex
    args = container(job)["args"]
    assert args == [
        "backfill", "--pipeline", "/etc/sidecar/pipelines/articles.yaml", "--slices", "6",
        "--slice", "$(SIDECAR_BACKFILL_SLICE)", "--max-docs-per-second", "500",
    ]  # fmt: skip
    # $(VAR) in args expands only from variables the container itself defines.
    index_field = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert env_of(job)["SIDECAR_BACKFILL_SLICE"] == {"fieldRef": {"fieldPath": index_field}}
    assert "ports" not in container(job) and "livenessProbe" not in container(job)


@pytest.mark.parametrize("combo", PIPELINE_COMBOS)
def test_pipeline_files_are_valid_in_the_pods_environment(rendered: dict[str, Rendered], combo: str) -> None:
    """Every pipeline a pod runs passes the sidecar's own loader, with `${VAR}`s resolved from the
    pod's environment: the chart's plain env plus the keys of the Secrets the pod takes env from."""
    r = rendered[combo]
    files = r.one("ConfigMap", "-pipelines")["data"]
    chart_secrets = {s["metadata"]["name"]: set(s["stringData"]) for s in r.all("Secret")}
    checked = 0
    for workload in workloads(r):
        env = {name: value for name, value in env_of(workload).items() if isinstance(value, str)}
        for source in container(workload).get("envFrom", []):
            name = source["secretRef"]["name"]
            env |= dict.fromkeys(chart_secrets.get(name) or EXISTING_SECRET_KEYS[name], "from-secret")
        for arg in container(workload)["args"]:
            if arg.startswith(PIPELINE_DIR):
                config, problems = parse_pipeline_text(files[arg.removeprefix(PIPELINE_DIR)], arg, env)
                assert problems == [] and config is not None, [str(p) for p in problems]
                checked += 1
    assert checked >= len(files)  # every pipeline file is run by some pod
