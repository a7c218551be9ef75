#!/usr/bin/env bash
# Stops every process of the test cluster (control plane, and whatever a node script recorded
# beside it) and removes the state dir. Safe to call when nothing runs.
#
#   PGOP_CLUSTER_DIR=/var/tmp/pgop-cluster   the cluster to stop
#   PGOP_STOP_TIMEOUT=10                     seconds between TERM and KILL per process
#
# Node scripts can hook in: every executable in <state>/teardown.d/ runs first (in name
# order), for what killing a process does not undo (network namespaces, mounts, bridges),
# and every <state>/pids/*.pid written with hack/lib/proc.sh is stopped.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/proc.sh
source "$REPO/hack/lib/proc.sh"

STATE=${PGOP_CLUSTER_DIR:-/var/tmp/pgop-cluster}
STOP_TIMEOUT=${PGOP_STOP_TIMEOUT:-10}

# shellcheck source=hack/lib/log.sh
source "$REPO/hack/lib/log.sh"

# cluster-up.sh calls this script while it holds the lock itself.
if [[ -z ${PGOP_CLUSTER_LOCKED:-} ]]; then
  mkdir -p "$(dirname "$STATE")"
  exec 9>"$STATE.lock"
  if ! flock -n 9; then
    log "waiting for another cluster-up.sh or cluster-down.sh to finish"
    flock -w 1800 9 || { log "ERROR: still locked after 30 minutes: $STATE.lock"; exit 1; }
  fi
fi

if [[ ! -d $STATE ]]; then
  log "no cluster in $STATE"
  exit 0
fi

for hook in "$STATE"/teardown.d/*; do
  [[ -x $hook ]] || continue
  log "running $hook"
  "$hook" || log "$hook failed (exit $?); stopping the processes anyway"
done

# Newest first, the reverse of the start order: node components before the API server, etcd
# last, so nothing spends its shutdown retrying a server that is already gone.
failed=0
if [[ -d $STATE/pids ]]; then
  while IFS= read -r pidfile; do
    proc_stop "$pidfile" "$STOP_TIMEOUT" || failed=1
  done < <(find "$STATE/pids" -name '*.pid' -printf '%T@ %p\n' | sort -rn | cut -d' ' -f2-)
fi
if ((failed)); then
  log "ERROR: some processes could not be stopped; $STATE is kept for inspection"
  exit 1
fi

# --one-file-system: a node script may leave something mounted under the state dir; never
# delete through a mount into another file system.
rm -rf --one-file-system "$STATE" || {
  log "ERROR: could not remove $STATE (still mounted: $(awk -v d="$STATE" 'index($2, d) == 1 {print $2}' /proc/mounts | tr '\n' ' '))"
  exit 1
}
log "stopped the cluster and removed $STATE"
