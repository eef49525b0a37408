"""The chart's Grafana dashboard passes Grafana's own dashboard schema (@grafana/schema, type
checked strictly: `tests/grafana/check.mjs`), a broken copy does not, and every metric it
queries is one graphgate exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from prometheus_client import REGISTRY

import graphs.metrics  # noqa: F401 - registers graphgate's metrics
from scripts.processes import ROOT

DASHBOARD = ROOT / "charts" / "graphgate" / "dashboards" / "graphgate.json"
CHECK = ROOT / "tests" / "grafana" / "check.mjs"


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(CHECK), str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_the_dashboard_passes_grafanas_schema_check() -> None:
    result = schema_check(DASHBOARD)
    assert result.returncode == 0, result.stderr


def test_a_dashboard_with_a_wrong_key_or_type_fails_the_check(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    dashboard["panels"][1]["gridpos"] = dashboard["panels"][1].pop("gridPos")
    dashboard["schemaVersion"] = "41"
    (broken := tmp_path / "broken.json").write_text(json.dumps(dashboard))
    result = schema_check(broken)
    assert result.returncode == 1
    assert "gridpos" in result.stderr
    assert "Type 'string' is not assignable to type 'number'" in result.stderr  # schemaVersion


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    exported = {
        sample
        for family in REGISTRY.collect()
        if family.name.startswith("graphgate_")
        for sample in (family.name, f"{family.name}_total", f"{family.name}_bucket")
    }
    queries = [
        target["expr"]
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel.get("targets", [])
    ]
    queried = {name for query in queries for name in re.findall(r"graphgate_\w+", query)}
    assert queried
    assert queried <= exported, queried - exported
