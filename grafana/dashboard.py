"""Generates grafana/dashboard.json (Grafana 10 and 11; stable uid ``acme-http01``).

    python grafana/dashboard.py            # rewrite dashboard.json
    python grafana/dashboard.py --check    # exit 1 if dashboard.json is out of date

The committed JSON is what users import and what the Helm chart ships; a test fails
when it differs from this generator's output.

Built for 10,000 domains (tests/integration/test_dashboard_scale.py runs every query against
a Prometheus holding that many and bounds the series each returns and the samples it reads):

* the fleet panels aggregate (counts, counts by reason);
* the two tables list the worst ``TABLE_ROWS`` domains (failing first, then at risk) and the
  ``AT_RISK_ROWS`` failing domains whose renewal comes first, never the whole fleet;
* every per-domain panel is driven by ``$domain``, a single domain by default (never All);
* ``cluster`` (a target or external label) and ``perspective`` (a label of
  acme_http01_exporter_info, joined in on the target) are matched with ``=~`` and the All
  value ``.*``, so a label that is absent still matches.
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

#: Rows of "Domains and their current problem" (the worst domains first).
TABLE_ROWS = 50
#: Rows of "Renewal at risk" (failing domains, soonest renewal first).
AT_RISK_ROWS = 20
#: Rows of "Failing domains by namespace" (the namespaces with the most failing domains).
NAMESPACE_ROWS = 20

#: The selected exporters. ``cluster`` is optional: ``=~".*"`` matches it absent too.
SEL = 'cluster=~"$cluster", job=~"$job", instance=~"$instance"'
#: The selected exporters' series of the selected domain(s).
DSEL = f'{SEL}, domain=~"$domain"'
#: What identifies one exporter, and one domain as one exporter sees it.
TARGET = "cluster, job, instance"
SERIES = f"{TARGET}, domain"
#: The selected exporters of the selected perspectives (the label is on this series only,
#: unless it is relabelled onto every target or added as an external label).
INFO = f'acme_http01_exporter_info{{{SEL}, perspective=~"$perspective"}}'


def of_perspective(expr: str) -> str:
    """``expr`` restricted to the exporters of ``$perspective`` (labels unchanged)."""
    return f"({expr}) and on ({TARGET}) {INFO}"


def with_perspective(expr: str) -> str:
    """``expr`` restricted to ``$perspective``, with the ``perspective`` label added."""
    return f"({expr}) * on ({TARGET}) group_left (perspective) {INFO}"


def count0(expr: str) -> str:
    """How many series of ``expr`` (in ``$perspective``); 0 rather than no data."""
    return f"count({of_perspective(expr)}) or vector(0)"


FAILING = f"acme_http01_validation_success{{{SEL}}} == 0"
#: Per domain, to put the worst first: 3 if failing, 1 if passing but at risk (AAAA mismatch,
#: IPv4 fallback, CAA forbids, an A or AAAA lookup failing), 0 otherwise; plus up to 0.9 as
#: the certificate's renewal comes closer (0.45 when due now, 0.24 a week before, towards 0.9
#: when overdue, nothing without a certificate; strictly monotonic, so no ties at the top-k
#: cut). Unions and aggregations rather than a sum of vectors, each selector once: at 10,000
#: domains a binary operation between two full vectors costs as much as reading one.
STATUS = (
    f"max by ({SERIES}) ((acme_http01_validation_success{{{SEL}}} == bool 0) * 3"
    f" or label_replace(acme_http01_aaaa_mismatch{{{SEL}}} == 1"
    f" or acme_http01_ipv4_fallback{{{SEL}}} == 1"
    f" or (acme_http01_caa_permitted{{{SEL}}} == 0) + 1"
    f' or acme_http01_dns_family_error{{{SEL}}}, "part", "risk", "", ""))'
)
URGENCY = (
    "label_replace(0.9 / (1 + exp((acme_http01_certificate_renewal_due_timestamp_seconds"
    f'{{{SEL}}} - time()) / 604800)), "part", "urgency", "", "")'
)
SCORE = f"sum by ({SERIES}) ({STATUS} or {URGENCY})"
WORST = f"topk({TABLE_ROWS}, {of_perspective(SCORE)})"
AT_RISK = (
    f"bottomk({AT_RISK_ROWS}, "
    + of_perspective(
        f"(acme_http01_certificate_renewal_due_timestamp_seconds{{{SEL}}} - time())"
        f" and on ({SERIES}) ({FAILING})"
    )
    + ")"
)
BY_REASON = (
    "sum by (type, reason) ("
    + of_perspective(
        f"count by ({TARGET}, type, reason) "
        f'(acme_http01_validation_problem{{{SEL}, reason!="none"}} == 1)'
    )
    + ")"
)

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


def instant(expr: str, ref: str = "A", legend: str = "", table: bool = False) -> dict[str, Any]:
    extra: dict[str, Any] = {"format": "table"} if table else {}
    return target(expr, legend, ref, instant=True, range=False, **extra)


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


RED_FROM_1: list[dict[str, Any]] = [{"color": "green", "value": None}, {"color": "red", "value": 1}]
BLUE: list[dict[str, Any]] = [{"color": "blue", "value": None}]
OK_FAIL: list[dict[str, Any]] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "fail", "color": "red", "index": 0},
            "1": {"text": "ok", "color": "green", "index": 1},
        },
    }
]
YES_NO: list[dict[str, Any]] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "no", "color": "red", "index": 0},
            "1": {"text": "yes", "color": "green", "index": 1},
        },
    }
]


def stat(
    title: str,
    expr: str,
    grid: tuple[int, int, int, int],
    description: str,
    steps: list[dict[str, Any]] | None = None,
    unit: str = "none",
    mappings: list[dict[str, Any]] | None = None,
    legend: str = "",
    text_mode: str = "value",
) -> dict[str, Any]:
    return panel(
        "stat",
        title,
        grid,
        [instant(expr, legend=legend)],
        description,
        fieldConfig={
            "defaults": {
                "thresholds": {"mode": "absolute", "steps": steps or BLUE},
                "mappings": mappings or [],
                "unit": unit,
            },
            "overrides": [],
        },
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": text_mode,
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


def state_timeline(
    title: str,
    expr: str,
    legend: str,
    grid: tuple[int, int, int, int],
    description: str,
    mappings: list[dict[str, Any]],
) -> dict[str, Any]:
    return panel(
        "state-timeline",
        title,
        grid,
        [target(expr, legend)],
        description,
        fieldConfig={
            "defaults": {
                "mappings": mappings,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                },
            },
            "overrides": [],
        },
        options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
    )


def quantiles(histogram: str) -> list[dict[str, Any]]:
    """p50 and p99 of a histogram over all series of the selected exporters."""
    return [
        target(
            f"histogram_quantile({q}, sum by (le) ("
            + of_perspective(f"rate({histogram}_bucket{{{SEL}}}[$__rate_interval])")
            + "))",
            f"p{round(q * 100)}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.99, "B"))
    ]


#: A click on a domain in a table shows it in the per-domain panels.
DOMAIN_LINK = {
    "matcher": {"id": "byName", "options": "domain"},
    "properties": [
        {
            "id": "links",
            "value": [
                {
                    "title": "Show ${__value.raw} in the per-domain panels",
                    "url": f"/d/{UID}/{TITLE}?${{__url_time_range}}&${{datasource:queryparam}}"
                    "&${cluster:queryparam}&${job:queryparam}&${perspective:queryparam}"
                    "&${instance:queryparam}&var-domain=${__value.raw}",
                }
            ],
        }
    ],
}


def seconds_column(name: str) -> dict[str, Any]:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": "unit", "value": "s"}],
    }


def table(
    title: str,
    grid: tuple[int, int, int, int],
    targets: list[dict[str, Any]],
    description: str,
    sort_by: tuple[str, bool],
    hide: list[str],
    order: list[str],
    rename: dict[str, str],
    overrides: list[dict[str, Any]],
) -> dict[str, Any]:
    field, desc = sort_by
    return panel(
        "table",
        title,
        grid,
        targets,
        description,
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "sortBy", "options": {"fields": {}, "sort": [{"field": field, "desc": desc}]}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {name: True for name in ["Time", "__name__", *hide]},
                    "indexByName": {name: i for i, name in enumerate(order)},
                    "renameByName": rename,
                },
            },
        ],
        fieldConfig={"defaults": {}, "overrides": [DOMAIN_LINK, *overrides]},
        options={"showHeader": True, "cellHeight": "sm"},
    )


REASON_COLUMN = {
    "matcher": {"id": "byName", "options": "reason"},
    "properties": [
        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
        {
            "id": "mappings",
            "value": [{"type": "value", "options": {"none": {"color": "green", "index": 0}}}],
        },
        {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
    ],
}


def variable(
    name: str, label: str, query: str, include_all: bool = True, multi: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var"},
        "definition": query,
        "refresh": 2,
        "includeAll": include_all,
        "multi": multi,
        "sort": 1,
    }
    if include_all:
        # "All" is the regex .*, which also matches a series without the label.
        out["allValue"] = ".*"
        out["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    else:
        out["current"] = {}  # Grafana selects the first value: one domain, never all
    return out


def fleet() -> list[dict[str, Any]]:
    """Counts over the selected exporters: never one series per domain."""
    out = [row("Fleet", 0)]
    stats: list[tuple[str, str, str, list[dict[str, Any]]]] = [
        (
            "Domains",
            f"sum({of_perspective(f'acme_http01_domains{{{SEL}}}')})",
            "Configured domains, summed over the selected exporters (shards add up; each "
            "perspective counts its own).",
            BLUE,
        ),
        (
            "OK",
            count0(f"acme_http01_validation_success{{{SEL}}} == 1"),
            "Domains Let's Encrypt would validate.",
            BLUE,
        ),
        (
            "Failing",
            count0(FAILING),
            "Domains whose Let's Encrypt validation is predicted to fail.",
            RED_FROM_1,
        ),
        (
            "Failing, renewal due soon",
            count0(
                f"(acme_http01_certificate_renewal_due_timestamp_seconds{{{SEL}}} - time()"
                f" < on ({TARGET}) group_left () acme_http01_renewal_window_seconds{{{SEL}}})"
                f" and on ({SERIES}) ({FAILING})"
            ),
            "Failing domains whose certificate is due for renewal within the exporter's "
            "renewal window (acme_http01_renewal_window_seconds) or overdue: the renewal "
            "will fail. See Renewal at risk.",
            RED_FROM_1,
        ),
        (
            "Expiring within 7 days",
            count0(
                f"acme_http01_certificate_not_after_timestamp_seconds{{{SEL}}} - time() < 7 * 86400"
            ),
            "Certificates served on 443 that expire within 7 days (or have expired).",
            RED_FROM_1,
        ),
        (
            "Stale results",
            count0(
                f"time() - acme_http01_last_validation_timestamp_seconds{{{SEL}}}"
                f" > on ({TARGET}) group_left () 3 * acme_http01_validation_interval_seconds"
                f"{{{SEL}}}"
            ),
            "Domains whose last finished validation is older than 3 intervals.",
            RED_FROM_1,
        ),
        (
            "AAAA mismatch",
            count0(f"acme_http01_aaaa_mismatch{{{SEL}}} == 1"),
            "Domains whose first AAAA and first A address answer differently.",
            RED_FROM_1,
        ),
        (
            "IPv4 fallback",
            count0(f"acme_http01_ipv4_fallback{{{SEL}}} == 1"),
            "Domains whose last validation needed Let's Encrypt's IPv6-to-IPv4 fallback.",
            RED_FROM_1,
        ),
        (
            "Redirect-hop failure",
            count0(f"acme_http01_redirect_hop_failure{{{SEL}}} == 1"),
            "Domains failing on a redirect hop (no fallback there).",
            RED_FROM_1,
        ),
        (
            "CAA forbids",
            count0(f"acme_http01_caa_permitted{{{SEL}}} == 0"),
            "Domains whose CAA records forbid Let's Encrypt to issue by HTTP-01, or whose CAA "
            "lookup fails.",
            RED_FROM_1,
        ),
        (
            "DNS family errors",
            count0(f"count by ({SERIES}) (acme_http01_dns_family_error{{{SEL}}})"),
            "Domains with an A or AAAA lookup failing while the other family's works (Let's "
            "Encrypt hides it).",
            RED_FROM_1,
        ),
        (
            "Chain not verified",
            count0(f"acme_http01_certificate_chain_valid{{{SEL}}} == 0"),
            "Certificates served on 443 whose chain does not verify (browsers refuse them; "
            "Let's Encrypt does not care).",
            RED_FROM_1,
        ),
    ]
    for i, (title, expr, description, steps) in enumerate(stats):
        out.append(stat(title, expr, (4 * (i % 6), 1 + 4 * (i // 6), 4, 4), description, steps))
    out.append(
        panel(
            "bargauge",
            "Failing domains by reason",
            (0, 9, 8, 9),
            [instant(f"sort_desc({BY_REASON})", legend="{{type}}: {{reason}}")],
            "How many domains fail, by the problem Let's Encrypt would report.",
            fieldConfig={
                "defaults": {
                    "thresholds": {"mode": "absolute", "steps": RED_FROM_1},
                    "unit": "none",
                    "min": 0,
                },
                "overrides": [],
            },
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "orientation": "horizontal",
                "displayMode": "basic",
                "showUnfilled": True,
            },
        )
    )
    trend = timeseries(
        "Failing domains over time, by reason",
        [target(BY_REASON, "{{type}}: {{reason}}")],
        (8, 9, 16, 9),
        "Failing domains, stacked by the problem Let's Encrypt would report: when a wave of "
        "failures started and why.",
        drawStyle="line",
        fillOpacity=40,
        stacking={"mode": "normal", "group": "A"},
    )
    trend["interval"] = "1m"  # results change once per validation interval at most
    out.append(trend)
    return out


def worst_domains() -> list[dict[str, Any]]:
    """The tables: bounded by topk/bottomk whatever the fleet's size."""
    out = [row("Domains, worst first", 18)]
    columns = [
        # A: the problem (type and reason labels), its value the rank; the renderer reads A-D.
        with_perspective(
            f"(acme_http01_validation_problem{{{SEL}}} == 1) * on ({SERIES}) group_left () {WORST}"
        ),
        f"acme_http01_aaaa_mismatch{{{SEL}}} and on ({SERIES}) {WORST}",
        f"acme_http01_ipv4_fallback{{{SEL}}} and on ({SERIES}) {WORST}",
        f"acme_http01_redirect_hop_failure{{{SEL}}} and on ({SERIES}) {WORST}",
        f"time() - acme_http01_last_validation_timestamp_seconds{{{SEL}}}"
        f" and on ({SERIES}) {WORST}",
        f"acme_http01_certificate_renewal_due_timestamp_seconds{{{SEL}}} - time()"
        f" and on ({SERIES}) {WORST}",
    ]
    out.append(
        table(
            "Domains and their current problem",
            (0, 19, 24, 12),
            [instant(expr, ref, table=True) for expr, ref in zip(columns, "ABCDEF", strict=True)],
            f"The {TABLE_ROWS} domains most in need of attention: failing first (soonest "
            "certificate renewal first), then those at risk (AAAA mismatch, IPv4 fallback only, "
            "CAA forbids, an A or AAAA lookup failing), then the rest. The problem Let's Encrypt "
            "would report (type and reason; none on success), the certificate's renewal (from "
            "now; negative: overdue) and the age of the result. Click a domain for its "
            "timelines; the exporter's /domains/<name> page has the full trace.",
            sort_by=("Value #A", True),
            hide=["job", "Value #A"],
            order=["domain", "instance", "perspective", "type", "reason"],
            rename={
                "Value #B": "AAAA mismatch",
                "Value #C": "IPv4 fallback",
                "Value #D": "redirect-hop failure",
                "Value #E": "result age",
                "Value #F": "renewal due in",
            },
            overrides=[
                seconds_column("result age"),
                seconds_column("renewal due in"),
                REASON_COLUMN,
            ],
        )
    )
    out.append(
        table(
            "Renewal at risk",
            (0, 31, 24, 8),
            [
                instant(AT_RISK, "A", table=True),
                instant(
                    f"acme_http01_certificate_not_after_timestamp_seconds{{{SEL}}} - time()"
                    f" and on ({SERIES}) {AT_RISK}",
                    "B",
                    table=True,
                ),
                instant(
                    with_perspective(
                        f"acme_http01_validation_problem{{{SEL}}} == 1 and on ({SERIES}) {AT_RISK}"
                    ),
                    "C",
                    table=True,
                ),
            ],
            f"The {AT_RISK_ROWS} failing domains whose certificate is due for renewal first "
            "(negative: overdue). The renewal will fail like the prediction unless the problem "
            "is fixed first; compare with the exporter's renewal window "
            "(acme_http01_renewal_window_seconds).",
            sort_by=("Value #A", False),
            hide=["job", "Value #C"],
            order=["domain", "instance", "perspective", "type", "reason"],
            rename={"Value #A": "renewal due in", "Value #B": "certificate expires in"},
            overrides=[
                seconds_column("renewal due in"),
                seconds_column("certificate expires in"),
                REASON_COLUMN,
            ],
        )
    )
    return out


