# shellcheck shell=bash
# shellcheck disable=SC2034 # constants for the scripts that source this file
# Names, paths and addresses shared by images.sh, node-up.sh, node-down.sh, node.sh and
# build-operator-images.sh. Sourced, never run. Everything the nodes own lives under a
# pgop-* directory or carries a pgop name, so node-down.sh can remove exactly that and no more.

PGOP_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The same cache root as build-k8s.sh, so one `rm -rf` forgets every build product.
PGOP_CACHE="${PGOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg-operators}"
PGOP_IMAGE_CACHE="$PGOP_CACHE/images"
K8S_VERSION="${K8S_VERSION:-v1.36.3}"
K8S_BIN="${K8S_BIN:-$PGOP_CACHE/k8s/$K8S_VERSION}"
# deps_ensure: what each script installs before it runs anything (hack/deps/*.list).
# shellcheck source=hack/lib/deps.sh
source "$PGOP_REPO/hack/lib/deps.sh"
# Go (for CoreDNS) lives outside PATH in some non-login shells (cargo test, CI).
command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || PATH=$PATH:/usr/local/go/bin

# The control plane's state (written by cluster-up.sh): its CA signs the node's certificates.
PGOP_CLUSTER_DIR="${PGOP_CLUSTER_DIR:-/var/tmp/pgop-cluster}"
PGOP_PKI_DIR="${PGOP_PKI_DIR:-$PGOP_CLUSTER_DIR/pki}"
PGOP_APISERVER="${PGOP_APISERVER:-https://127.0.0.1:6443}"

# The cluster has 1 to 3 nodes (PGOP_NODES), pgop-node-1 to pgop-node-3. Each is a network
# namespace, a mount namespace and a cgroup of this machine, running its own containerd,
# kubelet and kube-proxy (docs/node.md). node_select sets the per-node names below.
MAX_NODES=3
NODE_COUNT="${PGOP_NODES:-1}"
# Everything the nodes own on the host: one directory per node, and shared/ for the pieces that
# serve them all from the host (its kube-proxy, the volume provisioner).
PGOP_NODES_DIR=/var/lib/pgop-nodes
SHARED_DIR="$PGOP_NODES_DIR/shared"
SHARED_LOG_DIR="$SHARED_DIR/log"
SHARED_PID_DIR="$SHARED_DIR/run"
# Inside its mount namespace a node sees its own directory here, and no other node's.
NODE_SELF_DIR=/var/lib/pgop-node
# The files that keep each node's namespaces alive: a private mount, so bind mounts of namespace
# files in it do not propagate anywhere.
NS_DIR=/run/pgop-nodes
CNI_BIN_DIR=/usr/lib/cni
# Inside a node, its containerd socket (the host reaches it at $NODE_HOST_DIR/containerd/).
NODE_CONTAINERD_SOCK="$NODE_SELF_DIR/containerd/containerd.sock"

# The host's bridge joins the nodes: it is the "switch" and the host the router between the
# nodes' pod networks. The API server is advertised on the bridge address.
BRIDGE=pgop0
HOST_IP=10.244.0.1
NODE_NETWORK=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
CLUSTER_DNS=10.96.0.10
CLUSTER_DOMAIN=cluster.local
# Node components reach the API server on the bridge: 127.0.0.1 is the node's own loopback.
NODE_APISERVER="https://$HOST_IP:${PGOP_APISERVER_PORT:-6443}"
ZONES=(a b c)

