# shellcheck shell=bash
# shellcheck disable=SC2034 # constants for the scripts that source this file
# Names, paths and addresses shared by images.sh, node-up.sh, node-down.sh and
# build-operator-images.sh. Sourced, never run. Everything the node owns lives under a
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

# containerd keeps root, state, config and socket apart from any system containerd.
CONTAINERD_DIR=/var/lib/pgop-containerd
CONTAINERD_SOCK="$CONTAINERD_DIR/containerd.sock"
CNI_CONF_DIR="$CONTAINERD_DIR/cni/net.d"
CNI_IPAM_DIR="$CONTAINERD_DIR/cni/ipam"
CNI_BIN_DIR=/usr/lib/cni
KUBELET_DIR=/var/lib/pgop-kubelet
# Node configuration, certificates, pid files and logs.
NODE_DIR=/var/lib/pgop-node
NODE_LOG_DIR="$NODE_DIR/log"
NODE_PID_DIR="$NODE_DIR/run"
# One directory per PersistentVolume, made by our local-path-provisioner (crates/).
VOLUMES_DIR="$NODE_DIR/volumes"

NODE_NAME="${PGOP_NODE_NAME:-pgop-node}"
BRIDGE=pgop0
NODE_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
CLUSTER_DNS=10.96.0.10
CLUSTER_DOMAIN=cluster.local

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

# containerd_running: our containerd answers on its socket.
containerd_running() {
  [[ -S $CONTAINERD_SOCK ]] && ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1
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
  log "imported $ref in $((SECONDS - started))s"
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

# need_root: the node changes mounts, network and iptables.
need_root() {
  [[ $(id -u) == 0 ]] || die "must run as root (it changes mounts, network and iptables)"
}