def selected_domain() -> list[dict[str, Any]]:
    """Timelines of ``$domain`` only (one domain unless several are picked)."""
    out = [row("Selected domain: $domain", 39)]
    stats: list[tuple[str, str, str, dict[str, Any]]] = [
        (
            "Verdict",
            f"acme_http01_validation_success{{{DSEL}}}",
            "Whether Let's Encrypt would validate the selected domain now.",
            {"mappings": OK_FAIL, "steps": [{"color": "red", "value": None}], "legend": ""},
        ),
        (
            "Problem",
            f"acme_http01_validation_problem{{{DSEL}}} == 1",
            "The problem Let's Encrypt would report (type: reason; none: none on success).",
            {"legend": "{{type}}: {{reason}}", "text_mode": "name"},
        ),
        (
            "Renewal due in",
            f"acme_http01_certificate_renewal_due_timestamp_seconds{{{DSEL}}} - time()",
            "When a standard ACME client renews the certificate served on 443 (negative: "
            "overdue). No data: no certificate on 443.",
            {"unit": "s"},
        ),
        (
            "Certificate expires in",
            f"acme_http01_certificate_not_after_timestamp_seconds{{{DSEL}}} - time()",
            "notAfter of the certificate served on 443, from now.",
            {"unit": "s"},
        ),
        (
            "Chain verifies",
            f"acme_http01_certificate_chain_valid{{{DSEL}}}",
            "Whether the certificate's chain verifies for the domain (browsers need it; Let's "
            "Encrypt does not).",
            {"mappings": YES_NO},
        ),
        (
            "CAA permits",
            f"acme_http01_caa_permitted{{{DSEL}}}",
            "Whether CAA lets Let's Encrypt issue by HTTP-01 (no data: CAA check off).",
            {"mappings": YES_NO},
        ),
    ]
    for i, (title, expr, description, options) in enumerate(stats):
        out.append(
            stat(
                title,
                with_perspective(expr),
                (4 * i, 40, 4, 4),
                description,
                options.get("steps"),
                unit=options.get("unit", "none"),
                mappings=options.get("mappings"),
                legend=options.get("legend", "{{domain}} {{perspective}}"),
                text_mode=options.get("text_mode", "value"),
            )
        )
    out.append(
        state_timeline(
            "Predicted outcome",
            with_perspective(f"acme_http01_validation_success{{{DSEL}}}"),
            "{{domain}} {{perspective}}",
            (0, 44, 24, 5),
            "1 (green): Let's Encrypt would succeed; 0 (red): it would fail.",
            OK_FAIL,
        )
    )
    out.append(
        state_timeline(
            "Problem over time",
            with_perspective(
                f'acme_http01_validation_problem{{{DSEL}, reason="none"}} == 1'
                f' or (acme_http01_validation_problem{{{DSEL}, reason!="none"}} == 1) * 2'
            ),
            "{{domain}} {{type}}: {{reason}}",
            (0, 49, 12, 8),
            "The problem Let's Encrypt would report, over time: one row per reason, coloured "
            "while it was the verdict (none: none on success).",
            [
                {
                    "type": "value",
                    "options": {
                        "1": {"text": "ok", "color": "green", "index": 0},
                        "2": {"text": "failing", "color": "red", "index": 1},
                    },
                }
            ],
        )
    )
    out.append(
        timeseries(
            "IPv4 fallback and AAAA mismatch",
            [
                target(
                    with_perspective(f"acme_http01_ipv4_fallback{{{DSEL}}} == 1"),
                    "{{domain}} fallback",
                    "A",
                ),
                target(
                    with_perspective(f"acme_http01_aaaa_mismatch{{{DSEL}}} == 1"),
                    "{{domain}} mismatch",
                    "B",
                ),
            ],
            (12, 49, 12, 8),
            "When the domain passed only through the IPv4 fallback, and when its AAAA and A "
            "answered differently.",
            drawStyle="points",
            pointSize=6,
        )
    )
    out.append(
        timeseries(
            "Redirect-hop failures",
            [
                target(
                    "sum by (domain, perspective, reason) ("
                    + with_perspective(
                        f"increase(acme_http01_redirect_hop_failures_total{{{DSEL}}}"
                        "[$__rate_interval])"
                    )
                    + ")",
                    "{{domain}} {{reason}}",
                ),
            ],
            (0, 57, 12, 8),
            "Validations that failed on a redirect hop, by reason.",
            drawStyle="bars",
        )
    )
    out.append(
        timeseries(
            "Time to renewal and expiry",
            [
                target(
                    with_perspective(
                        f"acme_http01_certificate_renewal_due_timestamp_seconds{{{DSEL}}} - time()"
                    ),
                    "{{domain}} renewal due",
                    "A",
                ),
                target(
                    with_perspective(
                        f"acme_http01_certificate_not_after_timestamp_seconds{{{DSEL}}} - time()"
                    ),
                    "{{domain}} expires",
                    "B",
                ),
            ],
            (12, 57, 12, 8),
            "The certificate served on 443: time left until its renewal is due and until it "
            "expires (a new certificate resets both).",
            unit="s",
        )
    )
    out.append(
        timeseries(
            "Valid addresses per family",
            [
                target(
                    with_perspective(f"acme_http01_dns_addresses{{{DSEL}}}"),
                    "{{domain}} {{family}}",
                )
            ],
            (0, 65, 12, 8),
            "A and AAAA addresses left after the reserved-address filter.",
        )
    )
    out.append(
        timeseries(
            "Validation duration",
            [
                target(
                    with_perspective(f"acme_http01_validation_duration_seconds{{{DSEL}}}"),
                    "{{domain}} {{perspective}}",
                )
            ],
            (12, 65, 12, 8),
            "Duration of the domain's last validation (a dial timeout costs 10 s).",
            unit="s",
        )
    )
    return out


