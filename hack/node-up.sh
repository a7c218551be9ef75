#!/usr/bin/env bash
# Starts the test cluster's nodes, 1 to 3 (PGOP_NODES, default 1): pgop-node-1 to pgop-node-3,
# each a network namespace, a mount namespace and a cgroup of this machine with its own
# containerd, kubelet and kube-proxy (hack/lib/node-start.sh); on the host, the bridge pgop0
# joining them, a kube-proxy (so the host reaches Services), the default StorageClass's
# provisioner (crates/local-path-provisioner, built with cargo when missing or older than its
# sources) and CoreDNS. Idempotent: running nodes are reused, a node stopped, partitioned or
# frozen by hack/node.sh is brought back, missing ones are made. Nodes beyond PGOP_NODES that
# run already are left running.
#
#   PGOP_NODE=1 hack/cluster-up.sh   the usual way: cluster-up.sh runs this script under its
#                        lock (PGOP_CLUSTER_LOCKED=1) once the control plane is ready
#   hack/node-up.sh      the same from this side: runs cluster-up.sh, then starts the nodes;
#                        prints nothing on stdout
#   hack/cluster-down.sh stops both: it runs hack/node-down.sh first, through the hook
#                        <state>/teardown.d/50-node this script installs
#
# The control plane must advertise the bridge address, so nodes and pods reach the API server
# (the `kubernetes` Service: 10.96.0.1 -> 10.244.0.1:6443): this script runs cluster-up.sh with
# PGOP_ADVERTISE_ADDRESS=10.244.0.1, which starts one, reuses a matching one or replaces one
# advertising 127.0.0.1. Tests that call cluster-up.sh without that variable reuse it.
#
# Addresses: host 10.244.0.1 on the bridge, node N at 10.244.0.1N with pods in 10.244.N.0/24;
# Services 10.96.0.0/16, DNS 10.96.0.10. Pod traffic stays on this machine: the nodes have no
# default route, the host forwards only bridge to bridge, and nothing is masqueraded.
#
# Settings: PGOP_NODES (1), PGOP_CLUSTER_DIR (/var/tmp/pgop-cluster), PGOP_NODE_TIMEOUT (180 s
# for the nodes and CoreDNS to become ready), CARGO_TARGET_DIR (target).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/proc.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/pki.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node-start.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node-stop.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node-faults.sh"

TIMEOUT=${PGOP_NODE_TIMEOUT:-180}
# The host's own pieces: restarted on their own, so pods survive an upgrade of them.
HOST_DAEMONS=(kube-proxy local-path-provisioner)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
# cargo reads a relative CARGO_TARGET_DIR from where it runs: the repository, here.
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$PGOP_REPO/$TARGET_DIR
PROVISIONER_BIN=$TARGET_DIR/debug/local-path-provisioner
PROVISIONER_NAME=pgop.dev/local-path

# The control plane, advertised on the bridge address. Run standalone, this script starts it
# (or has cluster-up.sh replace one that advertises another address: pods could not reach
# it). Run by cluster-up.sh itself (PGOP_CLUSTER_LOCKED set), it only checks.
ensure_control_plane() {
  local env=$PGOP_CLUSTER_DIR/cluster.env advertised=""
  if [[ -s $env ]]; then
    advertised=$(sed -n 's/^PGOP_ADVERTISE_ADDRESS=//p' "$env")
  fi
  if [[ -z ${PGOP_CLUSTER_LOCKED:-} ]]; then
    [[ $advertised == "$HOST_IP" ]] || log "starting a control plane advertised on $HOST_IP (hack/cluster-up.sh)"
    PGOP_ADVERTISE_ADDRESS=$HOST_IP bash "$PGOP_REPO/hack/cluster-up.sh" >/dev/null ||
      die "hack/cluster-up.sh failed"
  fi
  load_cluster_env
  [[ ${PGOP_ADVERTISE_ADDRESS:-} == "$HOST_IP" ]] || die "the control plane advertises ${PGOP_ADVERTISE_ADDRESS:-127.0.0.1}, which pods cannot reach; start it with PGOP_ADVERTISE_ADDRESS=$HOST_IP"
  [[ ${PGOP_SERVICE_CIDR:-$SERVICE_CIDR} == "$SERVICE_CIDR" ]] ||
    die "the control plane's Service range is $PGOP_SERVICE_CIDR, the nodes expect $SERVICE_CIDR"
  kubectl_admin get --raw=/readyz >/dev/null 2>&1 || die "the API server ($PGOP_APISERVER) is not ready"
}