# node_select NODE: sets the names of node NODE (1 to 3, or pgop-node-1 to pgop-node-3).
node_select() {
  local i=${1#pgop-node-}
  if ! [[ $i =~ ^[1-9]$ ]] || ((i > MAX_NODES)); then
    die "no node '$1': the nodes are pgop-node-1 to pgop-node-$MAX_NODES"
  fi
  NODE_INDEX=$i
  NODE_NAME=pgop-node-$i
  NODE_ZONE=pgop-zone-${ZONES[i - 1]}
  NODE_IP=10.244.0.$((10 + i))
  POD_CIDR=10.244.$i.0/24
  POD_GATEWAY=10.244.$i.1
  NODE_HOST_DIR="$PGOP_NODES_DIR/$NODE_NAME"
  NODE_LOG_DIR="$NODE_HOST_DIR/log"
  NODE_PID_DIR="$NODE_HOST_DIR/run"
  CONTAINERD_SOCK="$NODE_HOST_DIR/containerd/containerd.sock"
  NODE_NETNS="$NS_DIR/$NODE_NAME.net"
  NODE_MNTNS="$NS_DIR/$NODE_NAME.mnt"
  NODE_CGROUP=$NODE_NAME
  # The host's end of the node's link to the bridge (the node's end is eth0).
  NODE_VETH=pgop-veth$i
}

# node_count_valid: PGOP_NODES is 1 to MAX_NODES.
node_count_valid() {
  if ! [[ $NODE_COUNT =~ ^[1-9]$ ]] || ((NODE_COUNT > MAX_NODES)); then
    die "PGOP_NODES=$NODE_COUNT: the cluster has 1 to $MAX_NODES nodes"
  fi
}

# node_exists: the selected node's namespaces are there (running or not).
node_exists() { [[ -e $NODE_NETNS && -e $NODE_MNTNS ]] && mountpoint -q "$NODE_NETNS"; }

# existing_nodes: the indexes of the nodes whose namespaces exist, one per line.
existing_nodes() {
  local i
  for ((i = 1; i <= MAX_NODES; i++)); do
    (
      node_select "$i"
      node_exists
    ) && echo "$i"
  done
  return 0
}

# node_exec CMD...: CMD as a process of the selected node (its cgroup and namespaces). For
# commands run now; daemons go through proc_start with node_exec_argv.
node_exec() { "$PGOP_REPO/hack/lib/node-exec.sh" "$NODE_CGROUP" "$NODE_NETNS" "$NODE_MNTNS" "$@"; }
node_exec_argv() { NODE_EXEC=("$PGOP_REPO/hack/lib/node-exec.sh" "$NODE_CGROUP" "$NODE_NETNS" "$NODE_MNTNS"); }

# node_net CMD...: CMD in the selected node's network namespace only (ip, nft, sysctl).
node_net() { nsenter --net="$NODE_NETNS" -- "$@"; }

# node_cgroup_dirs: the selected node's cgroup in every hierarchy that has it.
node_cgroup_dirs() {
  local d
  for d in /sys/fs/cgroup/*/"$NODE_CGROUP"; do
    [[ -d $d && ! -L ${d%/*} ]] && echo "$d"
  done
  return 0
}

# node_pids: every process of the selected node (daemons, shims, containers), from its cgroup.
node_pids() {
  local h
  for h in pids memory cpu,cpuacct unified; do
    [[ -d /sys/fs/cgroup/$h/$NODE_CGROUP ]] || continue
    find "/sys/fs/cgroup/$h/$NODE_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
    return 0
  done
}

# Image references as containerd stores them. Short names in pod specs are normalised to
# docker.io/..., so `image: postgres:17` finds docker.io/library/postgres:17. Nothing is ever
# pulled: the node has no registry to reach.
PAUSE_IMAGE=docker.io/pgop/pause:1.0
COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
COREDNS_IMAGE="docker.io/pgop/coredns:$COREDNS_VERSION"
POSTGRES_IMAGE=docker.io/library/postgres:17
RUNTIME_BASE_IMAGE=docker.io/pgop/runtime-base:trixie
BACKUP_BASE_IMAGE=docker.io/pgop/backup-base:trixie
DEBIAN_BASE_IMAGE=docker.io/pgop/debian-base:trixie

# Messages name the script that printed them: node-up runs images.sh, both print.
# shellcheck source=hack/lib/log.sh
source "$PGOP_REPO/hack/lib/log.sh"

# ctr against our containerd, in the namespace the CRI plugin (and so the kubelet) uses.
ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# containerd_running: the selected node's containerd answers on its socket.
containerd_running() {
  [[ -S $CONTAINERD_SOCK ]] && ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1
}

# running_containerds: the indexes of the nodes whose containerd answers, one per line.
running_containerds() {
  local i
  for i in $(existing_nodes); do
    (
      node_select "$i"
      containerd_running
    ) && echo "$i"
  done
  return 0
}

# process_running NAME: a live (not zombie) process called NAME exists. A daemon killed
# after its parent exited stays a zombie until init reaps it, which may take a while here.
process_running() {
  local pid
  for pid in $(pgrep -x "$1"); do
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == [^Z] ]] && return 0
  done
  return 1
}

# archive_digest ARCHIVE: the manifest digest of a one-image OCI archive.
archive_digest() {
  tar -xOf "$1" index.json | grep -o '"digest":"sha256:[0-9a-f]*"' | head -n1 | cut -d'"' -f4
}

# archive_ref ARCHIVE: the image name the archive carries (buildah push oci-archive:F:NAME).
archive_ref() {
  tar -xOf "$1" index.json | grep -o '"org.opencontainers.image.ref.name":"[^"]*"' | head -n1 | cut -d'"' -f4
}

# import_archive ARCHIVE REF: loads ARCHIVE into containerd's k8s.io namespace (where the
# kubelet looks) unless REF there already is the archive's manifest.
import_archive() {
  local archive=$1 ref=$2 want have started=$SECONDS
  want=$(archive_digest "$archive")
  have=$(ctr_k8s images ls 2>/dev/null | awk -v r="$ref" '$1 == r { print $3 }')
  [[ -n $want && $want == "$have" ]] && return 0
  ctr_k8s images import "$archive" >/dev/null || die "importing $archive into containerd failed"
  have=$(ctr_k8s images ls 2>/dev/null | awk -v r="$ref" '$1 == r { print $3 }')
  [[ $have == "$want" ]] || die "after importing $archive, containerd has no $ref at $want"
  log "imported $ref into $NODE_NAME in $((SECONDS - started))s"
}

# node_lock: one node-up.sh or node-down.sh at a time (test processes may call them
# concurrently). Fd 9, which proc_start closes for daemons, so none of them holds the lock;
# a script the holder runs (node-up.sh runs node-down.sh) sees PGOP_NODE_LOCKED and goes on.
node_lock() {
  [[ -n ${PGOP_NODE_LOCKED:-} ]] && return 0
  exec 9>/run/lock/pgop-node.lock
  if ! flock -n 9; then
    log "waiting for another node-up.sh or node-down.sh to finish"
    flock 9
  fi
  export PGOP_NODE_LOCKED=1
}

# load_cluster_env: where the control plane is (cluster.env, written by cluster-up.sh).
load_cluster_env() {
  local env=$PGOP_CLUSTER_DIR/cluster.env
  [[ -s $env ]] || die "no control plane in $PGOP_CLUSTER_DIR (no cluster.env); start it with PGOP_NODE=1 hack/cluster-up.sh"
  # shellcheck disable=SC1090 # written by cluster-up.sh
  source "$env"
  PGOP_APISERVER=${PGOP_APISERVER_URL:-$PGOP_APISERVER}
  NODE_APISERVER="https://$HOST_IP:${PGOP_APISERVER_PORT:-6443}"
}

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG" --request-timeout=10s "$@"; }

# need_root: the node changes mounts, network and iptables.
need_root() {
  [[ $(id -u) == 0 ]] || die "must run as root (it changes mounts, network and iptables)"
}
