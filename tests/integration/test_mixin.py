"""The jsonnet mixin (mixin/), rendered with the jsonnet library as a user vendors it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.integration.procs import tool
from tests.integration.test_helm import RULE_ON, one, render, values

MIXIN = ROOT / "mixin"
GRAFANA = ROOT / "grafana"
DEFAULT_SELECTOR = 'job="acme-http01-exporter"'
SELECTOR = 'job="acme",cluster="eu"'
RUNBOOK_BASE = "https://wiki.example.net/acme-http01/runbook"
GRAFANA_BASE = "https://grafana.example.net/"


def render_mixin(tmp_path: Path, config: dict[str, str] | None = None) -> dict[str, Any]:
    """prometheusAlerts, prometheusRules and grafanaDashboards of the mixin vendored alone (a
    copy of mixin/ and nothing else on the import path, as jsonnet-bundler lays it out), with
    ``config`` merged into its _config."""
    import _jsonnet  # type: ignore[import-untyped]

    vendor = tmp_path / "vendor"
    shutil.copytree(MIXIN, vendor / "acme-http01-exporter-mixin")
    main = tmp_path / "main.jsonnet"
    main.write_text(
        "local mixin = (import 'acme-http01-exporter-mixin/mixin.libsonnet')"
        f" + {{ _config+:: {json.dumps(config or {})} }};\n"
        "{ alerts: mixin.prometheusAlerts, rules: mixin.prometheusRules,"
        " dashboards: mixin.grafanaDashboards }\n"
    )
    return dict(json.loads(_jsonnet.evaluate_file(str(main), jpathdir=[str(vendor)])))


def groups(rendered: dict[str, Any]) -> list[dict[str, Any]]:
    return list(rendered["rules"]["groups"]) + list(rendered["alerts"]["groups"])


def all_rules(rendered: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in groups(rendered) for rule in group["rules"]]


def canonical_groups() -> list[dict[str, Any]]:
    return list(yaml.safe_load((GRAFANA / "rules.yaml").read_text())["groups"])


def test_mixin_copies_are_the_canonical_bytes() -> None:
    for name in ("rules.yaml", "dashboard.json"):
        assert (MIXIN / name).read_bytes() == (GRAFANA / name).read_bytes(), name


def test_default_config_renders_the_shipped_rules_and_dashboard(tmp_path: Path) -> None:
    rendered = render_mixin(tmp_path)
    canonical = canonical_groups()
    # Every group of the file, unchanged, once: recording rules in prometheusRules, alerts in
    # prometheusAlerts.
    assert sorted(groups(rendered), key=lambda g: str(g["name"])) == sorted(
        canonical, key=lambda g: str(g["name"])
    )
    assert rendered["rules"]["groups"] and rendered["alerts"]["groups"]
    assert all("record" in r for g in rendered["rules"]["groups"] for r in g["rules"])
    assert all("alert" in r for g in rendered["alerts"]["groups"] for r in g["rules"])
    dashboard = json.loads((GRAFANA / "dashboard.json").read_text())
    assert rendered["dashboards"] == {"acme-http01-exporter.json": dashboard}


def test_custom_selector_and_runbook_reach_every_rule(tmp_path: Path) -> None:
    rendered = render_mixin(tmp_path, {"selector": SELECTOR, "runbookBaseUrl": RUNBOOK_BASE})
    canonical = {r.get("alert") or r["record"]: r for g in canonical_groups() for r in g["rules"]}
    rules = all_rules(rendered)
    assert len(rules) == len(canonical)
    assert DEFAULT_SELECTOR not in json.dumps(groups(rendered))
    for rule in rules:
        source = canonical[rule.get("alert") or rule["record"]]
        assert rule["expr"].count(SELECTOR) == source["expr"].count(DEFAULT_SELECTOR) > 0, rule
        assert rule["expr"] == source["expr"].replace(DEFAULT_SELECTOR, SELECTOR), rule
        if "alert" in rule:
            annotations = rule["annotations"]
            assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#{rule['alert'].lower()}"
            assert "dashboard_url" not in annotations  # no Grafana URL configured
            for key, text in source["annotations"].items():
                if key != "runbook_url":
                    assert annotations[key] == text.replace(DEFAULT_SELECTOR, SELECTOR), key


def test_custom_rules_pass_promtool(tmp_path: Path) -> None:
    rendered = render_mixin(
        tmp_path,
        {"selector": SELECTOR, "runbookBaseUrl": RUNBOOK_BASE, "dashboardBaseUrl": GRAFANA_BASE},
    )
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups(rendered)}))
    proc = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(all_rules(rendered))} rules found" in proc.stdout


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"selector": SELECTOR, "runbookBaseUrl": RUNBOOK_BASE, "dashboardBaseUrl": GRAFANA_BASE},
    ],
    ids=["defaults", "custom"],
)
def test_mixin_renders_what_the_helm_chart_renders(config: dict[str, str], tmp_path: Path) -> None:
    """The mixin and the chart's PrometheusRule apply the same settings the same way."""
    sets = [RULE_ON, f"prometheusRule.selector={DEFAULT_SELECTOR}"]
    # --set splits at commas: the selector's are escaped.
    sets += [f"prometheusRule.{key}={value}".replace(",", r"\,") for key, value in config.items()]
    chart = one(render(values("default"), *sets), "PrometheusRule")["spec"]["groups"]
    assert groups(render_mixin(tmp_path, config)) == chart
