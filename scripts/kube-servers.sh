#!/usr/bin/env bash
# Build the real Kubernetes control plane the discovery tests run against, once per machine:
# kube-apiserver and etcd, from their published Go modules, and the cert-manager and Gateway
# API CustomResourceDefinitions, from theirs. Prints the directory that holds them.
#
# Nothing here is installed system-wide or kept in the checkout: everything lands in
# $KUBE_TEST_CACHE (default ~/.cache/acme-http01-exporter/kube), one directory per set of
# versions, so a second run (and every later test session) takes no time. A cold build of
# kube-apiserver takes about 5 minutes on 2 cores and about 3 GB of Go build cache.
#
# kube-apiserver: k8s.io/kubernetes cannot be `go install`ed (its go.mod points the k8s.io/*
# staging modules at local directories that the module zip does not carry). A small module of
# our own requires it and replaces each staging module with the published k8s.io/* module of
# the same release (v0.37.x for v1.37.x), then builds ./cmd/kube-apiserver from it.
# etcd: the Debian etcd (3.4) lacks RequestWatchProgress, which a v1.37 API server uses; the
# server is built the same way from go.etcd.io/etcd/server/v3.
set -euo pipefail

KUBE_VERSION=v1.37.2
STAGING_VERSION=v0.37.2
ETCD_VERSION=v3.7.3
CERT_MANAGER_VERSION=v1.21.2
GATEWAY_API_VERSION=v1.6.3

cache=${KUBE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/acme-http01-exporter/kube}
out="$cache/kubernetes-$KUBE_VERSION-etcd-$ETCD_VERSION-cm-$CERT_MANAGER_VERSION-gw-$GATEWAY_API_VERSION"
log() { printf '==> %s\n' "$*" >&2; }

if [ -x "$out/bin/kube-apiserver" ] && [ -x "$out/bin/etcd" ] && [ -f "$out/crds/.complete" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$cache"
# One build at a time per cache (two test runs starting together wait for each other).
exec 9>"$cache/.lock"
flock 9
if [ -x "$out/bin/kube-apiserver" ] && [ -x "$out/bin/etcd" ] && [ -f "$out/crds/.complete" ]; then
  echo "$out"
  exit 0
fi
command -v go >/dev/null 2>&1 || {
  log "go is not installed: it is needed to build kube-apiserver and etcd for the discovery tests"
  exit 1
}
mkdir -p "$out/bin" "$out/crds"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

if [ ! -x "$out/bin/etcd" ]; then
  log "building etcd $ETCD_VERSION"
  mkdir -p "$work/etcd"
  (
    cd "$work/etcd"
    go mod init example.invalid/etcd-build >/dev/null 2>&1
    printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
    go mod tidy >/dev/null 2>&1
    go build -trimpath -ldflags '-s -w' -o "$out/bin/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "$out/bin/etcd.tmp" "$out/bin/etcd"
fi

if [ ! -x "$out/bin/kube-apiserver" ]; then
  log "building kube-apiserver $KUBE_VERSION (about 5 minutes the first time)"
  dir=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$work/apiserver"
  (
    cd "$work/apiserver"
    {
      echo 'module example.invalid/kube-apiserver-build'
      echo
      echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
      echo
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      echo
      # Every staging module kubernetes replaces with a local directory, at its published
      # version instead (two samples are not served by the proxy, and nothing needs them).
      sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*#\1#p' "$dir/go.mod" |
        grep -v -e sample-cli-plugin -e sample-controller |
        while read -r module; do echo "replace $module => $module $STAGING_VERSION"; done
    } >go.mod
    printf 'package tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' >tools.go
    go mod tidy >/dev/null 2>&1
    go build -trimpath -o "$out/bin/kube-apiserver.tmp" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" \
      k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv "$out/bin/kube-apiserver.tmp" "$out/bin/kube-apiserver"
fi

if [ ! -f "$out/crds/.complete" ]; then
  log "fetching the cert-manager $CERT_MANAGER_VERSION and Gateway API $GATEWAY_API_VERSION CRDs"
  cm=$(go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  gw=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  for kind in certificates issuers clusterissuers; do
    cp "$cm/deploy/crds/cert-manager.io_$kind.yaml" "$out/crds/"
  done
  for kind in gateways httproutes; do
    cp "$gw/config/crd/standard/gateway.networking.k8s.io_$kind.yaml" "$out/crds/"
  done
  chmod u+w "$out"/crds/*.yaml
  touch "$out/crds/.complete"
fi
echo "$out"
