#!/usr/bin/env bash
# Refresh the lock: resolve the newest versions that pyproject.toml allows, for CPython 3.11 on
# Linux x86_64, and write them with the sha256 of every file of each version (so the same lock
# installs on arm64 too, as the image is built) to
#   lock/runtime.txt  the dependencies (what the exporter runs with)
#   lock/build.txt    the build backend ([build-system] requires), to install the package itself
#   lock/test.txt     both of those (by -r) and the test extra's tools
# Then run ./scripts/test.sh (it reinstalls .venv from the new lock) and commit lock/.
# Usage: ./scripts/lock.sh   (needs PyPI; uv, pinned below, does the resolving)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

UV_VERSION=0.13.8
UV=.tools/uv/bin/uv
if [ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  log "installing uv $UV_VERSION into .tools/uv"
  rm -rf .tools/uv
  python3 -m venv .tools/uv
  .tools/uv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -c 'import sys, tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
  >"$tmp/build-system.in"

compile() {
  "$UV" pip compile --quiet --no-header --generate-hashes --refresh \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 "$@"
}
log "resolving the newest allowed versions"
# One resolution of everything, so that the three files agree; the two parts are then
# resolved again within it.
compile pyproject.toml "$tmp/build-system.in" --extra test -o "$tmp/all.txt"
compile pyproject.toml -c "$tmp/all.txt" -o "$tmp/runtime.txt"
compile "$tmp/build-system.in" -c "$tmp/all.txt" -o "$tmp/build.txt"

mkdir -p lock
python3 - "$tmp" <<'PY'
import re
import sys
from pathlib import Path

tmp = Path(sys.argv[1])
HEADER = (
    "# {what}\n"
    "# The exact versions the test suite passes with, for CPython 3.11 on Linux x86_64, each with\n"
    "# the sha256 of its files. Written by scripts/lock.sh: refresh with it, never by hand.\n"
)


def blocks(name: str) -> dict[str, str]:
    """Each requirement of a uv output file (its line, hashes and `# via` notes), by name."""
    text = (tmp / name).read_text()
    text = text.replace(f"-r {tmp}/build-system.in", "pyproject.toml [build-system]")
    found: dict[str, str] = {}
    for block in re.split(r"\n(?=[a-z0-9])", text.strip()):
        lines = [line for line in block.splitlines() if str(tmp) not in line]
        found[block.split("==", 1)[0]] = "\n".join(lines) + "\n"
    return found


def pins(block: str) -> list[str]:
    """The requirement and its hashes, without the `# via` notes."""
    return [line for line in block.splitlines() if not line.lstrip().startswith("#")]


runtime, build, everything = blocks("runtime.txt"), blocks("build.txt"), blocks("all.txt")
for part in (runtime, build):
    assert all(pins(everything[n]) == pins(b) for n, b in part.items()), "the parts disagree"
build = {name: block for name, block in build.items() if name not in runtime}
test = {n: b for n, b in everything.items() if n not in runtime and n not in build}
files = {
    "runtime.txt": ("Runtime dependencies of acme-http01-exporter (pyproject.toml).", "", runtime),
    "build.txt": ("Its build backend (pyproject.toml [build-system]).", "", build),
    "test.txt": (
        "The runtime and build locks, and the test extra's tools (pyproject.toml [test]).",
        "-r runtime.txt\n-r build.txt\n",
        test,
    ),
}
for name, (what, includes, part) in files.items():
    body = "".join(part[n] for n in sorted(part))
    Path("lock", name).write_text(HEADER.format(what=what) + includes + body)
    print(f"lock/{name}: {len(part)} packages")
PY
