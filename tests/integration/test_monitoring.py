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
    write_config,
)

GRAFANA = ROOT / "grafana"
RULES = GRAFANA / "rules.yaml"
TESTS = GRAFANA / "rules_test.yaml"
DASHBOARD = GRAFANA / "dashboard.json"
RUNBOOK = ROOT / "exporter" / "runbook.md"
# The runbook's address: the project's repository (the chart's `home`), on its main branch.
CHART_HOME = yaml.safe_load((ROOT / "helm" / "acme-http01-exporter" / "Chart.yaml").read_text())[
    "home"
]
RUNBOOK_URL = f"{CHART_HOME}/blob/main/exporter/runbook.md"


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
        # The runbook in the project's repository, at the alert's own section (GitHub's
        # anchor for `## <AlertName>`): a link that opens wherever the alert is read, unlike
        # a pod address.
        assert annotations["runbook_url"] == f"{RUNBOOK_URL}#{name.lower()}", name
        assert name in sections, f"exporter/runbook.md has no section for {name}"
        for key, text in annotations.items():
            # No link to an instance (a pod address, plain http even with TLS on) and at
            # most one query per annotation.
            assert "://{{ $labels.instance" not in text, (name, key)
            assert len(re.findall(r"\bquery\b", text)) <= 1, (name, key)


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


def test_every_expression_parses_and_uses_real_metrics(
    demo: ExporterProcess, tmp_path: Path
) -> None:
    import promql_parser

    # The web config's own series exist only with --web.config.file: a second exporter with
    # one (headers only), scraped once.
    web = write_config(
        tmp_path / "web.yml",
        {"http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}}},
    )
    with_web_config = ExporterProcess("--demo", "--web.config.file", str(web))
    try:
        web_names = exposed_names(with_web_config)
    finally:
        with_web_config.stop()
    assert "acme_http01_web_config_last_reload_successful" in web_names
    known = exposed_names(demo) | web_names | {r["record"] for r in rules() if "record" in r}
    known.add("up")
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


def test_every_rule_selects_the_metrics_job_only() -> None:
    """Every series a rule reads carries the rules' selector, the job that scrapes /metrics
    (the chart rewrites it): series of a /probe job (no certificate, no exporter-level series)
    never count, present or absent."""
    import promql_parser

    for rule in rules():
        selectors: list[tuple[str, set[tuple[str, str, str]]]] = []

        def visit(
            node: Any, selectors: list[tuple[str, set[tuple[str, str, str]]]] = selectors
        ) -> bool:
            if isinstance(node, promql_parser.VectorSelector):
                matchers = {(m.name, str(m.op), m.value) for m in node.matchers.matchers}
                selectors.append((node.name, matchers))
            return True

        promql_parser.walk(promql_parser.parse(rule["expr"]), pre_visit=visit)  # type: ignore[attr-defined]
        assert selectors, rule
        for name, matchers in selectors:
            assert ("job", "MatchOp.Equal", METRICS_JOB) in matchers, (rule.get("alert"), name)


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
    "AcmeHttp01WebConfigReloadFailed",
    "AcmeHttp01NoFirstResult",
    "AcmeHttp01ExporterOutOfResources",
    "AcmeHttp01DiscoverySourceDown",
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


METRICS_JOB = "acme-http01-exporter"
PROBE_JOB = "acme-http01-probe"
# Probed as blackbox users do: a healthy domain, a failing one far from renewal, and two
# without a certificate (a /probe answer never carries certificate series).
PROBED = (
    "healthy.example.com",
    "wrong-aaaa.example.com",
    "nxdomain.example.com",
    "dnssec-bogus.example.com",
)


def run_prometheus(demo: ExporterProcess, directory: Path, *, probe: bool) -> tuple[Any, str]:
    """A real Prometheus evaluating the canonical rules (every `for` cut to 1s) on the demo
    exporter's /metrics job, and, when `probe`, on a /probe job beside it."""
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"  # the test copy fires at once; the real one waits
    (directory / "rules.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    target = demo.base.removeprefix("http://")
    jobs: list[dict[str, Any]] = [
        {"job_name": METRICS_JOB, "static_configs": [{"targets": [target]}]}
    ]
    if probe:
        jobs.append(
            {
                "job_name": PROBE_JOB,
                "metrics_path": "/probe",
                "scrape_timeout": "1s",
                "static_configs": [{"targets": list(PROBED)}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": target},
                ],
            }
        )
    (directory / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(directory / "rules.yaml")],
                "scrape_configs": jobs,
            }
        )
    )
    return start_prometheus(tool("prometheus"), directory)


def firing(base: str) -> dict[str, set[str]]:
    """Firing alerts: name -> the domains (or "") they fire for."""
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


def test_with_a_real_prometheus(demo: ExporterProcess, tmp_path: Path) -> None:
    proc, base = run_prometheus(demo, tmp_path, probe=False)
    try:
        # Prometheus applies scrape targets on a 5 s tick: allow for the first scrape.
        wait_for(
            lambda: all(firing(base).get(k) == v for k, v in EXPECTED_FIRING.items()),
            60,
            f"alerts never matched; last: {firing(base)}",
        )
        now = firing(base)
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


def test_a_probe_job_beside_the_metrics_job_changes_no_alert(
    demo: ExporterProcess, tmp_path: Path
) -> None:
    """Blackbox-style /probe scrapes of the same exporter (validation series only: no
    certificate, no exporter-level series) fire exactly what the /metrics job alone fires."""
    proc, base = run_prometheus(demo, tmp_path, probe=True)
    try:
        probed = f'acme_http01_validation_success{{job="{PROBE_JOB}"}}'

        def settled() -> bool:
            # Every probed domain scraped at least 5 times (4 s and more of rule evaluations
            # at 1 s with `for: 1s`) and every alert the /metrics job fires firing.
            try:
                counts = api(base, "/api/v1/query", query=f"count_over_time({probed}[1m])")
            except OSError:  # not listening yet
                return False
            counts = counts["result"]
            return (
                len(counts) == len(PROBED)
                and all(float(c["value"][1]) >= 5 for c in counts)
                and set(EXPECTED_FIRING) <= set(firing(base))
            )

        wait_for(settled, 90, "the probe job's series or the alerts never came")
        # The set after the probe series have been there for 5 s and more: a rule that fired
        # on them (pending one evaluation, firing the next) is firing by now.
        assert firing(base) == EXPECTED_FIRING
        alerts = api(base, "/api/v1/alerts")["alerts"]  # and none of them from the probe job
        assert {a["labels"].get("job", METRICS_JOB) for a in alerts} == {METRICS_JOB}
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