ensure_binaries() {
  local b
  for b in kubelet kube-proxy kubectl; do
    [[ -x $K8S_BIN/$b ]] && continue
    log "building the Kubernetes binaries (hack/build-k8s.sh)"
    bash "$PGOP_REPO/hack/build-k8s.sh" >&2 || die "hack/build-k8s.sh failed"
    break
  done
  for b in kubelet kube-proxy kubectl; do
    [[ -x $K8S_BIN/$b ]] || die "$K8S_BIN/$b is missing"
  done
}

# build_provisioner: a debug build is enough for a test harness and shares the tests' cache.
# Skipped while the binary is newer than its crate and Cargo.lock; touched after a build that
# found nothing to do, so the next run skips cargo again.
build_provisioner() {
  local crate=$PGOP_REPO/crates/local-path-provisioner
  if [[ -x $PROVISIONER_BIN ]] &&
    [[ -z $(find "$crate" "$PGOP_REPO/crates/operator-runtime" "$PGOP_REPO/Cargo.lock" -newer "$PROVISIONER_BIN" -print -quit) ]]; then
    return 0
  fi
  command -v cargo >/dev/null || die "cargo is needed to build $PROVISIONER_BIN and is not on PATH"
  log "building local-path-provisioner (cargo build -p local-path-provisioner)"
  (cd "$PGOP_REPO" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --locked -q -p local-path-provisioner) >&2 ||
    die "cargo build -p local-path-provisioner failed"
  [[ -x $PROVISIONER_BIN ]] || die "cargo built no $PROVISIONER_BIN"
  touch "$PROVISIONER_BIN"
}


# start_provisioner: the StorageClass's provisioner, on the host, where it reaches every node's
# volume directory (<nodes dir>/<node>/volumes, seen by the node itself as
# /var/lib/pgop-node/volumes). It uses the admin kubeconfig: it is part of the test harness,
# like the scripts, not a workload whose rights are under test. Restarted when its binary is
# newer than the running process (it resumes from what the API server holds).
start_provisioner() {
  local pidfile=$SHARED_PID_DIR/local-path-provisioner.pid
  if proc_alive "$pidfile"; then
    [[ $PROVISIONER_BIN -nt $pidfile ]] || return 0
    log "restarting local-path-provisioner with the new build"
    proc_stop "$pidfile" 10
  fi
  proc_start local-path-provisioner "$SHARED_PID_DIR" "$SHARED_LOG_DIR/local-path-provisioner.log" \
    "$PROVISIONER_BIN" --kubeconfig="$KUBECONFIG" --nodes-root="$PGOP_NODES_DIR" \
    --node-volumes="$NODE_SELF_DIR/volumes"
}

