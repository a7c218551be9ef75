#!/usr/bin/env bash
# Faults on a node of the test cluster, to see what the operators do when a machine is lost.
# Each is reversible and leaves the other nodes alone:
#
#   hack/node.sh stop NODE        a crashed machine: its network is cut, then every process of
#                                 the node (containerd, kubelet, kube-proxy, shims, containers)
#                                 is killed at once
#   hack/node.sh start NODE       boots it again: the kubelet recreates its pods
#   hack/node.sh partition NODE   its link to the other nodes and the API server is cut
#                                 (packets dropped, not refused); everything on it keeps running
#   hack/node.sh heal NODE        the link is back
#   hack/node.sh freeze NODE      a hung machine: every process of the node stopped (SIGSTOP)
#   hack/node.sh thaw NODE        they run on (SIGCONT)
#   hack/node.sh status           each node: its processes, its faults, its Ready condition
#
# NODE is pgop-node-1..3 or 1..3. The control plane marks a lost node NotReady within 20 s;
# docs/node.md has the figures. hack/node-up.sh undoes every fault it finds.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/proc.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node-start.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node-stop.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node-faults.sh"

usage() { die "usage: $0 stop|start|partition|heal|freeze|thaw NODE, or $0 status"; }

# has_fault NAME: the selected node carries fault NAME.
has_fault() { [[ -e $(fault_marker "$1") ]]; }

status() {
  local i ready faults
  printf '%-12s %-11s %-10s %s\n' NODE PROCESSES READY FAULTS
  for i in $(existing_nodes); do
    node_select "$i"
    ready=$(kubectl_admin get node "$NODE_NAME" \
      -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) || ready="?"
    faults=$(node_faults | paste -sd, -)
    printf '%-12s %-11s %-10s %s\n' "$NODE_NAME" "$(node_pids | wc -l)" "${ready:-?}" "${faults:--}"
  done
}

main() {
  need_root
  (($# >= 1)) || usage
  local action=$1
  load_cluster_env
  if [[ $action == status ]]; then
    status
    return
  fi
  (($# == 2)) || usage
  node_select "$2"
  node_exists || die "$NODE_NAME is not running (start the cluster with PGOP_NODES=$NODE_INDEX or more)"
  mkdir -p /run/lock
  node_lock
  case $action in
    stop)
      has_fault frozen && die "$NODE_NAME is frozen: thaw it first"
      has_fault stopped && die "$NODE_NAME is stopped already"
      node_stop
      ;;
    start)
      has_fault stopped || die "$NODE_NAME is not stopped"
      node_start
      ;;
    partition)
      has_fault partitioned && die "$NODE_NAME is partitioned already"
      node_partition
      ;;
    heal)
      has_fault partitioned || die "$NODE_NAME is not partitioned"
      node_heal
      ;;
    freeze)
      has_fault stopped && die "$NODE_NAME is stopped: nothing runs to freeze"
      has_fault frozen && die "$NODE_NAME is frozen already"
      node_freeze
      ;;
    thaw)
      has_fault frozen || die "$NODE_NAME is not frozen"
      node_thaw
      ;;
    *) usage ;;
  esac
  log "$action $NODE_NAME: done"
}

main "$@"
