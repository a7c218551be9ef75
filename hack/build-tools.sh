#!/usr/bin/env bash
# Builds or installs the tools that check what we ship: helm (charts), kubeconform (manifests
# against Kubernetes' schemas), promtool (alert rules, metrics output), the Prometheus server
# (the observability test scrapes the operators with it) and PyYAML (the checks' Python helpers).
#
# Release pages are out of reach on our machines, so helm and kubeconform are compiled from
# the Go module proxy, each from a throwaway go.mod (as build-k8s.sh does for Kubernetes), and
# cached under ~/.cache/pg-operators/tools/<name>-<version>: only the first run pays.
# promtool and prometheus come from Debian's `prometheus` package. Only the two binaries are
# unpacked into the cache, because installing the package would also enable and start a
# Prometheus server on machines that run systemd.
#
# Prints NAME=path lines (HELM, KUBECONFORM, PROMTOOL, PROMETHEUS, PYTHONPATH); `--env` prints
# them as `export` lines for `eval`. Anything that cannot be had is an error, never a skip.
set -euo pipefail

# The newest v3 release and kubeconform release on the module proxy when this was written
# (`go list -m -versions helm.sh/helm/v3`); pinned so every machine checks with the same tools.
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.8.0}"
PYYAML_VERSION="${PYYAML_VERSION:-6.0.3}"
CACHE_ROOT="${PGOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg-operators}"
TOOLS="$CACHE_ROOT/tools"

as_env=false
[[ ${1:-} == --env ]] && as_env=true
# shellcheck source=hack/lib/log.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/log.sh"

