#!/usr/bin/env bash
# Checks that hack/cluster-down.sh left nothing behind: no process, mount, network
# namespace, bridge or iptables rule of the test cluster. Run after cluster-down; exits
# non-zero and names every leftover.
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
check "cluster processes" "$(pgrep -af "$k8s_bin|/etcd/|pgop-containerd|local-path-provisioner|containerd-shim" | grep -v -e pgrep -e verify-clean || true)"
check "mounts of the node" "$(grep -E 'pgop|/run/netns/cni-|kubelet' /proc/mounts || true)"
check "pod network namespaces" "$(find /run/netns -maxdepth 1 -name 'cni-*' -printf '%f\n' 2>/dev/null || true)"
check "bridge pgop0 or pod veths" "$( (ip -o link show pgop0 2>/dev/null; ip -o link show type veth 2>/dev/null | grep -i 'master pgop0') || true)"
check "iptables chains or rules" "$(iptables-save 2>/dev/null | grep -E '^:(KUBE-|CNI-|PGOP-)|pgop0|10\.244\.0\.|10\.96\.' || true)"

echo "verify-clean: $passed passed, $failed failed"
((failed == 0))
