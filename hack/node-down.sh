#!/usr/bin/env bash
# Removes the nodes hack/node-up.sh made, and everything they left on the machine: every
# process of every node (kubelet, kube-proxy, containerd, shims, containers), their network
# and mount namespaces (with the mounts, pod sandboxes, links and iptables rules inside),
# cgroups and routes; on the host, the bridge, its kube-proxy and provisioner, the iptables
# chains of kube-proxy and the guard, and the kernel settings they changed (restored). Safe to
# call when nothing runs, and after a crash: each step works from what it finds, not from
# what should be there.
#
#   hack/node-down.sh           keep each node's containerd image store (a cache: the next
#                               node-up imports nothing) and the last logs, in
#                               /var/lib/pgop-nodes/<node>/{containerd/root,log}
#   hack/node-down.sh --purge   remove /var/lib/pgop-nodes altogether
#
# The data of the PersistentVolumes (/var/lib/pgop-nodes/<node>/volumes, one directory each,
# made by local-path-provisioner) is removed as well: the node that held it is gone.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/proc.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node-stop.sh"

PURGE=0
case ${1:-} in
  --purge) PURGE=1 ;;
  "") ;;
  *) die "usage: $0 [--purge]" ;;
esac

# remove_chains CMD PREFIX_REGEX: deletes the rules jumping to chains whose name matches,
# then the chains themselves, in every table, with iptables or ip6tables (CMD).
remove_chains() {
  local cmd=$1 re=$2 table chain rule
  command -v "$cmd" >/dev/null || return 0
  for table in filter nat mangle raw; do
    "$cmd-save" -t "$table" >/dev/null 2>&1 || continue
    # Rules in built-in chains that jump to one of ours.
    while read -r rule; do
      # shellcheck disable=SC2086 # the saved rule is a list of arguments
      eval "$cmd -w -t $table -D ${rule#-A }" 2>/dev/null || true
    done < <("$cmd-save" -t "$table" | grep -E "^-A [A-Z]+ .*-j ($re)" | grep -Ev "^-A ($re)" || true)
    for chain in $("$cmd-save" -t "$table" | sed -n 's/^:\([^ ]*\) .*/\1/p' | grep -E "^($re)" || true); do
      "$cmd" -w -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $("$cmd-save" -t "$table" | sed -n 's/^:\([^ ]*\) .*/\1/p' | grep -E "^($re)" || true); do
      "$cmd" -w -t "$table" -X "$chain" 2>/dev/null || log "warning: cannot delete $cmd $table chain $chain"
    done
  done
}

clean_iptables() {
  # kube-proxy knows its own rules best; the sweep after it catches what it does not
  # (CNI's portmap chains, the kubelet's canaries, the node's guard).
  if [[ -x $K8S_BIN/kube-proxy ]]; then
    timeout 60 "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  remove_chains iptables 'KUBE-|CNI-|PGOP-'
  remove_chains ip6tables 'KUBE-|CNI-|PGOP-'
  # Tables iptables-nft (or kube-proxy) created for the node, now holding no rule.
  [[ -f $SHARED_DIR/nft-tables.orig ]] && command -v nft >/dev/null || return 0
  local family name body
  while read -r _ family name; do
    grep -qx "table $family $name" "$SHARED_DIR/nft-tables.orig" && continue
    body=$(nft list table "$family" "$name")
    # Only chain headers, hooks and policies: no rule left in it.
    if ! grep -qvE '^[[:space:]]*(table|chain|type|policy|\}|$)' <<<"$body"; then
      nft delete table "$family" "$name" || log "warning: cannot delete nftables table $family $name"
    fi
  done < <(nft list tables)
  rm -f "$SHARED_DIR/nft-tables.orig"
}

restore_sysctls() {
  [[ -s $SHARED_DIR/sysctl.orig ]] || return 0
  local line
  while read -r line; do
    sysctl -qw "$line" 2>/dev/null || log "warning: could not restore $line"
  done <"$SHARED_DIR/sysctl.orig"
  rm -f "$SHARED_DIR/sysctl.orig"
}

# The Node object goes too, so the next node-up waits for a fresh Ready and its pods are
# garbage-collected. Only when the control plane still answers; cluster-down runs this first.
delete_node_object() {
  local env=$PGOP_CLUSTER_DIR/cluster.env kubeconfig
  [[ -s $env && -x $K8S_BIN/kubectl ]] || return 0
  kubeconfig=$(sed -n 's/^KUBECONFIG=//p' "$env")
  [[ -n $kubeconfig ]] || return 0
  "$K8S_BIN/kubectl" --kubeconfig "$kubeconfig" --request-timeout=5s delete node "$NODE_NAME" \
    --ignore-not-found --wait=false >/dev/null 2>&1 || log "warning: could not delete Node $NODE_NAME"
}

# The host's side: its kube-proxy's and the guard's rules, the bridge (with any veth a node
# left on it), the namespace files' mount, buildah's /run leftovers.
remove_host_network() {
  proc_stop "$SHARED_PID_DIR/kube-proxy.pid" 10 || true
  clean_iptables
  local l
  for l in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$l" 2>/dev/null || true
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  if mountpoint -q "$NS_DIR"; then umount "$NS_DIR" 2>/dev/null || umount -l "$NS_DIR"; fi
  rmdir "$NS_DIR" 2>/dev/null || true
  if ! process_running buildah && ! grep -q ' /var/lib/containers/storage/' /proc/mounts; then
    rm -rf --one-file-system /run/containers
  fi
  rmdir /run/runc 2>/dev/null || true
}

# known_nodes: every node with namespaces or a directory, whatever state it was left in.
known_nodes() {
  {
    existing_nodes
    local d
    for d in "$PGOP_NODES_DIR"/pgop-node-* "$NS_DIR"/pgop-node-*; do
      [[ -e $d ]] || continue
      d=${d##*/pgop-node-}
      echo "${d%%.*}"
    done
  } | sort -un
}

main() {
  need_root
  mkdir -p /run/lock
  node_lock
  local t0=$SECONDS i
  # First, so no volume directory is made or removed while the rest goes.
  proc_stop "$SHARED_PID_DIR/local-path-provisioner.pid" 10 || true
  for i in $(known_nodes); do
    node_select "$i"
    node_remove
    delete_node_object
  done
  remove_host_network
  restore_sysctls
  rm -rf --one-file-system "$SHARED_PID_DIR" "$SHARED_DIR"/*.kubeconfig "$SHARED_DIR"/*.yaml
  rm -f "$PGOP_CLUSTER_DIR/teardown.d/50-node" "$PGOP_CLUSTER_DIR/node.env"
  if ((PURGE)); then
    rm -rf --one-file-system "$PGOP_NODES_DIR"
    rmdir "$NODE_SELF_DIR" 2>/dev/null || true
  fi
  log "nodes removed in $((SECONDS - t0))s"
}

main "$@"
