"""Generates the values table (and the version line) of the Helm chart's README.md from the
helm-docs comments of its values.yaml (helm-docs itself is a Go binary not installable here).

    python scripts/chart_readme.py            # rewrite the generated parts of README.md
    python scripts/chart_readme.py --check    # exit 1 if README.md is out of date

README.md is hand-written except between the markers ``<!-- generated:NAME:start -->`` and
``<!-- generated:NAME:end -->`` (NAME: ``version``, ``values``), which this script owns.

The comments follow helm-docs:

* ``# -- text`` right above a key documents it; the lines ``# more text`` that follow (up to
  the key) continue the description;
* ``# -- (type) text`` overrides the type, which is otherwise the YAML value's (``string``,
  ``int``, ``float``, ``bool``, ``list``, ``object``);
* ``# @default -- text`` replaces the default column (Markdown as written; otherwise the
  value, as JSON in a code span);
* a documented key that holds a map is one row (its undocumented children are part of its
  default); a key without a ``# --`` comment has no row. ``undocumented()`` lists the leaf
  values that no row covers, so a test can require every value to be documented.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "acme-http01-exporter"
README = CHART / "README.md"

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+|\"[^\"]+\"|'[^']+'):(?:\s|$)")
DOC = re.compile(r"^ *# -- ?(?:\((?P<type>[a-z]+)\) ?)?(?P<text>.*)$")
DEFAULT = re.compile(r"^ *# @default -- ?(?P<text>.*)$")
COMMENT = re.compile(r"^ *#(?P<text>.*)$")
MARKER = "<!-- generated:{name}:{end} -->"


@dataclass
class Row:
    """One documented value."""

    key: str
    type: str
    default: str  # Markdown
    description: str


@dataclass
class _Pending:
    description: list[str]
    type: str | None = None
    default: str | None = None


def yaml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "string" if value is None else type(value).__name__


def lookup(values: dict[str, Any], path: list[str]) -> Any:
    node: Any = values
    for part in path:
        node = node[part]
    return node


def parse(text: str) -> list[Row]:
    """The documented keys of a values.yaml, in file order."""
    values = yaml.safe_load(text) or {}
    rows: list[Row] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing keys
    pending: _Pending | None = None
    for line in text.splitlines():
        if not line.strip():
            pending = None  # a blank line detaches a comment from the next key
            continue
        if (match := DEFAULT.match(line)) and pending is not None:
            pending.default = match["text"].strip()
            continue
        if match := DOC.match(line):
            pending = _Pending([match["text"].strip()], match["type"])
            continue
        if match := COMMENT.match(line):
            if pending is not None:
                pending.description.append(match["text"].strip())
            continue
        match = KEY.match(line)
        if match is None:  # a list item or a continuation of a flow value
            pending = None
            continue
        indent = len(match["indent"])
        key = match["key"].strip("\"'")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = [k for _, k in stack] + [key]
        stack.append((indent, key))
        if pending is None:
            continue
        value = lookup(values, path)
        # An @default is Markdown as written; a value is shown as JSON in a code span.
        default = (
            pending.default
            if pending.default is not None
            else code(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
        )
        rows.append(
            Row(
                key=".".join(path),
                type=pending.type or yaml_type(value),
                default=default,
                description=" ".join(part for part in pending.description if part),
            )
        )
        pending = None
    return rows


def undocumented(text: str) -> list[str]:
    """Leaf values (scalars, lists, empty maps) that no documented key covers."""
    documented = {row.key for row in parse(text)}
    missing: list[str] = []

    def walk(node: Any, path: list[str]) -> None:
        key = ".".join(path)
        if path and key in documented:
            return
        if isinstance(node, dict) and node:
            for child, value in node.items():
                walk(value, [*path, str(child)])
        else:
            missing.append(key)

    walk(yaml.safe_load(text) or {}, [])
    return missing


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def code(text: str) -> str:
    """``text`` as a Markdown code span (a longer fence when it holds backticks)."""
    if "`" not in text:
        return f"`{text}`"
    return f"`` {text} ``"


def values_table(rows: list[Row]) -> str:
    lines = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    for row in rows:
        lines.append(
            f"| {cell(code(row.key))} | {row.type} | {cell(row.default)} "
            f"| {cell(row.description)} |"
        )
    return "\n".join(lines)


def version_line(chart: dict[str, Any]) -> str:
    parts = [
        f"Version: `{chart['version']}`",
        f"Type: `{chart.get('type', 'application')}`",
        f"AppVersion: `{chart['appVersion']}`",
    ]
    if chart.get("kubeVersion"):
        parts.append(f"Kubernetes: `{chart['kubeVersion']}`")
    return " · ".join(parts)


def replace_block(text: str, name: str, content: str) -> str:
    start = MARKER.format(name=name, end="start")
    end = MARKER.format(name=name, end="end")
    if text.count(start) != 1 or text.count(end) != 1:
        raise SystemExit(f"{README}: needs exactly one {start} and one {end}")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{content}\n{end}{tail}"


def render(readme: str, values_yaml: str, chart_yaml: str) -> str:
    chart = yaml.safe_load(chart_yaml)
    text = replace_block(readme, "version", version_line(chart))
    return replace_block(text, "values", values_table(parse(values_yaml)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    parser.add_argument("--chart", type=Path, default=CHART, help="the chart's directory")
    args = parser.parse_args()
    readme_path = args.chart / "README.md"
    values_yaml = (args.chart / "values.yaml").read_text()
    current = readme_path.read_text()
    text = render(current, values_yaml, (args.chart / "Chart.yaml").read_text())
    missing = undocumented(values_yaml)
    if missing:
        print(f"values without a '# --' comment: {', '.join(missing)}", file=sys.stderr)
        return 1
    if args.check:
        if current != text:
            print(
                f"{readme_path} is out of date: run python scripts/chart_readme.py",
                file=sys.stderr,
            )
            return 1
        return 0
    readme_path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
