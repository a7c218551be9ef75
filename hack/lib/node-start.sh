# shellcheck shell=bash
# Making one node of the test cluster and starting its daemons. Sourced by node-up.sh and
# node.sh after hack/lib/node.sh and hack/lib/proc.sh, with the node chosen by node_select.
#
# A node is a network namespace (eth0 on the host's bridge, its own pod bridge), a mount
# namespace (its own /run, /var/log/pods, /var/lib/cni, its directory at /var/lib/pgop-node
# and the other nodes' directories hidden) and a cgroup in every hierarchy. Its containerd,
# kubelet and kube-proxy run in all three (hack/lib/node-exec.sh), and so does everything
# they start, down to the containers. Two nodes never see each other's containers, mounts,
# pod sandboxes or files, as two machines would not.

NODE_DAEMONS=(containerd kubelet kube-proxy)

# ns_dir_ready: NS_DIR exists and is a private mount: a namespace file can only be bound
# into a mount that does not propagate.
ns_dir_ready() {
  mkdir -p "$NS_DIR"
  mountpoint -q "$NS_DIR" && return 0
  mount --bind "$NS_DIR" "$NS_DIR"
  mount --make-private "$NS_DIR"
}

node_make_dirs() {
  local d
  for d in containerd/root containerd/state containerd/runc containerd/opt containerd/cni/net.d \
    containerd/cni/ipam kubelet kubelet-pki volumes pod-logs container-logs cni-cache log run; do
    mkdir -p "$NODE_HOST_DIR/$d"
  done
  # Mount points on the host for what each node has its own of.
  mkdir -p "$NODE_SELF_DIR" /var/log/pods /var/log/containers /var/lib/cni
}

node_make_cgroups() {
  local h
  for h in /sys/fs/cgroup/*; do
    if [[ ! -d $h || -L $h ]] || ! mountpoint -q "$h"; then continue; fi
    mkdir -p "$h/$NODE_CGROUP"
    # A v1 cpuset cgroup takes no process until it is given CPUs and memory nodes.
    if [[ -f $h/cpuset.cpus ]]; then
      [[ -n $(cat "$h/$NODE_CGROUP/cpuset.cpus") ]] || cat "$h/cpuset.cpus" >"$h/$NODE_CGROUP/cpuset.cpus"
      [[ -n $(cat "$h/$NODE_CGROUP/cpuset.mems") ]] || cat "$h/cpuset.mems" >"$h/$NODE_CGROUP/cpuset.mems"
    fi
  done
}

# node_make_network: the node's network namespace, its link to the bridge and the routes
# both ways. The node routes the cluster's pod and Service ranges through the host, and
# nothing else: there is no default route, so nothing from a node or its pods can leave.
node_make_network() {
  if ! mountpoint -q "$NODE_NETNS"; then
    touch "$NODE_NETNS"
    unshare --net="$NODE_NETNS" true
  fi
  if ! ip link show "$NODE_VETH" >/dev/null 2>&1; then
    ip link add "$NODE_VETH" type veth peer name "$NODE_VETH-n"
    ip link set "$NODE_VETH-n" netns "$NODE_NETNS"
    node_net ip link set "$NODE_VETH-n" name eth0
  fi
  ip link set "$NODE_VETH" master "$BRIDGE" up
  node_net ip link set lo up
  node_net ip link set eth0 up
  node_net ip addr replace "$NODE_IP/${NODE_NETWORK#*/}" dev eth0
  node_net ip route replace "$CLUSTER_CIDR" via "$HOST_IP" dev eth0
  node_net ip route replace "$SERVICE_CIDR" via "$HOST_IP" dev eth0
  # As on the host (node-up.sh): forwarding for the pods, bridged traffic through iptables for
  # kube-proxy's rules, and no ICMP redirects for pod -> Service -> pod on one bridge (default/
  # covers the pod bridge CNI makes later).
  node_net sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
    net.ipv4.conf.default.send_redirects=0 net.bridge.bridge-nf-call-iptables=1 \
    net.bridge.bridge-nf-call-ip6tables=1
  ip route replace "$POD_CIDR" via "$NODE_IP" dev "$BRIDGE"
}

