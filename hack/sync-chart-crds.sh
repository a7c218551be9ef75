#!/usr/bin/env bash
# Copies each operator's CRDs from deploy/crds (generated from crates/api by `just crds`) into
# its chart's crds/ directory; with --check, changes nothing and fails when a chart's copy
# differs, is missing, or when a CRD belongs to no chart.
#
# Each chart ships the CRDs of the kinds its operator reconciles, so each CRD has exactly one
# owner: installing both charts never makes Helm fight over a CRD.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

declare -A owner=(
  [databases.database.example.com.yaml]=database-operator
  [backups.database.example.com.yaml]=backup-operator
  [restores.database.example.com.yaml]=backup-operator
)

check=false
case ${1:-} in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

problems=()
for src in deploy/crds/*.yaml; do
  file=${src##*/}
  [[ -n ${owner[$file]:-} ]] || problems+=("$src belongs to no chart: add it to the owner table in $0")
done
for file in "${!owner[@]}"; do
  src=deploy/crds/$file
  dst=charts/${owner[$file]}/crds/$file
  if [[ ! -f $src ]]; then
    problems+=("$src is missing: run ./justw crds")
    continue
  fi
  if $check; then
    if [[ ! -f $dst ]]; then
      problems+=("$dst is missing")
    elif ! cmp -s "$src" "$dst"; then
      problems+=("$dst differs from $src")
    fi
  elif ! cmp -s "$src" "$dst"; then
    mkdir -p "${dst%/*}"
    cp "$src" "$dst"
    echo "sync-chart-crds: wrote $dst"
  fi
done
for dst in charts/*/crds/*; do
  [[ -e $dst ]] || continue
  file=${dst##*/} chart=${dst#charts/}
  chart=${chart%%/*}
  [[ ${owner[$file]:-} == "$chart" ]] || problems+=("$dst is not a CRD of $chart: remove it")
done

if ((${#problems[@]})); then
  printf 'sync-chart-crds: %s\n' "${problems[@]}" >&2
  $check && echo "sync-chart-crds: run ./justw chart-crds to copy deploy/crds into the charts" >&2
  exit 1
fi
$check && echo "sync-chart-crds: chart CRDs match deploy/crds"
exit 0
