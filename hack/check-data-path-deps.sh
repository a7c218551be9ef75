#!/usr/bin/env bash
# Fails when a crate of the backup data path, which runs inside the backup Jobs, depends on
# kube, k8s-openapi or the api crate (which depends on kube). Those Jobs never talk to the
# Kubernetes API; keeping the client out keeps them small and keeps the contract between the
# controller and its Jobs in backup-job, where both sides see it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib/log.sh
source hack/lib/log.sh

# The crates that must stay free of Kubernetes, and the packages they must not reach.
data_path_crates=(backup-data backup-job secret error-text)
forbidden='^(kube|kube-[a-z]+|k8s-openapi|pg-operators-api) '

failed=0
for crate in "${data_path_crates[@]}"; do
  tree=$(cargo tree -p "$crate" -e normal --prefix none) ||
    die "cargo tree -p $crate failed (its error is above); is $crate still a workspace member?"
  found=$(grep -E "$forbidden" <<<"$tree" | sed 's/ (\*)$//' | sort -u || true)
  if [[ -n $found ]]; then
    failed=1
    log "error: $crate depends on Kubernetes crates it must not use:"
    while IFS= read -r line; do log "  $line"; done <<<"$found"
    log "  see why: cargo tree -p $crate -e normal -i <package>; move the code that needs" \
      "them into backup-operator's controller, or what both sides share into backup-job"
  fi
done
((failed == 0)) || exit 1
log "ok: ${data_path_crates[*]} are free of kube, k8s-openapi and api"