def exporter_health() -> list[dict[str, Any]]:
    out = [row("Exporter health", 73)]
    health = [
        (
            "Config reload OK",
            f"min({of_perspective(f'acme_http01_config_last_reload_successful{{{SEL}}}')})",
            "1 if the last reload succeeded on every selected exporter.",
        ),
        (
            "IPv6 capable",
            f"min({of_perspective(f'acme_http01_exporter_ipv6_capable{{{SEL}}}')})",
            "0 means IPv6 verdicts cannot be measured from one of the selected exporters.",
        ),
        (
            "Resolver validates DNSSEC",
            f"min({of_perspective(f'acme_http01_resolver_dnssec_validating{{{SEL}}}')})",
            "0 means a selected exporter's resolver does not validate DNSSEC as Let's "
            "Encrypt's does.",
        ),
        (
            "In flight",
            f"sum({of_perspective(f'acme_http01_validations_in_flight{{{SEL}}}')})",
            "Validations running now.",
        ),
    ]
    for i, (title, expr, description) in enumerate(health):
        out.append(stat(title, expr, (6 * i, 74, 6, 4), description))
    out.append(
        table(
            "Exporters",
            (0, 78, 8, 8),
            [instant(INFO, table=True)],
            "The selected exporters: their perspective (vantage point) and shard.",
            sort_by=("instance", False),
            hide=["Value"],
            order=["cluster", "job", "instance", "perspective", "shard", "shards"],
            rename={},
            overrides=[],
        )
    )
    out.append(
        timeseries(
            "Scheduler delay",
            quantiles("acme_http01_scheduler_delay_seconds"),
            (8, 78, 8, 8),
            "Time between a validation's scheduled time and its start.",
            unit="s",
        )
    )
    out.append(
        timeseries(
            "Validation latency (all domains)",
            quantiles("acme_http01_validation_latency_seconds"),
            (16, 78, 8, 8),
            "Validation durations across all domains.",
            unit="s",
        )
    )
    out.append(
        timeseries(
            "Skipped runs",
            [
                target(
                    "sum by (reason) ("
                    + of_perspective(
                        f"rate(acme_http01_scheduler_skipped_runs_total{{{SEL}}}[$__rate_interval])"
                    )
                    + ")",
                    "{{reason}}",
                ),
            ],
            (0, 86, 12, 8),
            "Runs skipped because the previous one was still running, or missed.",
            unit="ops",
        )
    )
    return out


