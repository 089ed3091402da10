"""Generates grafana/dashboard.json (Grafana 10 and 11; stable uid ``acme-http01``).

    python grafana/dashboard.py            # rewrite dashboard.json
    python grafana/dashboard.py --check    # exit 1 if dashboard.json is out of date

The committed JSON is what users import and what the Helm chart ships; a test fails
when it differs from this generator's output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

UID = "acme-http01"
TITLE = "acme-http01-exporter"
OUT = Path(__file__).with_name("dashboard.json")
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", instance=~"$instance"'
DSEL = f'{SEL}, domain=~"$domain"'

_ids = iter(range(1, 1000))


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "datasource": DS,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "refId": ref,
        "range": True,
        "instant": False,
    }
    out.update(extra)
    return out


def panel(
    kind: str,
    title: str,
    grid: tuple[int, int, int, int],
    targets: list[dict[str, Any]],
    description: str = "",
    **extra: Any,
) -> dict[str, Any]:
    x, y, w, h = grid
    out: dict[str, Any] = {
        "id": next(_ids),
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
    }
    out.update(extra)
    return out


def row(title: str, y: int) -> dict[str, Any]:
    return {
        "id": next(_ids),
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def stat(
    title: str, expr: str, x: int, y: int, description: str, bad: bool = True, w: int = 4
) -> dict[str, Any]:
    steps = (
        [{"color": "green", "value": None}, {"color": "red", "value": 1}]
        if bad
        else [{"color": "blue", "value": None}]
    )
    return panel(
        "stat",
        title,
        (x, y, w, 4),
        [target(expr, ref="A", instant=True, range=False)],
        description,
        fieldConfig={
            "defaults": {"thresholds": {"mode": "absolute", "steps": steps}, "unit": "none"},
            "overrides": [],
        },
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value",
        },
    )


def timeseries(
    title: str,
    targets: list[dict[str, Any]],
    grid: tuple[int, int, int, int],
    description: str,
    unit: str = "none",
    **custom: Any,
) -> dict[str, Any]:
    return panel(
        "timeseries",
        title,
        grid,
        targets,
        description,
        fieldConfig={
            "defaults": {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 0, **custom}},
            "overrides": [],
        },
        options={
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def quantiles(histogram: str) -> list[dict[str, Any]]:
    """p50 and p99 of a histogram over all series of the selected exporters."""
    return [
        target(
            f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{{{SEL}}}"
            "[$__rate_interval])))",
            f"p{round(q * 100)}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.99, "B"))
    ]


def variable(name: str, label: str, query: str, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": multi,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def build() -> dict[str, Any]:
    global _ids
    _ids = iter(range(1, 1000))
    panels: list[dict[str, Any]] = [row("Fleet", 0)]
    stats = [
        ("Domains", f"sum(acme_http01_domains{{{SEL}}})", "Configured domains.", False),
        (
            "Failing",
            f"count(acme_http01_validation_success{{{DSEL}}} == 0) or vector(0)",
            "Domains whose Let's Encrypt validation is predicted to fail.",
            True,
        ),
        (
            "AAAA mismatch",
            f"sum(acme_http01_aaaa_mismatch{{{DSEL}}}) or vector(0)",
            "Domains whose first AAAA and first A address answer differently.",
            True,
        ),
        (
            "IPv4 fallback",
            f"sum(acme_http01_ipv4_fallback{{{DSEL}}}) or vector(0)",
            "Domains whose last validation needed Let's Encrypt's IPv6-to-IPv4 fallback.",
            True,
        ),
        (
            "Redirect-hop failure",
            f"sum(acme_http01_redirect_hop_failure{{{DSEL}}}) or vector(0)",
            "Domains failing on a redirect hop (no fallback there).",
            True,
        ),
        (
            "OK",
            f"sum(acme_http01_validation_success{{{DSEL}}}) or vector(0)",
            "Domains Let's Encrypt would validate.",
            False,
        ),
    ]
    for i, (title, expr, description, bad) in enumerate(stats):
        panels.append(stat(title, expr, 4 * i, 1, description, bad))

    panels.append(row("Domains", 5))
    table_targets = [
        target(
            f"acme_http01_validation_problem{{{DSEL}}} == 1",
            ref="A",
            format="table",
            instant=True,
            range=False,
        ),
        target(
            f"acme_http01_aaaa_mismatch{{{DSEL}}}",
            ref="B",
            format="table",
            instant=True,
            range=False,
        ),
        target(
            f"acme_http01_ipv4_fallback{{{DSEL}}}",
            ref="C",
            format="table",
            instant=True,
            range=False,
        ),
        target(
            f"acme_http01_redirect_hop_failure{{{DSEL}}}",
            ref="D",
            format="table",
            instant=True,
            range=False,
        ),
        target(
            f"time() - acme_http01_last_validation_timestamp_seconds{{{DSEL}}}",
            ref="E",
            format="table",
            instant=True,
            range=False,
        ),
    ]
    panels.append(
        panel(
            "table",
            "Domains and their current problem",
            (0, 6, 24, 10),
            table_targets,
            "One row per domain: the problem Let's Encrypt would report (type and reason; "
            "none on success), the AAAA mismatch, the IPv4 fallback, a redirect-hop failure and "
            "the age of the result. The exporter's /domains/<name> page has the full trace.",
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {
                            "Time": True,
                            "job": True,
                            "__name__": True,
                            "Value #A": True,
                        },
                        "indexByName": {"domain": 0, "instance": 1, "type": 2, "reason": 3},
                        "renameByName": {
                            "Value #B": "AAAA mismatch",
                            "Value #C": "IPv4 fallback",
                            "Value #D": "redirect-hop failure",
                            "Value #E": "result age",
                        },
                    },
                },
            ],
            fieldConfig={
                "defaults": {},
                "overrides": [
                    {
                        "matcher": {"id": "byName", "options": "result age"},
                        "properties": [{"id": "unit", "value": "s"}],
                    },
                    {
                        "matcher": {"id": "byName", "options": "reason"},
                        "properties": [
                            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                            {
                                "id": "mappings",
                                "value": [
                                    {
                                        "type": "value",
                                        "options": {"none": {"color": "green", "index": 0}},
                                    }
                                ],
                            },
                            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                        ],
                    },
                ],
            },
            options={"showHeader": True, "sortBy": [{"displayName": "reason", "desc": True}]},
        )
    )

    panels.append(row("Timelines", 16))
    panels.append(
        panel(
            "state-timeline",
            "Predicted outcome per domain",
            (0, 17, 24, 8),
            [target(f"acme_http01_validation_success{{{DSEL}}}", "{{domain}}")],
            "1 (green): Let's Encrypt would succeed; 0 (red): it would fail.",
            fieldConfig={
                "defaults": {
                    "mappings": [
                        {
                            "type": "value",
                            "options": {
                                "0": {"text": "fail", "color": "red", "index": 0},
                                "1": {"text": "ok", "color": "green", "index": 1},
                            },
                        }
                    ],
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                    },
                },
                "overrides": [],
            },
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        )
    )
    panels.append(
        timeseries(
            "IPv4 fallback and AAAA mismatch",
            [
                target(f"acme_http01_ipv4_fallback{{{DSEL}}} == 1", "{{domain}} fallback", "A"),
                target(f"acme_http01_aaaa_mismatch{{{DSEL}}} == 1", "{{domain}} mismatch", "B"),
            ],
            (0, 25, 12, 8),
            "Domains that passed only through the IPv4 fallback, and whose AAAA and A answer "
            "differently.",
            drawStyle="points",
            pointSize=6,
        )
    )
    panels.append(
        timeseries(
            "Redirect-hop failures",
            [
                target(
                    f"sum by (domain, reason) (increase(acme_http01_redirect_hop_failures_total"
                    f"{{{DSEL}}}[$__rate_interval]))",
                    "{{domain}} {{reason}}",
                ),
            ],
            (12, 25, 12, 8),
            "Validations that failed on a redirect hop, by reason.",
            drawStyle="bars",
        )
    )

    panels.append(row("DNS and duration", 33))
    panels.append(
        timeseries(
            "Valid addresses per family",
            [
                target(f"acme_http01_dns_addresses{{{DSEL}}}", "{{domain}} {{family}}"),
            ],
            (0, 34, 12, 8),
            "A and AAAA addresses left after the reserved-address filter.",
        )
    )
    panels.append(
        timeseries(
            "Validation duration",
            [
                target(f"acme_http01_validation_duration_seconds{{{DSEL}}}", "{{domain}}"),
            ],
            (12, 34, 12, 8),
            "Duration of each domain's last validation (a dial timeout costs 10 s).",
            unit="s",
        )
    )

    panels.append(row("Exporter health", 42))
    health = [
        (
            "Config reload OK",
            f"min(acme_http01_config_last_reload_successful{{{SEL}}})",
            "1 if the last reload succeeded.",
        ),
        (
            "IPv6 capable",
            f"min(acme_http01_exporter_ipv6_capable{{{SEL}}})",
            "0 means IPv6 verdicts cannot be measured from this exporter.",
        ),
        (
            "In flight",
            f"sum(acme_http01_validations_in_flight{{{SEL}}})",
            "Validations running now.",
        ),
    ]
    for i, (title, expr, description) in enumerate(health):
        panels.append(stat(title, expr, 4 * i, 43, description, bad=False))
    panels.append(
        timeseries(
            "Scheduler delay",
            quantiles("acme_http01_scheduler_delay_seconds"),
            (12, 43, 12, 8),
            "Time between a validation's scheduled time and its start.",
            unit="s",
        )
    )
    panels.append(
        timeseries(
            "Skipped runs",
            [
                target(
                    f"sum by (reason) (rate(acme_http01_scheduler_skipped_runs_total{{{SEL}}}"
                    "[$__rate_interval]))",
                    "{{reason}}",
                ),
            ],
            (0, 47, 12, 8),
            "Runs skipped because the previous one was still running.",
            unit="ops",
        )
    )
    panels.append(
        timeseries(
            "Validation latency (all domains)",
            quantiles("acme_http01_validation_latency_seconds"),
            (12, 51, 12, 8),
            "Validation durations across all domains.",
            unit="s",
        )
    )

    return {
        "uid": UID,
        "title": TITLE,
        "description": "Let's Encrypt HTTP-01 validation outcomes, predicted with the CA's own "
        "IPv6/IPv4 fallback and redirect rules.",
        "tags": ["acme", "letsencrypt", "http-01", "ipv6"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "links": [],
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                },
                variable("job", "Job", "label_values(acme_http01_domains, job)"),
                variable(
                    "instance",
                    "Instance",
                    'label_values(acme_http01_domains{job=~"$job"}, instance)',
                ),
                variable(
                    "domain",
                    "Domain",
                    f"label_values(acme_http01_validation_success{{{SEL}}}, domain)",
                ),
            ]
        },
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render()
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python grafana/dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