# start_host_kube_proxy: the host is no node, but tests and the API server reach Services from
# it as from a pod: a kube-proxy in the host's namespace programs them here too. kube-proxy
# waits 30 s for its Node to exist before it starts, so it runs as pgop-node-1, which always
# exists by the time it starts (only Services with a Local traffic policy would notice).
start_host_kube_proxy() {
  local pidfile=$SHARED_PID_DIR/kube-proxy.pid
  proc_alive "$pidfile" && return 0
  [[ -s $PGOP_PKI_DIR/kube-proxy.crt ]] || pki_cert "$PGOP_PKI_DIR" kube-proxy system:kube-proxy "" client
  pki_kubeconfig "$SHARED_DIR/kube-proxy.kubeconfig" "$PGOP_APISERVER" "$PGOP_PKI_DIR/ca.crt" \
    system:kube-proxy "$PGOP_PKI_DIR/kube-proxy.crt" "$PGOP_PKI_DIR/kube-proxy.key"
  write_kube_proxy_config "$SHARED_DIR/kube-proxy.yaml" pgop-node-1 \
    "$SHARED_DIR/kube-proxy.kubeconfig" "$HOST_IP"
  proc_start kube-proxy "$SHARED_PID_DIR" "$SHARED_LOG_DIR/kube-proxy.log" "$K8S_BIN/kube-proxy" \
    --config="$SHARED_DIR/kube-proxy.yaml"
}

check_host_daemons() {
  local c
  for c in "${HOST_DAEMONS[@]}"; do
    [[ -e $SHARED_PID_DIR/$c.pid ]] || continue
    proc_alive "$SHARED_PID_DIR/$c.pid" && continue
    log "error: $c exited during start-up; last lines of $SHARED_LOG_DIR/$c.log:"
    tail -n 40 "$SHARED_LOG_DIR/$c.log" >&2 2>/dev/null || true
    exit 1
  done
}