def discovery() -> list[dict[str, Any]]:
    """Where the names come from: each source's state, its errors, and failures by
    namespace (a team), through the acme_http01_domain_source_info join."""
    out = [row("Discovery", 94)]
    up = of_perspective(f"acme_http01_discovery_up{{{SEL}}}")
    names = of_perspective(f"acme_http01_discovery_names{{{SEL}}}")
    out.append(
        table(
            "Sources",
            (0, 95, 8, 8),
            [
                instant(f"min by (source, kind) ({up})", "A", table=True),
                instant(f"max by (source, kind) ({names})", "B", table=True),
            ],
            "Each discovery source (the static list, the domain files, each Kubernetes kind): "
            "up (0 while its list, watch or read fails on any selected exporter: its last "
            "names are kept) and the names it puts up for validation.",
            sort_by=("Value #A", False),
            hide=[],
            order=["source", "kind", "Value #A", "Value #B"],
            rename={"Value #A": "up", "Value #B": "names"},
            overrides=[],
        )
    )
    errors = of_perspective(
        f"increase(acme_http01_discovery_errors_total{{{SEL}}}[$__rate_interval])"
    )
    out.append(
        timeseries(
            "Discovery errors",
            [target(f"sum by (source, kind, reason) ({errors})", "{{kind}} {{reason}}")],
            (8, 95, 8, 8),
            "Failed lists, watches and reads by reason (forbidden: RBAC; not_found: the "
            "kind's CRD is missing; gone: a watch expired and the kind was listed again).",
        )
    )
    failing = of_perspective(f"acme_http01_validation_success{{{SEL}}} == 0")
    origin = f"max by ({SERIES}, source, namespace) (acme_http01_domain_source_info{{{SEL}}})"
    by_namespace = (
        f"topk({NAMESPACE_ROWS}, count by (source, namespace) "
        f"(({failing}) * on ({SERIES}) group_right () {origin}))"
    )
    out.append(
        table(
            "Failing domains by namespace",
            (16, 95, 8, 8),
            [instant(by_namespace, table=True)],
            "Failing domains counted by where they were found: the namespace of the "
            "Kubernetes object that names them (a domain named in two namespaces counts in "
            "both), or the static list, or the files; the "
            f"{NAMESPACE_ROWS} with the most: who to call.",
            sort_by=("Value", True),
            hide=[],
            order=["source", "namespace", "Value"],
            rename={"Value": "failing domains"},
            overrides=[],
        )
    )
    return out


def build() -> dict[str, Any]:
    global _ids
    _ids = iter(range(1, 1000))
    panels = fleet() + worst_domains() + selected_domain() + exporter_health() + discovery()
    info = "acme_http01_exporter_info"
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
                variable("cluster", "Cluster", f"label_values({info}, cluster)"),
                variable("job", "Job", f'label_values({info}{{cluster=~"$cluster"}}, job)'),
                variable(
                    "perspective",
                    "Perspective",
                    f'label_values({info}{{cluster=~"$cluster", job=~"$job"}}, perspective)',
                ),
                variable(
                    "instance",
                    "Instance",
                    f'label_values({info}{{cluster=~"$cluster", job=~"$job", '
                    f'perspective=~"$perspective"}}, instance)',
                ),
                variable(
                    "domain",
                    "Domain",
                    f"label_values(acme_http01_validation_success{{{SEL}}}, domain)",
                    include_all=False,
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
