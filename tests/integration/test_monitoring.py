"""The alert rules and the dashboard, tested like code and against a real Prometheus."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT
from tests.integration.procs import (
    ExporterProcess,
    parse,
    start_prometheus,
    tool,
    wait_for,
)

GRAFANA = ROOT / "grafana"
RULES = GRAFANA / "rules.yaml"
TESTS = GRAFANA / "rules_test.yaml"
DASHBOARD = GRAFANA / "dashboard.json"
RUNBOOK = ROOT / "exporter" / "runbook.md"


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


def runbook_sections() -> dict[str, str]:
    """The runbook's ``## <AlertName>`` sections by heading."""
    sections: dict[str, str] = {}
    heading = None
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            sections[heading] = ""
        elif heading is not None:
            sections[heading] += line + "\n"
    return sections


def test_alerts_carry_what_on_call_needs() -> None:
    uid = dashboard()["uid"]
    sections = runbook_sections()
    for rule in rules():
        if "alert" not in rule:
            continue
        name = rule["alert"]
        assert rule.get("for"), name
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        annotations = rule["annotations"]
        # dashboard_url only when a Grafana URL is configured (the Helm chart adds it).
        required = {"summary", "description", "runbook_url"}
        assert required <= set(annotations) <= required | {"dashboard_url"}, name
        if "dashboard_url" in annotations:
            assert f"/d/{uid}/" in annotations["dashboard_url"], name
        assert "example.com" not in " ".join(annotations.values()), name  # no placeholder host
        # The runbook every exporter serves at /runbook, at the alert's own section: that of
        # the alert's instance, or (no instance, or the instance is down) another exporter,
        # else the exporter's default address.
        anchor = name.lower()
        url = annotations["runbook_url"].strip()
        assert url.endswith(f"/runbook#{anchor}"), name
        assert url == f"http://{{{{ $labels.instance }}}}/runbook#{anchor}" or (
            "http://127.0.0.1:9469" in url and "acme_http01_exporter_build_info" in url
        ), name
        assert name in sections, f"exporter/runbook.md has no section for {name}"


def test_warnings_hand_over_to_the_critical_alert() -> None:
    """The far-from-renewal warnings leave a domain once AcmeHttp01RenewalAtRisk's condition
    has held for that alert's `for`: their lag must be that same duration, or an escalation
    has a silent gap (lag too short) or both alerts at once (too long)."""
    alerts = {r["alert"]: r for r in rules() if "alert" in r}
    critical = alerts["AcmeHttp01RenewalAtRisk"]
    assert critical["for"] == "30m" and critical["labels"]["severity"] == "critical"
    for name in ("AcmeHttp01ValidationFailing", "AcmeHttp01RedirectHopFailing"):
        expr = alerts[name]["expr"]
        assert alerts[name]["labels"]["severity"] == "warning"
        assert expr.count("time() + 1800") == 2, name
        assert "offset 30m" in expr, name


def test_runbook_covers_every_alert_in_plain_markdown() -> None:
    """One section per alert, each saying what it means, what Let's Encrypt will say, how to
    confirm, how to fix and when to silence; only headings, paragraphs, bullet lists and
    fenced code blocks (what the exporter's /runbook renderer handles)."""
    from exporter.markdown import anchor, render

    alerts = [r["alert"] for r in rules() if "alert" in r]
    sections = runbook_sections()
    assert sorted(sections) == sorted(alerts)
    for name, body in sections.items():
        for part in (
            "What it means:",
            "What Let's Encrypt will say:",
            "Confirm",
            "Fix",
            "When it is safe to silence:",
        ):
            assert part in body, (name, part)
        assert anchor(name) == name.lower()
    text = RUNBOOK.read_text()
    assert "acme-http01-exporter check" in text and "/domains/" in text
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code or not line:
            continue
        assert not re.match(r"\s*(\d+\.|>|\||<|    )", line), line
    assert not in_code
    html = render(text)
    for name in alerts:
        assert f'id="{name.lower()}"' in html, name


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
    assert {"cluster", "job", "perspective", "instance", "domain"} <= set(variables)
    for name in ("cluster", "job", "perspective", "instance"):
        # All is the regex .*, which matches a series without the label too.
        assert variables[name]["includeAll"], name
        assert variables[name]["allValue"] == ".*", name
    # Per-domain panels show one domain by default (Grafana selects the first), never all.
    assert not variables["domain"]["includeAll"]
    assert variables["domain"]["current"] == {}
    for expr in dashboard_exprs():
        assert not re.search(r'[^=!~]="\$', expr), expr  # =~ only: "All" must match absent labels
        if "$instance" in expr:  # every query follows every exporter variable
            assert "$cluster" in expr and "$job" in expr and "$perspective" in expr, expr
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
        "Failing domains by reason",
        "Renewal at risk",
        "Exporters",
    } <= titles


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

# Urgency follows the certificate: every demo host that serves HTTPS presents the lab's
# certificate (90 days, issued a day ago: renewal two months away), so its failures warn;
# cert-renewal-due's renewal is due in two days, and nxdomain and dnssec-bogus serve no
# certificate at all: critical.
EXPECTED_FIRING = {
    "AcmeHttp01RenewalAtRisk": {
        "cert-renewal-due.example.com",
        "nxdomain.example.com",
        "dnssec-bogus.example.com",
    },
    "AcmeHttp01ValidationFailing": {
        "wrong-aaaa.example.com",
        "caa-forbids.example.com",
        "cert-renewal-far.example.com",
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
    "AcmeHttp01CertificateExpiringSoon",
    "AcmeHttp01ResultsStale",
    "AcmeHttp01DomainsDropped",
    "AcmeHttp01ExporterDown",
    "AcmeHttp01ExporterAbsent",
    "AcmeHttp01ExporterNoIPv6",
    "AcmeHttp01ConfigReloadFailed",
    "AcmeHttp01ExporterOutOfResources",
}


def test_every_alert_is_expected_or_never_firing_on_the_demo() -> None:
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert set(EXPECTED_FIRING) | NEVER_FIRING == alerts
    assert not set(EXPECTED_FIRING) & NEVER_FIRING
    # No domain has both a warning and the critical alert.
    critical = EXPECTED_FIRING["AcmeHttp01RenewalAtRisk"]
    assert not critical & EXPECTED_FIRING["AcmeHttp01ValidationFailing"]
    assert not critical & EXPECTED_FIRING["AcmeHttp01RedirectHopFailing"]


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
    proc, base = start_prometheus(binary, tmp_path)
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
    families = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for name, _ in samples
        if name.startswith("acme_http01_")  # process_* and python_* are in their own table
    }
    assert families <= documented, families - documented
    assert parse  # the shared parser is used by scrape()