# The kubelet rewrites some kernel settings (panic on oops, overcommit), the bridge plugin
# turns on forwarding. node-down.sh puts back what was there before the first start.
SYSCTLS=(net.ipv4.ip_forward net.ipv4.conf.all.send_redirects
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
save_machine_state() {
  [[ -s $SHARED_DIR/sysctl.orig ]] && return 0
  local s
  for s in "${SYSCTLS[@]}"; do
    echo "$s=$(sysctl -n "$s")"
  done >"$SHARED_DIR/sysctl.orig"
  # iptables-nft creates nftables tables on first use and never removes them; node-down.sh
  # deletes those that were not there before and are empty again.
  nft list tables >"$SHARED_DIR/nft-tables.orig"
}

# Kernel features the node needs. Built in on these VMs; elsewhere they may be modules,
# which are recorded as loaded by the project so hack/purge.sh unloads them again.
check_kernel() {
  [[ -d /proc/sys/net/bridge ]] || load_module br_netfilter ||
    die "the kernel lacks br_netfilter (/proc/sys/net/bridge): Service traffic between pods needs it"
  grep -qw overlay /proc/filesystems || load_module overlay ||
    die "the kernel lacks overlayfs, which containerd's snapshotter needs"
  [[ -d /sys/fs/cgroup/memory || -f /sys/fs/cgroup/cgroup.controllers ]] ||
    die "no memory cgroup at /sys/fs/cgroup: the kubelet cannot run"
}

load_module() {
  modprobe "$1" 2>/dev/null || return 1
  mkdir -p "$DEPS_STATE" && echo "$1" >>"$DEPS_STATE/modules.txt"
}

# setup_host_network: the bridge that joins the nodes, with the host's address on it; the
# routes to each node's pods are added with the node (node_make_network).
setup_host_network() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$HOST_IP/${NODE_NETWORK#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Unallocated Service addresses go onto the bridge (and die there) instead of the default
  # route: nothing for 10.96.0.0/16 may leave the machine.
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$HOST_IP"
  # The host routes between the nodes' pod networks; bridged traffic passes iptables.
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
  # No ICMP redirects: the host routes node-to-node traffic back out of the bridge it came
  # in on, and would tell a node to go "directly", bypassing the path a partition cuts.
  # The kernel sends them if all/ or the device says so, hence both.
  sysctl -qw net.ipv4.conf.all.send_redirects=0 "net.ipv4.conf.$BRIDGE.send_redirects=0"
  # The guard: forwarded traffic may only go bridge to bridge (node to node), and goes on to
  # kube-proxy's rules (RETURN, not ACCEPT, so a Service without endpoints is still
  # rejected). Anything else forwarded from or to the bridge, such as a pod's packet for the
  # outside world, is dropped, never sent.
  iptables -w -N PGOP-FORWARD 2>/dev/null || iptables -w -F PGOP-FORWARD
  iptables -w -A PGOP-FORWARD -i "$BRIDGE" -o "$BRIDGE" -j RETURN
  iptables -w -A PGOP-FORWARD -i "$BRIDGE" -j DROP
  iptables -w -A PGOP-FORWARD -o "$BRIDGE" -j DROP
  pin_forward_guard
}

# pin_forward_guard: the guard's jump first in FORWARD. kube-proxy inserts its jumps at the top
# on its first sync, and later only checks that they exist, so once moved back up it stays.
pin_forward_guard() {
  [[ $(iptables -w -S FORWARD 2>/dev/null | sed -n 2p) == "-A FORWARD -j PGOP-FORWARD" ]] && return 0
  while iptables -w -D FORWARD -j PGOP-FORWARD 2>/dev/null; do :; done
  iptables -w -I FORWARD 1 -j PGOP-FORWARD
}


install_addons() {
  # A StorageClass's provisioner cannot be changed: replace one an older node-up.sh made.
  # Bound volumes keep working, and a claim made meanwhile gets the default class once it
  # is back (the PV controller assigns it retroactively).
  # The same for its binding mode.
  local current
  current=$(kubectl_admin get storageclass standard -o jsonpath='{.provisioner} {.volumeBindingMode}' 2>/dev/null) || current=""
  if [[ -n $current && $current != "$PROVISIONER_NAME WaitForFirstConsumer" ]]; then
    log "replacing StorageClass standard ($current, now $PROVISIONER_NAME WaitForFirstConsumer)"
    kubectl_admin delete storageclass standard >/dev/null
  fi
  kubectl_admin apply -f "$PGOP_REPO/hack/node/storageclass.yaml" >/dev/null
  # One CoreDNS per node, spread over them: names resolve while any one node is lost.
  local replicas
  replicas=$(existing_nodes | wc -l)
  sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|" -e "s|@CLUSTER_DNS@|$CLUSTER_DNS|" -e "s|@REPLICAS@|$replicas|" \
    "$PGOP_REPO/hack/node/coredns.yaml" | kubectl_admin apply -f - >/dev/null
}

# DNS works when its Service answers through kube-proxy: that needs a ready CoreDNS pod in
# the Service's endpoints and kube-proxy's rules for it. The Deployment's status alone can be
# stale after a restart of a node (it still counts the pod of the previous start).
dns_answers() { timeout 1 bash -c "exec 3<>/dev/tcp/$CLUSTER_DNS/53" 2>/dev/null; }

wait_dns() {
  local deadline=$((SECONDS + TIMEOUT))
  until dns_answers; do
    check_host_daemons
    if ((SECONDS >= deadline)); then
      kubectl_admin -n kube-system describe pods -l k8s-app=kube-dns >&2 || true
      die "CoreDNS was not available within ${TIMEOUT}s"
    fi
    sleep 0.5
  done
}

# cluster-down.sh runs every executable in <state>/teardown.d/ before it stops the
# control plane: the nodes go first, while the API server can still be reached.
install_teardown_hook() {
  mkdir -p "$PGOP_CLUSTER_DIR/teardown.d"
  printf '#!/bin/sh\nexec bash %q\n' "$PGOP_REPO/hack/node-down.sh" >"$PGOP_CLUSTER_DIR/teardown.d/50-node"
  chmod 755 "$PGOP_CLUSTER_DIR/teardown.d/50-node"
}

# For tests and scripts: which nodes there are and where their pieces are.
write_node_env() {
  local names=() i
  for i in $(existing_nodes); do names+=("pgop-node-$i"); done
  {
    printf 'PGOP_NODES=%q\n' "${#names[@]}"
    printf 'PGOP_NODE_NAMES=%q\n' "${names[*]}"
    printf 'PGOP_NODES_DIR=%q\n' "$PGOP_NODES_DIR"
    printf 'PGOP_CLUSTER_DNS=%q\n' "$CLUSTER_DNS"
  } >"$PGOP_CLUSTER_DIR/node.env"
}

# wait_nodes_ready SINCE INDEX...: each node Ready by a heartbeat at or after SINCE.
wait_nodes_ready() {
  local since=$1 i deadline=$((SECONDS + TIMEOUT))
  shift
  for i in "$@"; do
    node_select "$i"
    until node_ready "$since"; do
      node_check_daemons
      if ((SECONDS >= deadline)); then
        kubectl_admin describe node "$NODE_NAME" >&2 2>/dev/null || true
        node_fail kubelet "did not make node $NODE_NAME Ready within ${TIMEOUT}s"
      fi
      sleep 0.5
    done
  done
}

# node_prepare: the selected node's namespaces and containerd, with any fault hack/node.sh
# left on it undone. A node with half its namespaces (a crash during a start) is removed first.
node_prepare() {
  if [[ -e $NODE_NETNS || -e $NODE_MNTNS ]] && ! node_exists; then
    log "$NODE_NAME is left half made; removing it first"
    node_remove
  fi
  if node_exists; then
    node_undo_faults
  else
    mkdir -p "$NODE_LOG_DIR"
    # Each new node gets fresh logs; node-down.sh keeps them for post-mortems.
    local c
    for c in "${NODE_DAEMONS[@]}"; do : >"$NODE_LOG_DIR/$c.log"; done
  fi
  node_make
  node_start_containerd
}

main() {
  need_root
  mkdir -p /run/lock
  node_lock
  node_count_valid
  local t0=$SECONDS i
  deps_ensure node || die "cannot install what the nodes need"
  ensure_control_plane
  ensure_binaries
  build_provisioner
  mkdir -p "$SHARED_DIR" "$SHARED_LOG_DIR" "$SHARED_PID_DIR"
  install_teardown_hook
  check_kernel
  save_machine_state
  setup_host_network
  ns_dir_ready
  start_provisioner

  local wanted=() reused=()
  for ((i = 1; i <= NODE_COUNT; i++)); do wanted+=("$i"); done
  for i in "${wanted[@]}"; do
    node_select "$i"
    if node_exists && node_daemons_alive && node_ready && ! node_faults | grep -q .; then
      reused+=("$NODE_NAME")
      continue
    fi
    node_prepare
  done
  log "containerd up on ${#wanted[@]} node(s) after $((SECONDS - t0))s"
  # Builds what is missing, imports into every running containerd what it lacks.
  bash "$PGOP_REPO/hack/images.sh" build >&2 || die "hack/images.sh failed"
  log "images ready after $((SECONDS - t0))s"
  local started
  started=$(date +%s)
  for i in "${wanted[@]}"; do
    node_select "$i"
    node_start_agents
  done
  # Reused nodes are Ready already; the others by a fresh heartbeat.
  local fresh=()
  for i in "${wanted[@]}"; do
    [[ " ${reused[*]} " == *" pgop-node-$i "* ]] || fresh+=("$i")
  done
  wait_nodes_ready "$started" "${fresh[@]}"
  log "${#wanted[@]} node(s) Ready after $((SECONDS - t0))s${reused[*]:+ (reused: ${reused[*]})}"
  start_host_kube_proxy
  local extra
  extra=$(existing_nodes | awk -v n="$NODE_COUNT" '$1 > n { printf " pgop-node-%s", $1 }')
  [[ -z $extra ]] || log "left running beyond PGOP_NODES=$NODE_COUNT:$extra (hack/node-down.sh removes every node)"
  install_addons
  wait_dns
  pin_forward_guard
  check_host_daemons
  write_node_env
  log "nodes up in $((SECONDS - t0))s: CoreDNS at $CLUSTER_DNS, StorageClass standard, logs in $PGOP_NODES_DIR/<node>/log and $SHARED_LOG_DIR"
}

main "$@"
