"""What each change gave: the throughput runs of ``bench.run`` at several commits, in one sitting.

    .venv/bin/python -m bench.levers --commits REV,REV,... [--sizes 1000] [--window 20]

Each commit's ``exporter/`` is checked out into a temporary worktree and measured with
this checkout's ``bench/`` (the same fleet, the same steady demand, the same windows),
one after the other; the table gives the CPU per validation of each, and the change
from the commit before it. Commits are named by their subject line.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def measure(commit: str, sizes: str, window: float, work: Path) -> dict[str, dict[str, float]]:
    tree = work / commit
    _git("worktree", "add", "--detach", str(tree), commit)
    try:
        shutil.rmtree(tree / "bench")
        shutil.copytree(ROOT / "bench", tree / "bench")
        out = subprocess.run(
            [sys.executable, "-m", "bench.run", "--sizes", sizes, "--phases", "throughput",
             "--window", str(window), "--output", str(work / f"{commit}.md")],
            cwd=tree, check=True, capture_output=True, text=True, timeout=3600,
        ).stdout  # fmt: skip
    finally:
        _git("worktree", "remove", "--force", str(tree))
    found: dict[str, dict[str, float]] = {}
    size = ""
    for line in out.splitlines():
        if line.startswith("== N="):
            size = line[5:]
        elif line.startswith("throughput ("):
            kind = line[len("throughput (") : line.index(")")]
            found[f"{kind} {size}"] = ast.literal_eval(line[line.index("{") :])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commits", required=True)
    parser.add_argument("--sizes", default="1000")
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    commits = [_git("rev-parse", "--short", c) for c in args.commits.split(",")]
    rows: list[tuple[str, dict[str, dict[str, float]]]] = []
    with tempfile.TemporaryDirectory(prefix="acme-levers-") as tmp:
        for commit in commits:
            rows.append((commit, measure(commit, args.sizes, args.window, Path(tmp))))
            print(commit, rows[-1][1], flush=True)
    columns = list(rows[0][1])
    lines = [
        "| commit | change | " + " | ".join(f"CPU ms/validation ({c})" for c in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    previous: dict[str, dict[str, float]] | None = None
    for commit, found in rows:
        cells = []
        for column in columns:
            value = found[column]["cpu_per_validation_ms"]
            cell = f"{value:.2f}"
            if previous is not None:
                before = previous[column]["cpu_per_validation_ms"]
                cell += f" ({100 * (value - before) / before:+.0f}%)"
            cells.append(cell)
        subject = _git("log", "-1", "--format=%s", commit)
        subject = subject if len(subject) <= 90 else subject[:89] + "…"
        lines.append(f"| `{commit}` | {subject} | " + " | ".join(cells) + " |")
        previous = found
    print("\n".join(lines))


if __name__ == "__main__":
    main()
