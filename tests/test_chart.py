"""The Helm chart lints, renders with default, production and development values, every
manifest validates against a current Kubernetes schema, and the pod is set up to drain."""

from __future__ import annotations

from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from tests.processes import ROOT

CHART = ROOT / "charts" / "graphgate"
PRODUCTION = yaml.safe_load((CHART / "values-production.yaml").read_text())
VALUE_SETS = {
    "defaults": {},
    "production": PRODUCTION,
    "development": {"redis": {"bundled": {"enabled": True}}, "autoscaling": {"enabled": False}},
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


def test_values_outside_the_schema_are_refused() -> None:
    with pytest.raises(helm_python.HelmValuesError, match="workers"):
        render({"workers": 0})
