#!/usr/bin/env bash
# Turns this machine into the test cluster's one node: containerd, kubelet, kube-proxy, a pod
# network on the bridge pgop0, CoreDNS and the default StorageClass with its provisioner
# (crates/local-path-provisioner, built with cargo when missing or older than its sources).
# Idempotent: a healthy node is reused, a partial one is torn down (hack/node-down.sh) and
# started again.
#
#   PGOP_NODE=1 hack/cluster-up.sh   the usual way: cluster-up.sh runs this script under its
#                        lock (PGOP_CLUSTER_LOCKED=1) once the control plane is ready
#   hack/node-up.sh      the same from this side: runs cluster-up.sh, then starts the node;
#                        prints nothing on stdout
#   hack/cluster-down.sh stops both: it runs hack/node-down.sh first, through the hook
#                        <state>/teardown.d/50-node this script installs
#
# The control plane must advertise the bridge address, so pods reach the API server through
# the `kubernetes` Service (10.96.0.1 -> 10.244.0.1:6443): this script runs cluster-up.sh with
# PGOP_ADVERTISE_ADDRESS=10.244.0.1, which starts one, reuses a matching one or replaces one
# advertising 127.0.0.1. Tests that call cluster-up.sh without that variable reuse it.
#
# Addresses: node and bridge 10.244.0.1, pods 10.244.0.0/24, Services 10.96.0.0/16, DNS
# 10.96.0.10. Pod traffic stays on this machine: no masquerading to the outside, and a
# FORWARD guard drops anything from or to the bridge that is not bridge-to-bridge.
#
# Settings: PGOP_CLUSTER_DIR (/var/tmp/pgop-cluster), PGOP_NODE_NAME (pgop-node),
# PGOP_NODE_TIMEOUT (180 s for the node and CoreDNS to become ready), CARGO_TARGET_DIR (target).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/node.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/proc.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib/pki.sh"

TIMEOUT=${PGOP_NODE_TIMEOUT:-180}
# A node is reused when these run; the provisioner is (re)started on its own, so pods
# survive an upgrade of it.
CORE_COMPONENTS=(containerd kubelet kube-proxy)
NODE_COMPONENTS=("${CORE_COMPONENTS[@]}" local-path-provisioner)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
# cargo reads a relative CARGO_TARGET_DIR from where it runs: the repository, here.
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$PGOP_REPO/$TARGET_DIR
PROVISIONER_BIN=$TARGET_DIR/debug/local-path-provisioner
PROVISIONER_NAME=pgop.dev/local-path

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG" --request-timeout=10s "$@"; }

# The control plane, advertised on the bridge address. Run standalone, this script starts it
# (or has cluster-up.sh replace one that advertises another address: pods could not reach
# it). Run by cluster-up.sh itself (PGOP_CLUSTER_LOCKED set), it only checks.
ensure_control_plane() {
  local env=$PGOP_CLUSTER_DIR/cluster.env advertised=""
  if [[ -s $env ]]; then
    advertised=$(sed -n 's/^PGOP_ADVERTISE_ADDRESS=//p' "$env")
  fi
  if [[ -z ${PGOP_CLUSTER_LOCKED:-} ]]; then
    [[ $advertised == "$NODE_IP" ]] || log "starting a control plane advertised on $NODE_IP (hack/cluster-up.sh)"
    PGOP_ADVERTISE_ADDRESS=$NODE_IP bash "$PGOP_REPO/hack/cluster-up.sh" >/dev/null ||
      die "hack/cluster-up.sh failed"
  fi
  [[ -s $env ]] || die "no control plane in $PGOP_CLUSTER_DIR (no cluster.env)"
  # shellcheck disable=SC1090 # written by cluster-up.sh
  source "$env"
  [[ ${PGOP_ADVERTISE_ADDRESS:-} == "$NODE_IP" ]] || die "the control plane advertises ${PGOP_ADVERTISE_ADDRESS:-127.0.0.1}, which pods cannot reach; start it with PGOP_ADVERTISE_ADDRESS=$NODE_IP"
  [[ ${PGOP_SERVICE_CIDR:-$SERVICE_CIDR} == "$SERVICE_CIDR" ]] ||
    die "the control plane's Service range is $PGOP_SERVICE_CIDR, the node expects $SERVICE_CIDR"
  PGOP_APISERVER=${PGOP_APISERVER_URL:-$PGOP_APISERVER}
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
    [[ -z $(find "$crate" "$PGOP_REPO/Cargo.lock" -newer "$PROVISIONER_BIN" -print -quit) ]]; then
    return 0
  fi
  command -v cargo >/dev/null || die "cargo is needed to build $PROVISIONER_BIN and is not on PATH"
  log "building local-path-provisioner (cargo build -p local-path-provisioner)"
  (cd "$PGOP_REPO" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --locked -q -p local-path-provisioner) >&2 ||
    die "cargo build -p local-path-provisioner failed"
  [[ -x $PROVISIONER_BIN ]] || die "cargo built no $PROVISIONER_BIN"
  touch "$PROVISIONER_BIN"
}

