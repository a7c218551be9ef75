# shellcheck shell=bash
# Stopping one node of the test cluster, as a crash (node_kill) or for good (node_remove).
# Sourced by node-down.sh and node.sh after hack/lib/node.sh and hack/lib/proc.sh, with the
# node chosen by node_select.

# node_kill: every process of the node dies at once, daemons, shims and containers, as in a
# power cut. Its namespaces, mounts and files stay.
node_kill() {
  local pids
  for _ in $(seq 50); do
    mapfile -t pids < <(node_pids)
    ((${#pids[@]} == 0)) && break
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.1
  done
  ((${#pids[@]} == 0)) || log "warning: processes of $NODE_NAME survived SIGKILL: ${pids[*]}"
  rm -f "$NODE_PID_DIR"/*.pid
}

# node_stop_containers: through containerd while it runs, so neither its metadata nor its
# snapshots remember the containers at the node's next start.
node_stop_containers() {
  containerd_running || return 0
  local ids id
  ids=$(ctr_k8s tasks ls -q 2>/dev/null || true)
  if [[ -n $ids ]]; then
    # shellcheck disable=SC2086 # one word per id
    ctr_k8s tasks kill --signal SIGKILL $ids >/dev/null 2>&1 || true
    for id in $ids; do ctr_k8s tasks delete --force "$id" >/dev/null 2>&1 || true; done
  fi
  ids=$(ctr_k8s containers ls -q 2>/dev/null || true)
  if [[ -n $ids ]]; then
    # shellcheck disable=SC2086 # one word per id
    ctr_k8s containers rm $ids >/dev/null 2>&1 || true
  fi
}

# node_remove: the node and everything it made: processes, namespaces (their mounts, pod
# sandboxes, links and iptables rules go with them), its routes, cgroups and per-run state,
# and its volumes (the node that held them is gone). The image store stays unless PURGE=1.
node_remove() {
  proc_stop "$NODE_PID_DIR/kubelet.pid" 20 || true
  proc_stop "$NODE_PID_DIR/kube-proxy.pid" 10 || true
  node_stop_containers
  proc_stop "$NODE_PID_DIR/containerd.pid" 20 || true
  node_kill
  local f
  for f in "$NODE_MNTNS" "$NODE_NETNS"; do
    if mountpoint -q "$f"; then umount "$f" 2>/dev/null || umount -l "$f"; fi
    rm -f "$f"
  done
  if ip link show "$NODE_VETH" >/dev/null 2>&1; then ip link del "$NODE_VETH"; fi
  ip route del "$POD_CIDR" 2>/dev/null || true
  local d
  for d in $(node_cgroup_dirs); do
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || log "warning: could not remove all of $d"
  done
  [[ -d $NODE_HOST_DIR ]] || return 0
  if [[ ${PURGE:-0} == 1 ]]; then
    rm -rf --one-file-system "$NODE_HOST_DIR"
    return 0
  fi
  # Per-run state; the image store (containerd/root) and the last logs stay.
  rm -rf --one-file-system "$NODE_HOST_DIR"/{kubelet,kubelet-pki,volumes,pod-logs,container-logs,cni-cache,run} \
    "$NODE_HOST_DIR"/containerd/{state,runc,cni,opt} "$NODE_HOST_DIR"/containerd/containerd.sock* \
    "$NODE_HOST_DIR"/*.kubeconfig "$NODE_HOST_DIR"/*.yaml "$NODE_HOST_DIR"/resolv.conf \
    "$NODE_HOST_DIR"/containerd/config.toml "$NODE_HOST_DIR"/fault-*
}
