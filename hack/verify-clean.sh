#!/usr/bin/env bash
# Checks that hack/cluster-down.sh left nothing behind: no process, mount, namespace, cgroup,
# bridge, link or iptables rule of the test cluster or any of its nodes. Run after
# cluster-down; exits non-zero and names every leftover.
set -uo pipefail

passed=0 failed=0
check() {
  local what=$1 leftovers=$2
  if [[ -z $leftovers ]]; then
    passed=$((passed + 1))
    echo "verify-clean: ok: no $what"
  else
    failed=$((failed + 1))
    echo "verify-clean: LEFT BEHIND: $what:" >&2
    local line
    while IFS= read -r line; do echo "  $line" >&2; done <<<"$leftovers"
  fi
}

k8s_bin="${PGOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg-operators}/k8s"
check "cluster processes" "$(pgrep -af "$k8s_bin|/etcd/|pgop-node|containerd|local-path-provisioner|node-exec" | grep -v -e pgrep -e verify-clean || true)"
# A node's own mounts live in its mount namespace, which goes with it; the host keeps none.
check "mounts of the nodes" "$(grep -E 'pgop|/run/netns/cni-|kubelet' /proc/mounts || true)"
check "node namespaces" "$(find /run/pgop-nodes /run/netns -maxdepth 1 \( -name 'pgop-node-*' -o -name 'cni-*' \) -printf '%p\n' 2>/dev/null || true)"
check "node cgroups" "$(find /sys/fs/cgroup -maxdepth 2 \( -name 'pgop-node-*' -o -name kubepods \) -printf '%p\n' 2>/dev/null || true)"
check "bridge pgop0 or node links" "$( (ip -o link show pgop0 2>/dev/null; ip -o link show type veth 2>/dev/null | grep -E 'master pgop0|pgop-veth') || true)"
check "routes to the nodes" "$(ip route show | grep -E '10\.244\.|10\.96\.' || true)"
check "iptables chains or rules" "$(iptables-save 2>/dev/null | grep -E '^:(KUBE-|CNI-|PGOP-)|pgop0|10\.244\.|10\.96\.' || true)"

echo "verify-clean: $passed passed, $failed failed"
((failed == 0))
