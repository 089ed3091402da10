"""Renders the dashboard's main panels to a PNG from a live Prometheus (no Grafana needed).

    python grafana/render_png.py --prometheus http://127.0.0.1:9090 --out dashboard.png

It runs the dashboard's own queries (from grafana/dashboard.json) against Prometheus and
draws the fleet stats, the domain table and two time series with matplotlib.
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).with_name("dashboard.json")


def substitute(expr: str) -> str:
    for name, value in (
        ("$__rate_interval", "1m"),
        ("$cluster", ".*"),
        ("$job", ".*"),
        ("$perspective", ".*"),
        ("$instance", ".*"),
        ("$domain", ".*"),
    ):
        expr = expr.replace(name, value)
    return expr


def query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": substitute(expr)})
    with urllib.request.urlopen(url, timeout=10) as response:
        return list(json.load(response)["data"]["result"])


def query_range(base: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    params = {"query": substitute(expr), "start": start, "end": end, "step": 1}
    url = f"{base}/api/v1/query_range?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as response:
        return list(json.load(response)["data"]["result"])


def panels() -> dict[str, dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return {p["title"]: p for p in dashboard["panels"] if p["type"] != "row"}


def render(base: str, out: Path, seconds: float = 120) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_title = panels()
    del seconds
    fig = plt.figure(figsize=(16, 10), facecolor="#111217")
    fig.suptitle(
        "acme-http01-exporter (rendered from Prometheus with the dashboard's queries)",
        color="white",
        fontsize=14,
    )
    grid = fig.add_gridspec(3, 6, height_ratios=[1, 2.4, 2.2], hspace=0.45, wspace=0.9)

    stats = ["Domains", "Failing", "AAAA mismatch", "IPv4 fallback", "Redirect-hop failure", "OK"]
    for i, title in enumerate(stats):
        ax = fig.add_subplot(grid[0, i])
        result = query(base, by_title[title]["targets"][0]["expr"])
        value = float(result[0]["value"][1]) if result else 0.0
        bad = title not in ("Domains", "OK") and value > 0
        ax.set_facecolor("#8f1d1d" if bad else "#1f6f3a" if title != "Domains" else "#1f4f8f")
        ax.text(0.5, 0.42, f"{value:g}", ha="center", va="center", fontsize=30, color="white")
        ax.set_title(title, color="white", fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])

    table = fig.add_subplot(grid[1, :])
    table.axis("off")
    table.set_title("Domains and their current problem", color="white", fontsize=12)
    targets = by_title["Domains and their current problem"]["targets"]
    columns = ["AAAA mismatch", "IPv4 fallback", "redirect-hop failure"]
    extra: dict[str, dict[str, float]] = {}
    for column, target in zip(columns, targets[1:4], strict=True):
        for sample in query(base, target["expr"]):
            extra.setdefault(sample["metric"]["domain"], {})[column] = float(sample["value"][1])
    rows = []
    # Worst first, as the dashboard sorts it: query A's value is each domain's rank.
    by_rank = sorted(
        query(base, targets[0]["expr"]),
        key=lambda s: (-float(s["value"][1]), s["metric"]["domain"]),
    )
    for sample in by_rank:
        labels = sample["metric"]
        flags = extra.get(labels["domain"], {})
        rows.append(
            [
                labels["domain"],
                labels["type"],
                labels["reason"],
                *("yes" if flags.get(c) else "" for c in columns),
            ]
        )
    if rows:
        cell_colours = [
            ["#1d1f26"] * 6
            if r[2] == "none"
            else ["#1d1f26", "#5a1a1a", "#5a1a1a", "#1d1f26", "#1d1f26", "#1d1f26"]
            for r in rows
        ]
        drawn = table.table(
            cellText=rows,
            colLabels=["domain", "type", "reason", *columns],
            cellColours=cell_colours,
            colColours=["#2b2e38"] * 6,
            loc="upper center",
            cellLoc="left",
            colWidths=[0.27, 0.13, 0.18, 0.14, 0.14, 0.14],
        )
        drawn.auto_set_font_size(False)
        drawn.set_fontsize(10)
        drawn.scale(1, 1.2)
        for cell in drawn.get_celld().values():
            cell.get_text().set_color("white")
            cell.set_edgecolor("#444")

    # Bottom row: the latest values of two per-domain panels, as bars.
    duration = fig.add_subplot(grid[2, :3])
    samples = query(base, by_title["Validation duration"]["targets"][0]["expr"])
    samples.sort(key=lambda x: x["metric"]["domain"])
    duration.barh(
        [x["metric"]["domain"] for x in samples],
        [float(x["value"][1]) for x in samples],
        color="#5794f2",
    )
    duration.set_title(
        "Validation duration (s; a dial timeout costs the dial timeout)", color="white"
    )
    addresses = fig.add_subplot(grid[2, 3:])
    rows_by_domain: dict[str, dict[str, float]] = {}
    for x in query(base, by_title["Valid addresses per family"]["targets"][0]["expr"]):
        rows_by_domain.setdefault(x["metric"]["domain"], {})[x["metric"]["family"]] = float(
            x["value"][1]
        )
    domains = sorted(rows_by_domain)
    positions = range(len(domains))
    addresses.barh(
        [p + 0.2 for p in positions],
        [rows_by_domain[d].get("ipv6", 0) for d in domains],
        0.4,
        label="ipv6",
        color="#b877d9",
    )
    addresses.barh(
        [p - 0.2 for p in positions],
        [rows_by_domain[d].get("ipv4", 0) for d in domains],
        0.4,
        label="ipv4",
        color="#73bf69",
    )
    addresses.set_yticks(list(positions), domains)
    addresses.set_title("Valid addresses per family", color="white")
    addresses.legend(facecolor="#181b1f", labelcolor="white")
    for ax in (duration, addresses):
        ax.set_facecolor("#181b1f")
        ax.tick_params(colors="#bbb", labelsize=8)
    fig.savefig(out, dpi=80, facecolor=fig.get_facecolor())
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    render(args.prometheus, args.out)


if __name__ == "__main__":
    main()