# start_provisioner: the StorageClass's provisioner, on the host because the directories it
# makes are what the kubelet mounts. It uses the admin kubeconfig: it is part of the test
# harness, like the scripts, not a workload whose rights are under test. Restarted when its
# binary is newer than the running process (it resumes from what the API server holds).
start_provisioner() {
  local pidfile=$NODE_PID_DIR/local-path-provisioner.pid
  if proc_alive "$pidfile"; then
    [[ $PROVISIONER_BIN -nt $pidfile ]] || return 0
    log "restarting local-path-provisioner with the new build"
    proc_stop "$pidfile" 10
  fi
  proc_start local-path-provisioner "$NODE_PID_DIR" "$NODE_LOG_DIR/local-path-provisioner.log" \
    "$PROVISIONER_BIN" --kubeconfig="$KUBECONFIG" --root="$VOLUMES_DIR"
}

# node_ready [SINCE]: the Node is Ready, by a heartbeat at or after SINCE (epoch seconds)
# when given: a Node left from an earlier start still says Ready until it times out.
node_ready() {
  local since=${1:-0} status beat
  read -r status beat < <(kubectl_admin get node "$NODE_NAME" -o \
    jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}{"\n"}' \
    2>/dev/null) || return 1
  [[ $status == True ]] && (($(date -d "$beat" +%s) >= since))
}

node_alive() {
  local c
  for c in "${CORE_COMPONENTS[@]}"; do proc_alive "$NODE_PID_DIR/$c.pid" || return 1; done
  ip link show "$BRIDGE" >/dev/null 2>&1 && node_ready
}

fail_component() {
  log "error: $1 $2; last lines of $NODE_LOG_DIR/$1.log:"
  tail -n 40 "$NODE_LOG_DIR/$1.log" >&2 2>/dev/null || true
  exit 1
}

check_components_alive() {
  local c
  for c in "${NODE_COMPONENTS[@]}"; do
    [[ -e $NODE_PID_DIR/$c.pid ]] || continue
    proc_alive "$NODE_PID_DIR/$c.pid" || fail_component "$c" "exited during start-up"
  done
}

# ---------------------------------------------------------------------------------------