# node_make_mounts: the node's mount namespace. A slave of the host's, so the node sees the
# machine's programs and the cluster's certificates, and nothing it mounts (volumes, container
# root file systems, pod network namespaces) reaches the host or another node.
node_make_mounts() {
  mountpoint -q "$NODE_MNTNS" && return 0
  touch "$NODE_MNTNS"
  unshare --mount="$NODE_MNTNS" --propagation slave true
  # Its own directory first, then the other nodes' hidden under an empty tmpfs; its own /run
  # (containerd's shim sockets and fifos, iptables' lock), pod logs and CNI cache, which the
  # kubelet and containerd would otherwise share and garbage-collect across nodes.
  # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
  nsenter --mount="$NODE_MNTNS" -- bash -euc '
    mount --bind "$1" "$2"
    mount -t tmpfs -o mode=0755,size=1m pgop-hidden "$3"
    mount -t tmpfs -o mode=0755 pgop-run /run
    mount --bind "$2/pod-logs" /var/log/pods
    mount --bind "$2/container-logs" /var/log/containers
    mount --bind "$2/cni-cache" /var/lib/cni
  ' node-mounts "$NODE_HOST_DIR" "$NODE_SELF_DIR" "$PGOP_NODES_DIR"
}

node_write_cni_config() {
  # bridge + host-local from Debian's containernetworking-plugins; containerd adds loopback
  # itself. ipMasq is off: pods talk to each other, to Services and to the nodes, nothing else.
  cat >"$NODE_HOST_DIR/containerd/cni/net.d/10-pgop.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "pgop",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "pgop-pods",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_SELF_DIR/containerd/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "${POD_GATEWAY%.*}.10", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

node_write_containerd_config() {
  local d=$NODE_SELF_DIR/containerd
  cat >"$NODE_HOST_DIR/containerd/config.toml" <<EOF
# Written by hack/node-up.sh for $NODE_NAME; paths as the node sees them.
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$NODE_CONTAINERD_SOCK"

[ttrpc]
  address = "$NODE_CONTAINERD_SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"

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
        Root = "$d/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$d/cni/net.d"
    max_conf_num = 1
EOF
}

# node_make_certs: one certificate serves the kubelet both ways: as client (CN=system:node:
# <name>, O=system:nodes, which the Node authorizer expects) and as server (the API server
# reaches it on the node's address for logs, exec and port-forward).
node_make_certs() {
  pki_kubelet_cert "$PGOP_PKI_DIR" "$NODE_NAME" "IP:$NODE_IP" IP:127.0.0.1
  [[ -s $PGOP_PKI_DIR/kube-proxy.crt ]] || pki_cert "$PGOP_PKI_DIR" kube-proxy system:kube-proxy "" client
  pki_kubeconfig "$NODE_HOST_DIR/kubelet.kubeconfig" "$NODE_APISERVER" "$PGOP_PKI_DIR/ca.crt" \
    "system:node:$NODE_NAME" "$PGOP_PKI_DIR/kubelet-$NODE_NAME.crt" "$PGOP_PKI_DIR/kubelet-$NODE_NAME.key"
  pki_kubeconfig "$NODE_HOST_DIR/kube-proxy.kubeconfig" "$NODE_APISERVER" "$PGOP_PKI_DIR/ca.crt" \
    system:kube-proxy "$PGOP_PKI_DIR/kube-proxy.crt" "$PGOP_PKI_DIR/kube-proxy.key"
}

node_write_kubelet_config() {
  # Pods with dnsPolicy Default (CoreDNS) get this file; there is no upstream resolver to
  # give them, and the machine's own must not be reached from pods.
  echo "nameserver $CLUSTER_DNS" >"$NODE_HOST_DIR/resolv.conf"
  cat >"$NODE_HOST_DIR/kubelet.yaml" <<EOF
# Written by hack/node-up.sh for $NODE_NAME; docs/node.md explains the choices.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$NODE_CONTAINERD_SOCK
# cgroups are v1 (hybrid) on these machines: 1.35+ refuse to start on v1 unless told.
failCgroupV1: false
# containerd 1.6 cannot tell the kubelet its driver; it runs with SystemdCgroup = false.
cgroupDriver: cgroupfs
# The node's pods below the node's own cgroup, apart from the other nodes'.
cgroupRoot: /$NODE_CGROUP
clusterDNS: [$CLUSTER_DNS]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $NODE_SELF_DIR/resolv.conf
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
# A lost node is NotReady within 20 s: its lease is renewed every 3 s (a quarter of the
# duration) and the controller manager's grace period is 14 s (hack/cluster-up.sh).
nodeLeaseDurationSeconds: 12
nodeStatusUpdateFrequency: 3s
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

# write_kube_proxy_config FILE NAME KUBECONFIG ADDRESS: a kube-proxy configuration, for a node
# or the host, acting as Node NAME with NodePorts on ADDRESS only (not on the machine's other
# interfaces; no route_localnet for NodePorts on 127.0.0.1).
write_kube_proxy_config() {
  cat >"$1" <<EOF
# Written by hack/node-up.sh.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: $2
clientConnection:
  kubeconfig: $3
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
nodePortAddresses: ["$4/32"]
iptables:
  localhostNodePorts: false
# As for the kubelet: no CAP_SYS_RESOURCE to lower it with.
oomScoreAdj: 0
# Leave the conntrack settings alone (0 = do not change).
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

node_write_kube_proxy_config() {
  write_kube_proxy_config "$NODE_HOST_DIR/kube-proxy.yaml" "$NODE_NAME" \
    "$NODE_SELF_DIR/kube-proxy.kubeconfig" "$NODE_IP"
}

# node_make: everything but the daemons, idempotent: a node that exists keeps its
# namespaces, volumes and image store, and gets its configuration written again.
node_make() {
  node_make_dirs
  node_make_cgroups
  node_make_network
  node_make_mounts
  node_write_cni_config
  node_write_containerd_config
  node_make_certs
  node_write_kubelet_config
  node_write_kube_proxy_config
}

node_fail() {
  log "error: $NODE_NAME: $1 $2; last lines of $NODE_LOG_DIR/$1.log:"
  tail -n 40 "$NODE_LOG_DIR/$1.log" >&2 2>/dev/null || true
  exit 1
}

node_check_daemons() {
  local c
  for c in "${NODE_DAEMONS[@]}"; do
    [[ -e $NODE_PID_DIR/$c.pid ]] || continue
    proc_alive "$NODE_PID_DIR/$c.pid" || node_fail "$c" "exited during start-up"
  done
}

# node_daemons_alive: containerd, kubelet and kube-proxy of the node run.
node_daemons_alive() {
  local c
  for c in "${NODE_DAEMONS[@]}"; do proc_alive "$NODE_PID_DIR/$c.pid" || return 1; done
}

node_start_containerd() {
  proc_alive "$NODE_PID_DIR/containerd.pid" && return 0
  node_exec_argv
  proc_start containerd "$NODE_PID_DIR" "$NODE_LOG_DIR/containerd.log" \
    "${NODE_EXEC[@]}" containerd --config "$NODE_SELF_DIR/containerd/config.toml"
  local deadline=$((SECONDS + 30))
  until containerd_running; do
    node_check_daemons
    ((SECONDS < deadline)) || node_fail containerd "did not answer on $CONTAINERD_SOCK within 30s"
    sleep 0.2
  done
}

# node_start_agents: the kubelet and kube-proxy, once the node's images are in its containerd.
node_start_agents() {
  node_exec_argv
  proc_alive "$NODE_PID_DIR/kubelet.pid" ||
    proc_start kubelet "$NODE_PID_DIR" "$NODE_LOG_DIR/kubelet.log" "${NODE_EXEC[@]}" "$K8S_BIN/kubelet" \
      --config="$NODE_SELF_DIR/kubelet.yaml" \
      --kubeconfig="$NODE_SELF_DIR/kubelet.kubeconfig" \
      --root-dir="$NODE_SELF_DIR/kubelet" \
      --cert-dir="$NODE_SELF_DIR/kubelet-pki" \
      --hostname-override="$NODE_NAME" \
      --node-ip="$NODE_IP" \
      --node-labels="topology.kubernetes.io/zone=$NODE_ZONE"
  proc_alive "$NODE_PID_DIR/kube-proxy.pid" ||
    proc_start kube-proxy "$NODE_PID_DIR" "$NODE_LOG_DIR/kube-proxy.log" "${NODE_EXEC[@]}" \
      "$K8S_BIN/kube-proxy" --config="$NODE_SELF_DIR/kube-proxy.yaml"
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
