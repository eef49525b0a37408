"""The Helm chart lints, renders with default, production and development values, every
manifest validates against a current Kubernetes schema, and the pod is set up to drain."""

from __future__ import annotations

import json
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from scripts.processes import ROOT

CHART = ROOT / "charts" / "graphgate"
PRODUCTION = yaml.safe_load((CHART / "values-production.yaml").read_text())
VALUE_SETS = {
    "defaults": {},
    "production": PRODUCTION,
    "development": {"redis": {"bundled": {"enabled": True}}, "autoscaling": {"enabled": False}},
    "ingress-and-routes": {
        "ingress": {"enabled": True, "host": "chat.example.com"},
        "config": {"REQUEST_TIMEOUT": "90"},
        "routesFile": (ROOT / "examples" / "routes.toml").read_text(),
        "promptFile": 'messages = [["system", "Be brief."], ["placeholder", "{history}"]]\n',
        "dashboard": {"enabled": True},
    },
}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = helm_python.Chart.load(CHART)
    files = chart.render(values, name="gg", namespace="default")
    return [
        doc
        for name, text in files.items()
        if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def one(manifests: list[dict[str, Any]], kind: str, component: str = "server") -> dict[str, Any]:
    (found,) = [
        m
        for m in manifests
        if m["kind"] == kind
        and m["metadata"].get("labels", {}).get("app.kubernetes.io/component", "server")
        == component
    ]
    return found


def test_the_chart_lints_without_errors() -> None:
    result = helm_python.lint(CHART, strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_manifest_validates_against_kubernetes(values: dict[str, Any]) -> None:
    manifests = render(values)
    assert {m["kind"] for m in manifests} >= {"Deployment", "Service", "ConfigMap"}
    for manifest in manifests:
        kubernetes_validate.validate(manifest, latest_version(), strict=True)


def test_the_pod_probes_drains_and_runs_locked_down() -> None:
    manifests = render(PRODUCTION)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "10"]
    config = one(manifests, "ConfigMap")["data"]
    assert config["GRACEFUL_TIMEOUT"] == "60"
    assert pod["terminationGracePeriodSeconds"] > 60 + 10
    assert pod["securityContext"]["runAsNonRoot"] is True
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    assert {"secretRef": {"name": "graphgate-keys"}} in container["envFrom"]
    assert config["REDIS_URL"].startswith("redis://")
    assert {m["kind"] for m in manifests} >= {
        "ServiceAccount",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }


def test_the_bundled_redis_is_reached_through_its_own_service() -> None:
    manifests = render(VALUE_SETS["development"])
    redis_service = one(manifests, "Service", component="redis")
    config = one(manifests, "ConfigMap")["data"]
    assert config["REDIS_URL"] == f"redis://{redis_service['metadata']['name']}:6379/0"
    server_selector = one(manifests, "Service")["spec"]["selector"]
    assert server_selector["app.kubernetes.io/component"] == "server"


def test_a_redis_cluster_is_named_to_the_pods() -> None:
    values = {"redis": {"url": "rediss://clustercfg.example:6379", "cluster": True}}
    config = one(render(values), "ConfigMap")["data"]
    assert config["REDIS_URL"] == "rediss://clustercfg.example:6379"
    assert config["REDIS_CLUSTER"] == "true"
    assert "REDIS_CLUSTER" not in one(render({}), "ConfigMap")["data"]


def test_values_outside_the_schema_are_refused() -> None:
    with pytest.raises(helm_python.HelmValuesError, match="workers"):
        render({"workers": 0})


def test_the_ingress_keeps_streams_streaming_past_the_request_timeout() -> None:
    ingress = one(render(VALUE_SETS["ingress-and-routes"]), "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 90
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "chat.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"]["port"]["name"] == "http"
    assert not [m for m in render({}) if m["kind"] == "Ingress"]  # off unless enabled


def test_the_route_and_prompt_files_are_mounted_from_a_config_map() -> None:
    values = VALUE_SETS["ingress-and-routes"]
    manifests = render(values)
    files = next(m for m in manifests if m["metadata"]["name"].endswith("-files"))
    assert files["data"]["routes.toml"].strip() == values["routesFile"].strip()
    settings = next(
        m for m in manifests if m["kind"] == "ConfigMap" and "APP_ENV" in m.get("data", {})
    )
    assert settings["data"]["ROUTES_FILE"] == "/etc/graphgate/routes.toml"
    assert settings["data"]["PROMPT_FILE"] == "/etc/graphgate/prompt.toml"
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "files"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/graphgate", True)


def test_the_grafana_dashboard_ships_as_a_sidecar_config_map_when_enabled() -> None:
    assert not [m for m in render({}) if m["metadata"]["name"].endswith("-dashboard")]
    manifests = render({"dashboard": {"enabled": True}})
    (config_map,) = [m for m in manifests if m["metadata"]["name"] == "gg-graphgate-dashboard"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(config_map["data"]["graphgate.json"])
    assert shipped == json.loads((CHART / "dashboards" / "graphgate.json").read_text())