# The kubelet rewrites some kernel settings (panic on oops, overcommit), the bridge plugin
# turns on forwarding. node-down.sh puts back what was there before the first start.
SYSCTLS=(net.ipv4.ip_forward net.ipv4.conf.all.send_redirects
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
save_machine_state() {
  [[ -s $NODE_DIR/sysctl.orig ]] && return 0
  local s
  for s in "${SYSCTLS[@]}"; do
    echo "$s=$(sysctl -n "$s")"
  done >"$NODE_DIR/sysctl.orig"
  # iptables-nft creates nftables tables on first use and never removes them; node-down.sh
  # deletes those that were not there before and are empty again.
  nft list tables >"$NODE_DIR/nft-tables.orig"
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

setup_network() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Unallocated Service addresses go onto the bridge (and die there) instead of the default
  # route: nothing for 10.96.0.0/16 may leave the machine.
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
  # Routing between pods and Services needs forwarding; bridged replies must pass iptables
  # so kube-proxy's DNAT is undone for pod-to-Service-to-pod traffic on one bridge.
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
  # No ICMP redirects: the node routes pod -> Service traffic back out of the bridge it came
  # in on, and would tell the pod to reach the Service address "directly" on the bridge,
  # where nothing answers (connections then hang instead of being refused or DNATed).
  # The kernel sends them if all/ or the device says so, hence both.
  sysctl -qw net.ipv4.conf.all.send_redirects=0 "net.ipv4.conf.$BRIDGE.send_redirects=0"
  # The guard: forwarded traffic may only go bridge to bridge (pod to pod, or pod to a
  # Service's pod after DNAT), and goes on to kube-proxy's rules (RETURN, not ACCEPT, so a
  # Service without endpoints is still rejected). Anything else forwarded from or to the
  # bridge, such as a pod's packet for the outside world, is dropped, never sent.
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

write_cni_config() {
  mkdir -p "$CNI_CONF_DIR" "$CNI_IPAM_DIR"
  # bridge + host-local from Debian's containernetworking-plugins; containerd adds loopback
  # itself. ipMasq is off: pods talk to each other, to Services and to the node, nothing else.
  cat >"$CNI_CONF_DIR/10-pgop.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "pgop",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_IPAM_DIR",
        "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "${NODE_IP%.*}.10", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

write_containerd_config() {
  mkdir -p "$CONTAINERD_DIR"/{root,state,runc,opt}
  cat >"$CONTAINERD_DIR/config.toml" <<EOF
# Written by hack/node-up.sh. Our own root, state, socket and CNI directories, so a
# system containerd (if any) is never touched.
version = 2
root = "$CONTAINERD_DIR/root"
state = "$CONTAINERD_DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_DIR/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # Built by hack/images.sh; nothing can be pulled.
  sandbox_image = "$PAUSE_IMAGE"
  disable_apparmor = true
  # No process on these VMs has CAP_SYS_RESOURCE (the sandbox's bounding set lacks it), so
  # none may lower its oom_score_adj: runc fails on the kubelet's -998 for pod sandboxes
  # ("failed to update /proc/self/oom_score_adj: Permission denied"). Clamp at containerd's.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        # The kubelet's cgroupDriver is cgroupfs: there is no systemd here to ask.
        SystemdCgroup = false
        # runc's state beside ours, not in /run/containerd/runc.
        Root = "$CONTAINERD_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$CNI_CONF_DIR"
    max_conf_num = 1
EOF
}

start_containerd() {
  proc_start containerd "$NODE_PID_DIR" "$NODE_LOG_DIR/containerd.log" \
    containerd --config "$CONTAINERD_DIR/config.toml"
  local deadline=$((SECONDS + 30))
  until containerd_running; do
    check_components_alive
    ((SECONDS < deadline)) || fail_component containerd "did not answer on $CONTAINERD_SOCK within 30s"
    sleep 0.2
  done
}

make_certs() {
  # Signed by the cluster's CA. One certificate serves the kubelet both ways: as client
  # (CN=system:node:<name>, O=system:nodes, which the Node authorizer expects) and as server.
  pki_kubelet_cert "$PGOP_PKI_DIR" "$NODE_NAME" "IP:$NODE_IP" IP:127.0.0.1
  pki_cert "$PGOP_PKI_DIR" kube-proxy system:kube-proxy "" client
  pki_kubeconfig "$NODE_DIR/kubelet.kubeconfig" "$PGOP_APISERVER" "$PGOP_PKI_DIR/ca.crt" \
    "system:node:$NODE_NAME" "$PGOP_PKI_DIR/kubelet-$NODE_NAME.crt" "$PGOP_PKI_DIR/kubelet-$NODE_NAME.key"
  pki_kubeconfig "$NODE_DIR/kube-proxy.kubeconfig" "$PGOP_APISERVER" "$PGOP_PKI_DIR/ca.crt" \
    system:kube-proxy "$PGOP_PKI_DIR/kube-proxy.crt" "$PGOP_PKI_DIR/kube-proxy.key"
}

write_kubelet_config() {
  # Pods with dnsPolicy Default (CoreDNS) get this file; there is no upstream resolver to
  # give them, and the machine's own must not be reached from pods.
  echo "nameserver $CLUSTER_DNS" >"$NODE_DIR/resolv.conf"
  cat >"$NODE_DIR/kubelet.yaml" <<EOF
# Written by hack/node-up.sh; docs/node.md explains the choices.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# cgroups are v1 (hybrid) on these machines: 1.35+ refuse to start on v1 unless told.
failCgroupV1: false
# containerd 1.6 cannot tell the kubelet its driver; it runs with SystemdCgroup = false.
cgroupDriver: cgroupfs
clusterDNS: [$CLUSTER_DNS]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $NODE_DIR/resolv.conf
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PGOP_PKI_DIR/ca.crt}
authorization:
  mode: Webhook
tlsCertFile: $PGOP_PKI_DIR/kubelet-$NODE_NAME.crt
tlsPrivateKeyFile: $PGOP_PKI_DIR/kubelet-$NODE_NAME.key
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
# No swap on these VMs; should a machine have some, the kubelet runs anyway and gives pods none.
failSwapOn: false
memorySwap: {swapBehavior: NoSwap}
# Evict only in real distress: a test cluster's disk is shared with builds and caches.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  nodefs.inodesFree: 2%
  imagefs.available: 2%
  imagefs.inodesFree: 2%
# Images cannot be pulled again, so they are never garbage-collected.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
# No systemd to inhibit shutdown through.
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
maxPods: 110
# The kubelet cannot lower its own oom_score_adj here (no CAP_SYS_RESOURCE); do not try.
oomScoreAdj: 0
EOF
}

start_kubelet() {
  mkdir -p "$KUBELET_DIR"
  proc_start kubelet "$NODE_PID_DIR" "$NODE_LOG_DIR/kubelet.log" "$K8S_BIN/kubelet" \
    --config="$NODE_DIR/kubelet.yaml" \
    --kubeconfig="$NODE_DIR/kubelet.kubeconfig" \
    --root-dir="$KUBELET_DIR" \
    --cert-dir="$NODE_DIR/kubelet-pki" \
    --hostname-override="$NODE_NAME" \
    --node-ip="$NODE_IP"
}

start_kube_proxy() {
  cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
# Written by hack/node-up.sh.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
clientConnection:
  kubeconfig: $NODE_DIR/kube-proxy.kubeconfig
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# NodePorts on the bridge address only, not on the machine's other interfaces; and no
# route_localnet for NodePorts on 127.0.0.1.
nodePortAddresses: ["$NODE_IP/32"]
iptables:
  localhostNodePorts: false
# As for the kubelet: no CAP_SYS_RESOURCE to lower it with.
oomScoreAdj: 0
# Leave the machine's conntrack settings alone (0 = do not change).
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  proc_start kube-proxy "$NODE_PID_DIR" "$NODE_LOG_DIR/kube-proxy.log" "$K8S_BIN/kube-proxy" \
    --config="$NODE_DIR/kube-proxy.yaml"
}

wait_node_ready() {
  local since=$1 deadline=$((SECONDS + TIMEOUT))
  until node_ready "$since"; do
    check_components_alive
    if ((SECONDS >= deadline)); then
      kubectl_admin describe node "$NODE_NAME" >&2 2>/dev/null || true
      fail_component kubelet "did not make node $NODE_NAME Ready within ${TIMEOUT}s"
    fi
    sleep 0.5
  done
}

install_addons() {
  # A StorageClass's provisioner cannot be changed: replace one an older node-up.sh made.
  # Bound volumes keep working, and a claim made meanwhile gets the default class once it
  # is back (the PV controller assigns it retroactively).
  local current
  current=$(kubectl_admin get storageclass standard -o jsonpath='{.provisioner}' 2>/dev/null) || current=""
  if [[ -n $current && $current != "$PROVISIONER_NAME" ]]; then
    log "replacing StorageClass standard (provisioner $current, now $PROVISIONER_NAME)"
    kubectl_admin delete storageclass standard >/dev/null
  fi
  kubectl_admin apply -f "$PGOP_REPO/hack/node/storageclass.yaml" >/dev/null
  sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|" -e "s|@CLUSTER_DNS@|$CLUSTER_DNS|" \
    "$PGOP_REPO/hack/node/coredns.yaml" | kubectl_admin apply -f - >/dev/null
}

# DNS works when its Service answers through kube-proxy: that needs a ready CoreDNS pod in
# the Service's endpoints and kube-proxy's rules for it. The Deployment's status alone can be
# stale after a restart of the node (it still counts the pod of the previous start).
dns_answers() { timeout 1 bash -c "exec 3<>/dev/tcp/$CLUSTER_DNS/53" 2>/dev/null; }

wait_dns() {
  local deadline=$((SECONDS + TIMEOUT))
  until dns_answers; do
    check_components_alive
    if ((SECONDS >= deadline)); then
      kubectl_admin -n kube-system describe pods -l k8s-app=kube-dns >&2 || true
      die "CoreDNS was not available within ${TIMEOUT}s"
    fi
    sleep 0.5
  done
}

# cluster-down.sh runs every executable in <state>/teardown.d/ before it stops the
# control plane: the node goes first, while the API server can still be reached.
install_teardown_hook() {
  mkdir -p "$PGOP_CLUSTER_DIR/teardown.d"
  printf '#!/bin/sh\nexec bash %q\n' "$PGOP_REPO/hack/node-down.sh" >"$PGOP_CLUSTER_DIR/teardown.d/50-node"
  chmod 755 "$PGOP_CLUSTER_DIR/teardown.d/50-node"
}

# For tests and scripts: where the node's pieces are.
write_node_env() {
  {
    printf 'PGOP_NODE_NAME=%q\n' "$NODE_NAME"
    printf 'PGOP_NODE_IP=%q\n' "$NODE_IP"
    printf 'PGOP_CONTAINERD_SOCK=%q\n' "$CONTAINERD_SOCK"
    printf 'PGOP_CLUSTER_DNS=%q\n' "$CLUSTER_DNS"
    printf 'PGOP_NODE_LOGS=%q\n' "$NODE_LOG_DIR"
  } >"$PGOP_CLUSTER_DIR/node.env"
}

main() {
  need_root
  mkdir -p /run/lock
  node_lock
  local t0=$SECONDS
  deps_ensure node || die "cannot install what the node needs"
  ensure_control_plane
  ensure_binaries
  build_provisioner

  if node_alive; then
    log "reusing the running node $NODE_NAME"
    bash "$PGOP_REPO/hack/images.sh" >&2
    start_provisioner
    install_addons
    wait_dns
    pin_forward_guard
    # A provisioner that cannot start (bad flag, unreadable kubeconfig) exits at once.
    check_components_alive
    return
  fi
  if [[ -d $NODE_PID_DIR ]] || ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "a stopped or partial node is left over; removing it first"
    bash "$PGOP_REPO/hack/node-down.sh" >&2
  fi

  mkdir -p "$NODE_DIR" "$NODE_LOG_DIR" "$NODE_PID_DIR"
  # Each start gets fresh logs; node-down.sh keeps them for post-mortems.
  local c
  for c in "${NODE_COMPONENTS[@]}"; do : >"$NODE_LOG_DIR/$c.log"; done
  install_teardown_hook
  check_kernel
  save_machine_state
  setup_network
  write_cni_config
  write_containerd_config
  start_containerd
  log "containerd up after $((SECONDS - t0))s"
  bash "$PGOP_REPO/hack/images.sh" build >&2 || die "hack/images.sh failed"
  log "images ready after $((SECONDS - t0))s"
  make_certs
  write_kubelet_config
  local started
  started=$(date +%s)
  start_kubelet
  start_kube_proxy
  start_provisioner
  wait_node_ready "$started"
  log "node $NODE_NAME Ready after $((SECONDS - t0))s"
  install_addons
  wait_dns
  pin_forward_guard
  write_node_env
  log "node up in $((SECONDS - t0))s: CoreDNS at $CLUSTER_DNS, StorageClass standard (volumes in $VOLUMES_DIR), logs in $NODE_LOG_DIR"
}

main "$@"
