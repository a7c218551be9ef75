#!/usr/bin/env bash
# Builds the Kubernetes and etcd binaries the test cluster runs, from the Go module proxy.
#
# Nothing can be downloaded from release pages on our machines, so every binary is compiled
# from the published modules. k8s.io/kubernetes points its staging modules at ./staging with
# `replace` lines that a consumer's build ignores; the throwaway go.mod written here replaces
# each of them by its published v0.X.Y instead. Results are cached under
# ~/.cache/pg-operators/k8s/<version>, so only the first run pays for the build.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${PGOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg-operators}"
OUT="$CACHE_ROOT/k8s/$K8S_VERSION"
ETCD_OUT="$CACHE_ROOT/etcd/$ETCD_VERSION"
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)

command -v go >/dev/null || { echo "build-k8s: go is required (Go 1.26) and was not found" >&2; exit 1; }

staging_modules=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers
  controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
  endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
  kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver
  sample-cli-plugin sample-controller streaming cri-streaming)

all_present() {
  local dir=$1; shift
  for b in "$@"; do [[ -x "$dir/$b" ]] || return 1; done
}

build_kubernetes() {
  if all_present "$OUT" "${K8S_BINARIES[@]}"; then
    echo "build-k8s: Kubernetes $K8S_VERSION cached in $OUT"
    return
  fi
  local minor=${K8S_VERSION#v1.} staging_version
  staging_version="v0.${minor}"
  local work; work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  {
    echo "module pgop.local/k8sbuild"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    for m in "${staging_modules[@]}"; do echo "replace k8s.io/$m => k8s.io/$m $staging_version"; done
  } >"$work/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for b in "${K8S_BINARIES[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$b\""; done
    echo ")"
  } >"$work/tools.go"
  echo "build-k8s: resolving k8s.io/kubernetes $K8S_VERSION modules"
  (cd "$work" && go mod tidy -e >/dev/null 2>"$work/tidy.log") || { cat "$work/tidy.log" >&2; exit 1; }
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local major=1 minor_num=${minor%%.*}
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor_num"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date -X $pkg.gitCommit=module-proxy"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  mkdir -p "$OUT.partial"
  for b in "${K8S_BINARIES[@]}"; do
    [[ -x "$OUT.partial/$b" ]] && continue
    local cgo=0
    [[ $b == kubelet ]] && cgo=1
    echo "build-k8s: building $b $K8S_VERSION"
    (cd "$work" && CGO_ENABLED=$cgo go build -trimpath -tags selinux,notest,grpcnotrace \
      -ldflags "$ldflags" -o "$OUT.partial/$b" "k8s.io/kubernetes/cmd/$b")
  done
  rm -rf "$OUT" && mv "$OUT.partial" "$OUT"
}

build_etcd() {
  if all_present "$ETCD_OUT" etcd; then
    echo "build-k8s: etcd $ETCD_VERSION cached in $ETCD_OUT"
    return
  fi
  local work; work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  printf 'module pgop.local/etcdbuild\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$work/tools.go"
  echo "build-k8s: building etcd $ETCD_VERSION"
  (cd "$work" && go mod tidy -e >/dev/null 2>&1 && mkdir -p "$ETCD_OUT.partial" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ETCD_OUT.partial/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$ETCD_OUT" && mv "$ETCD_OUT.partial" "$ETCD_OUT"
}

build_etcd
build_kubernetes
echo "K8S_BIN=$OUT"
echo "ETCD_BIN=$ETCD_OUT"