# go_build NAME VERSION MODULE PACKAGE LDFLAGS: builds PACKAGE of MODULE@VERSION into
# $TOOLS/NAME-VERSION/bin/NAME unless it is there. LDFLAGS may name @K8S_MAJOR@ and
# @K8S_MINOR@, replaced by the Kubernetes version of the client-go the module resolves to.
go_build() {
  local name=$1 version=$2 module=$3 package=$4 ldflags=$5
  local out="$TOOLS/$name-$version"
  if [[ -x "$out/bin/$name" ]]; then
    echo "$out/bin/$name"
    return
  fi
  command -v go >/dev/null || die "go is required to build $name and was not found"
  local work started
  work=$(mktemp -d)
  started=$(date +%s)
  printf 'module pgop.local/%sbuild\n\ngo 1.26\n\nrequire %s %s\n' "$name" "$module" "$version" >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" >"$work/tools.go"
  log "resolving $module $version"
  if ! (cd "$work" && go mod tidy >"$work/tidy.log" 2>&1); then
    cat "$work/tidy.log" >&2
    rm -rf "$work"
    die "cannot resolve $module $version from the Go module proxy"
  fi
  if [[ $ldflags == *@K8S_* ]]; then
    local client_go k8s_minor
    client_go=$(cd "$work" && go list -m -f '{{.Version}}' k8s.io/client-go)
    k8s_minor=${client_go#v0.}
    k8s_minor=${k8s_minor%%.*}
    ldflags=${ldflags//@K8S_MAJOR@/1}
    ldflags=${ldflags//@K8S_MINOR@/$k8s_minor}
  fi
  log "building $name $version"
  mkdir -p "$out.partial/bin"
  if ! (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" \
    -o "$out.partial/bin/$name" "$package"); then
    rm -rf "$work"
    die "building $name $version failed"
  fi
  rm -rf "$work" "$out"
  mv "$out.partial" "$out"
  log "built $name $version in $(($(date +%s) - started))s"
  echo "$out/bin/$name"
}

# The path of NAME (promtool or prometheus): the newest unpacked into the cache by
# unpack_prometheus_deb; nothing when there is none. One on PATH is not used: a machine where
# some earlier install left one would test another binary than a fresh machine does.
prometheus_binary() {
  local name=$1 cached
  cached=$(compgen -G "$TOOLS/$name-*/bin/$name" | sort -V | tail -n 1 || true)
  if [[ -n $cached && -x $cached ]]; then
    echo "$cached"
  fi
}

# Unpacks the named binaries of Debian's prometheus package (downloaded once for all of them,
# not installed) into $TOOLS/<name>-<version>/bin/<name>.
unpack_prometheus_deb() {
  (($# > 0)) || return 0
  command -v apt-get >/dev/null || die "$* missing and this machine has no apt-get to fetch Debian's prometheus package"
  log "fetching $* from Debian's prometheus package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  local version work name out
  version=$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')
  [[ -n $version && $version != "(none)" ]] || die "no Debian package provides prometheus ($*) here"
  work=$(mktemp -d)
  # apt downloads as its _apt user when that user can write the directory.
  chown _apt "$work" 2>/dev/null || chmod 777 "$work"
  if ! (cd "$work" && apt-get download -qq "prometheus=$version" >/dev/null); then
    rm -rf "$work"
    die "apt-get download prometheus=$version failed"
  fi
  mkdir -p "$work/root"
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  for name in "$@"; do
    [[ -x "$work/root/usr/bin/$name" ]] || { rm -rf "$work"; die "the prometheus package has no /usr/bin/$name"; }
    out="$TOOLS/$name-${version//[^A-Za-z0-9.+-]/_}"
    rm -rf "$out.partial"
    mkdir -p "$out.partial/bin"
    mv "$work/root/usr/bin/$name" "$out.partial/bin/$name"
    rm -rf "$out"
    mv "$out.partial" "$out"
    "$out/bin/$name" --version >/dev/null 2>&1 || { rm -rf "$work"; die "the unpacked $name does not run"; }
  done
  rm -rf "$work"
}

# A directory to put on PYTHONPATH for `import yaml`, empty when python3 already has it.
pyyaml_path() {
  command -v python3 >/dev/null || die "python3 is required and was not found"
  if python3 -c 'import yaml' 2>/dev/null; then
    return
  fi
  local out="$TOOLS/pyyaml-$PYYAML_VERSION"
  if [[ ! -f "$out/yaml/__init__.py" ]]; then
    log "installing PyYAML $PYYAML_VERSION from PyPI into $out"
    python3 -m pip install --quiet --disable-pip-version-check --target "$out.partial" "PyYAML==$PYYAML_VERSION" ||
      die "cannot install PyYAML $PYYAML_VERSION from PyPI"
    rm -rf "$out" && mv "$out.partial" "$out"
  fi
  PYTHONPATH="$out" python3 -c 'import yaml' || die "PyYAML in $out cannot be imported"
  echo "$out"
}

helm_pkg=helm.sh/helm/v3
helm=$(go_build helm "$HELM_VERSION" "$helm_pkg" "$helm_pkg/cmd/helm" \
  "-X $helm_pkg/internal/version.version=$HELM_VERSION -X $helm_pkg/internal/version.gitTreeState=clean \
 -X $helm_pkg/internal/version.gitCommit=module-proxy \
 -X $helm_pkg/pkg/lint/rules.k8sVersionMajor=@K8S_MAJOR@ -X $helm_pkg/pkg/lint/rules.k8sVersionMinor=@K8S_MINOR@ \
 -X $helm_pkg/pkg/chartutil.k8sVersionMajor=@K8S_MAJOR@ -X $helm_pkg/pkg/chartutil.k8sVersionMinor=@K8S_MINOR@")
kubeconform=$(go_build kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform \
  github.com/yannh/kubeconform/cmd/kubeconform "-X main.version=$KUBECONFORM_VERSION")
missing=()
for name in promtool prometheus; do
  [[ -n $(prometheus_binary "$name") ]] || missing+=("$name")
done
unpack_prometheus_deb "${missing[@]}"
promtool=$(prometheus_binary promtool)
prometheus=$(prometheus_binary prometheus)
[[ -n $promtool && -n $prometheus ]] || die "promtool or prometheus is still missing after unpacking"
pythonpath=$(pyyaml_path)

"$helm" version --short >/dev/null || die "$helm does not run"
"$kubeconform" -v >/dev/null || die "$kubeconform does not run"

if $as_env; then
  printf 'export HELM=%q\nexport KUBECONFORM=%q\nexport PROMTOOL=%q\nexport PROMETHEUS=%q\n' \
    "$helm" "$kubeconform" "$promtool" "$prometheus"
  [[ -z $pythonpath ]] || printf 'export PYTHONPATH=%q\n' "$pythonpath${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "HELM=$helm"
  echo "KUBECONFORM=$kubeconform"
  echo "PROMTOOL=$promtool"
  echo "PROMETHEUS=$prometheus"
  echo "PYTHONPATH=$pythonpath"
fi
