# shellcheck shell=bash
# The faults hack/node.sh puts on a node, and their undoing. Sourced after hack/lib/node.sh,
# proc.sh, node-start.sh and node-stop.sh, with the node chosen by node_select. Each fault
# leaves a marker file, fault-<name>, in the node's directory, so `hack/node.sh status` and
# node-up.sh know what to undo.

# Drop, not refuse: every packet through the node's only link, both ways, before conntrack
# sees it. Address resolution still works, as on a switch port whose traffic is cut
# upstream; pods on the node still reach each other over its own pod bridge.
node_cut_link() {
  node_net nft -f - <<EON
table inet pgop_$1 {
  chain incoming { type filter hook prerouting priority -400; policy accept; iifname "eth0" drop; }
  chain outgoing { type filter hook postrouting priority -400; policy accept; oifname "eth0" drop; }
}
EON
}

node_restore_link() { node_net nft delete table inet "pgop_$1" 2>/dev/null || true; }

fault_marker() { echo "$NODE_HOST_DIR/fault-$1"; }

# node_faults: the faults the node carries, one per line.
node_faults() {
  local f
  for f in "$NODE_HOST_DIR"/fault-*; do
    [[ -e $f ]] && echo "${f##*/fault-}"
  done
  return 0
}

# partition: the node keeps running, cut off from the other nodes and the API server.
node_partition() {
  node_restore_link partition
  node_cut_link partition
  : >"$(fault_marker partitioned)"
}

node_heal() {
  node_restore_link partition
  rm -f "$(fault_marker partitioned)"
}

# stop: a crashed machine. Its network goes first, so no peer sees connections refused by a
# half-dead node; then every process dies at once (node_kill).
node_stop() {
  node_restore_link stopped
  node_cut_link stopped
  : >"$(fault_marker stopped)"
  node_kill
}

# start: the machine boots again: containerd, kubelet and kube-proxy from the configuration
# they had; the kubelet recreates the pods it is given. Its link comes back once they run.
node_start() {
  node_start_containerd
  node_start_agents
  node_restore_link stopped
  rm -f "$(fault_marker stopped)"
}

# freeze: a hung machine. Every process of the node is stopped with SIGSTOP (listed from its
# cgroup, again until none is left running, since a process may fork while the others stop);
# its kernel, network namespace included, still answers below them.
node_freeze() {
  : >"$(fault_marker frozen)"
  local pid state running
  for _ in $(seq 50); do
    running=0
    for pid in $(node_pids); do
      state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || continue
      [[ $state == [TtZX] ]] && continue
      kill -STOP "$pid" 2>/dev/null || true
      running=1
    done
    ((running)) || return 0
    sleep 0.05
  done
  die "processes of $NODE_NAME keep running after SIGSTOP"
}

node_thaw() {
  local pid
  for pid in $(node_pids); do kill -CONT "$pid" 2>/dev/null || true; done
  rm -f "$(fault_marker frozen)"
}

# node_undo_faults: whatever hack/node.sh did to the node, undone (thaw first: a frozen
# process cannot be stopped cleanly).
node_undo_faults() {
  local fault
  for fault in $(node_faults); do
    case $fault in
      frozen) node_thaw ;;
    esac
  done
  for fault in $(node_faults); do
    case $fault in
      partitioned) node_heal ;;
      stopped) node_start ;;
    esac
  done
}
