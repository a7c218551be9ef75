#!/usr/bin/env bash
# Removes the node hack/node-up.sh made, and everything it left on the machine: kubelet,
# kube-proxy, containerd, every container and shim, their mounts and cgroups, the pods'
# network namespaces, the bridge, the iptables chains of kube-proxy, CNI and the node, and
# the kernel settings they changed (restored). Safe to call when nothing runs, and after a
# crash: each step works from what it finds, not from what should be there.
#
#   hack/node-down.sh           keep containerd's image store (a cache: the next node-up
#                               imports nothing) and the last logs in /var/lib/pgop-node/log
#   hack/node-down.sh --purge   remove /var/lib/pgop-containerd and /var/lib/pgop-node too
#
# The data of the PersistentVolumes (/var/lib/pgop-node/volumes, one directory each, made by
# local-path-provisioner) is removed as well: the node that held it is gone.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/proc.sh"

PURGE=0
case ${1:-} in
  --purge) PURGE=1 ;;
  "") ;;
  *) die "usage: $0 [--purge]" ;;
esac

# kill_pids PID...: SIGKILL, ignoring those already gone.
kill_pids() {
  local p
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
}

# Processes in the kubelet's pod cgroups: every container, whatever its runtime did.
pod_pids() {
  local f
  for f in /sys/fs/cgroup/*/kubepods; do
    [[ -d $f ]] || continue
    find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}

# containerd's shims for our socket. They leave containerd's process group on purpose (so
# containers survive a containerd restart), so stopping containerd does not stop them.
shim_pids() {
  local d args
  for d in /proc/[0-9]*; do
    args=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    [[ $args == *containerd-shim* && $args == *"-address $CONTAINERD_SOCK "* ]] && echo "${d#/proc/}"
  done
  return 0
}

stop_containers() {
  # While containerd runs, remove its containers through it, so neither its metadata nor
  # its snapshots remember them at the next start.
  if containerd_running; then
    local ids
    ids=$(ctr_k8s tasks ls -q 2>/dev/null || true)
    if [[ -n $ids ]]; then
      # shellcheck disable=SC2086 # one word per id
      ctr_k8s tasks kill --signal SIGKILL $ids >/dev/null 2>&1 || true
      local id
      for id in $ids; do ctr_k8s tasks delete --force "$id" >/dev/null 2>&1 || true; done
    fi
    ids=$(ctr_k8s containers ls -q 2>/dev/null || true)
    if [[ -n $ids ]]; then
      # shellcheck disable=SC2086 # one word per id
      ctr_k8s containers rm $ids >/dev/null 2>&1 || true
    fi
  fi
  proc_stop "$NODE_PID_DIR/containerd.pid" 20 || true
  # Whatever survived (containerd was dead, or a task would not die): by cgroup and by shim.
  local pids
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    mapfile -t pids < <(pod_pids; shim_pids)
    ((${#pids[@]} == 0)) && return 0
    kill_pids "${pids[@]}"
    sleep 0.3
  done
  log "warning: processes survived SIGKILL: ${pids[*]}"
}

# unmount_under DIR...: every mount at or below DIR, deepest first.
unmount_under() {
  local d m
  for d in "$@"; do
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
    done < <(awk -v d="$d" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r)
  done
}

delete_netns() {
  local ns
  # containerd names the pods' network namespaces cni-<uuid>.
  for ns in /run/netns/cni-*; do
    [[ -e $ns ]] || continue
    umount "$ns" 2>/dev/null || umount -l "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
  # `ip netns` turns /run/netns into a mount of its own; drop it once nothing is in it.
  if [[ -d /run/netns ]] && [[ -z $(ls -A /run/netns) ]]; then
    umount /run/netns 2>/dev/null || true
    rmdir /run/netns 2>/dev/null || true
  fi
}

delete_links() {
  local l
  # veths still plugged into the bridge (their namespace held by a process we missed).
  for l in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$l" 2>/dev/null || true
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
}

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
  [[ -f $NODE_DIR/nft-tables.orig ]] && command -v nft >/dev/null || return 0
  local family name body
  while read -r _ family name; do
    grep -qx "table $family $name" "$NODE_DIR/nft-tables.orig" && continue
    body=$(nft list table "$family" "$name")
    # Only chain headers, hooks and policies: no rule left in it.
    if ! grep -qvE '^[[:space:]]*(table|chain|type|policy|\}|$)' <<<"$body"; then
      nft delete table "$family" "$name" || log "warning: cannot delete nftables table $family $name"
    fi
  done < <(nft list tables)
  rm -f "$NODE_DIR/nft-tables.orig"
}

# The kubelet's cgroups (cgroupfs driver: kubepods/ in every hierarchy), deepest first.
remove_cgroups() {
  local root
  # k8s.io/ is where `ctr -n k8s.io run` puts containers by default (debugging by hand).
  for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/k8s.io; do
    [[ -d $root ]] || continue
    find "$root" -depth -type d -exec rmdir {} + 2>/dev/null ||
      log "warning: could not remove all of $root"
  done
}

restore_sysctls() {
  [[ -s $NODE_DIR/sysctl.orig ]] || return 0
  local line
  while read -r line; do
    sysctl -qw "$line" 2>/dev/null || log "warning: could not restore $line"
  done <"$NODE_DIR/sysctl.orig"
  rm -f "$NODE_DIR/sysctl.orig"
}

# /run leftovers: containerd 1.6 keeps shim sockets and fifos in /run/containerd whatever its
# state dir; buildah leaves /run/runc and /run/containers. Only when no other containerd or
# buildah uses them.
clean_run_dirs() {
  if ! process_running containerd; then
    unmount_under /run/containerd
    rm -rf --one-file-system /run/containerd
  fi
  if ! process_running buildah && ! grep -q ' /var/lib/containers/storage/' /proc/mounts; then
    rm -rf --one-file-system /run/containers
  fi
  rmdir /run/runc 2>/dev/null || true
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

main() {
  need_root
  mkdir -p /run/lock
  node_lock
  local t0=$SECONDS
  # First, so no volume directory is made or removed while the rest goes.
  proc_stop "$NODE_PID_DIR/local-path-provisioner.pid" 10 || true
  proc_stop "$NODE_PID_DIR/kubelet.pid" 20 || true
  delete_node_object
  proc_stop "$NODE_PID_DIR/kube-proxy.pid" 10 || true
  stop_containers
  unmount_under "$KUBELET_DIR" "$CONTAINERD_DIR" /run/containerd
  delete_netns
  delete_links
  clean_iptables
  remove_cgroups
  restore_sysctls
  # Per-run state; the image store in root/ stays unless --purge.
  rm -rf --one-file-system "$KUBELET_DIR" "$CONTAINERD_DIR/state" "$CONTAINERD_DIR/runc" \
    "$CONTAINERD_DIR/cni" "$CONTAINERD_DIR/opt" "$CONTAINERD_DIR"/containerd.sock* "$NODE_PID_DIR" \
    "$NODE_DIR"/*.kubeconfig "$NODE_DIR"/*.yaml "$NODE_DIR/resolv.conf" "$NODE_DIR/kubelet-pki" \
    "$VOLUMES_DIR"
  rm -f "$PGOP_CLUSTER_DIR/teardown.d/50-node" "$PGOP_CLUSTER_DIR/node.env"
  clean_run_dirs
  if ((PURGE)); then
    unmount_under "$CONTAINERD_DIR" "$NODE_DIR"
    rm -rf --one-file-system "$CONTAINERD_DIR" "$NODE_DIR"
  fi
  log "node removed in $((SECONDS - t0))s"
}

main "$@"
