"""The alert rules and the dashboard, tested like code and against a real Prometheus."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.integration.procs import ExporterProcess, parse, wait_for

GRAFANA = ROOT / "grafana"
RULES = GRAFANA / "rules.yaml"
TESTS = GRAFANA / "rules_test.yaml"
DASHBOARD = GRAFANA / "dashboard.json"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (Debian package prometheus)")
        pytest.skip(f"{name} not installed")
    return path


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def substitute(expr: str) -> str:
    """Grafana variables replaced by values any PromQL parser takes (the renderer's rule)."""
    sys.path.insert(0, str(GRAFANA))
    try:
        import render_png
    finally:
        sys.path.remove(str(GRAFANA))
    return str(render_png.substitute(expr))


# ------------------------------------------------------------------------- rules


def test_promtool_check_rules() -> None:
    proc = subprocess.run(
        [tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules())} rules found" in proc.stdout


def test_promtool_unit_tests() -> None:
    proc = subprocess.run(
        [tool("promtool"), "test", "rules", str(TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=GRAFANA,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_rule_has_firing_and_quiet_tests() -> None:
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    exprs = [case["expr"] for test in tests for case in test.get("promql_expr_test", [])]
    for rule in rules():
        if "alert" in rule:
            mine = [c for c in cases if c["alertname"] == rule["alert"]]
            assert any(c["exp_alerts"] for c in mine), f"{rule['alert']} never fires in a test"
            assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} always fires"
        else:
            assert any(rule["record"] in e for e in exprs), f"{rule['record']} is not tested"


def test_alerts_carry_what_on_call_needs() -> None:
    uid = dashboard()["uid"]
    for rule in rules():
        if "alert" not in rule:
            continue
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "dashboard_url", "runbook_url"}
        assert f"/d/{uid}/" in annotations["dashboard_url"], rule["alert"]
        assert annotations["runbook_url"].startswith("https://"), rule["alert"]


# --------------------------------------------------------------------- dashboard


def test_dashboard_json_is_generated_and_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(GRAFANA / "dashboard.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_dashboard_structure() -> None:
    board = dashboard()
    assert board["uid"] == "acme-http01"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"job", "instance", "domain"} <= set(variables)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in board["panels"]:
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert p["description"], p["title"]
    titles = {p["title"] for p in board["panels"]}
    assert {
        "Failing",
        "AAAA mismatch",
        "IPv4 fallback",
        "Redirect-hop failure",
        "Domains and their current problem",
        "Valid addresses per family",
        "Validation duration",
        "Config reload OK",
        "IPv6 capable",
        "Scheduler delay",
        "Skipped runs",
    } <= titles


@pytest.fixture(scope="module")
def demo() -> Iterator[ExporterProcess]:
    exporter = ExporterProcess("--demo")
    try:
        exporter.wait_ready(40)
        yield exporter
    finally:
        exporter.stop()


def exposed_names(exporter: ExporterProcess) -> set[str]:
    _, samples = exporter.scrape()
    names = {name for name, _ in samples}
    for name in list(names):  # histogram and counter families by their base name too
        names.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return names


def test_every_expression_parses_and_uses_real_metrics(demo: ExporterProcess) -> None:
    import promql_parser

    known = exposed_names(demo) | {r["record"] for r in rules() if "record" in r} | {"up"}
    exprs = dashboard_exprs() + [r["expr"] for r in rules()]
    for expr in exprs:
        ast = promql_parser.parse(substitute(expr))
        used: set[str] = set()

        def visit(node: Any, used: set[str] = used) -> bool:
            if isinstance(node, promql_parser.VectorSelector) and node.name:
                used.add(node.name)
            return True

        promql_parser.walk(ast, pre_visit=visit)  # type: ignore[attr-defined]
        assert used, expr
        assert used <= known, (expr, used - known)


def test_dashboard_expressions_pass_promtool(tmp_path: Path) -> None:
    group = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:expr_{i}", "expr": substitute(e)}
                    for i, e in enumerate(dashboard_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(group))
    proc = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------ real Prometheus e2e

EXPECTED_FIRING = {
    "AcmeHttp01ValidationFailing": {
        "wrong-aaaa.example.com",
        "nxdomain.example.com",
        "caa-forbids.example.com",
        "dnssec-bogus.example.com",
    },
    "AcmeHttp01RedirectHopFailing": {"aaaa-timeout-https.example.com", "ipv6-dead-443.example.com"},
    "AcmeHttp01AAAAMismatch": {
        "wrong-aaaa.example.com",
        "aaaa-timeout.example.com",
        "aaaa-refused.example.com",
        "aaaa-timeout-https.example.com",
    },
    "AcmeHttp01IPv4FallbackOnly": {"aaaa-timeout.example.com", "aaaa-refused.example.com"},
    "AcmeHttp01FixedByPerHopPolicy": {
        "aaaa-timeout-https.example.com",
        "ipv6-dead-443.example.com",
    },
    "AcmeHttp01DNSFamilyLookupFailing": {"aaaa-servfail.example.com"},
    # The demo lab's DNS server is authoritative, not a validating resolver.
    "AcmeHttp01ResolverNotValidating": {""},
}
NEVER_FIRING = {
    "AcmeHttp01ResultsStale",
    "AcmeHttp01ExporterDown",
    "AcmeHttp01ExporterAbsent",
    "AcmeHttp01ExporterNoIPv6",
    "AcmeHttp01ConfigReloadFailed",
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else base + path
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]


def test_with_a_real_prometheus(demo: ExporterProcess, tmp_path: Path) -> None:
    binary = tool("prometheus")
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"  # the test copy fires at once; the real one waits
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    target = demo.base.removeprefix("http://")
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp_path / "rules.yaml")],
                "scrape_configs": [
                    {"job_name": "acme-http01-exporter", "static_configs": [{"targets": [target]}]}
                ],
            }
        )
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def firing() -> dict[str, set[str]]:
            out: dict[str, set[str]] = {}
            try:
                alerts = api(base, "/api/v1/alerts")["alerts"]
            except OSError:
                return out
            for alert in alerts:
                if alert["state"] == "firing":
                    name = alert["labels"]["alertname"]
                    out.setdefault(name, set()).add(alert["labels"].get("domain", ""))
            return out

        # Prometheus applies scrape targets on a 5 s tick: allow for the first scrape.
        wait_for(
            lambda: all(firing().get(k) == v for k, v in EXPECTED_FIRING.items()),
            60,
            f"alerts never matched; last: {firing()}",
        )
        now = firing()
        assert not (set(now) & NEVER_FIRING), now
        for expr in dashboard_exprs():
            result = api(base, "/api/v1/query", query=substitute(expr))["result"]
            assert result, f"no data for dashboard query {expr}"
        output = Path(os.environ.get("ACME_DASHBOARD_PNG", tmp_path / "dashboard.png"))
        sys.path.insert(0, str(GRAFANA))
        try:
            import render_png
        finally:
            sys.path.remove(str(GRAFANA))
        render_png.render(base, output, seconds=60)
        assert output.stat().st_size > 20_000
    finally:
        proc.terminate()
        proc.wait(20)


def test_scrape_names_match_the_readme(demo: ExporterProcess) -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`(acme_http01_[a-z0-9_]+)`", readme))
    _, samples = demo.scrape()
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name, _ in samples}
    assert families <= documented, families - documented
    assert parse  # the shared parser is used by scrape()
