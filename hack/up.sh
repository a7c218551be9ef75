#!/usr/bin/env bash
# The quick start: a local one-node cluster with both operators running as Pods from their
# images (installed from deploy/, the plain manifests) and the sample resources applied.
# Everything it needs is installed or built by the project's own scripts and cached, so only
# the first run builds (Kubernetes, images, operators); later runs take seconds.
#
# Each phase prints one line with its time; its full output is in /var/tmp/pgop-up/.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=hack/lib/phases.sh
source hack/lib/phases.sh
PROFILE=${PGOP_IMAGE_PROFILE:-dev}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}

# Kubernetes (Go, CPU) and the base images (mostly downloads from the Debian mirror) share
# the two cores better than they run one after the other.
build_kubernetes_and_images() {
  local images_log=$PHASES_DIR/images.log images rc=0
  hack/images.sh build >"$images_log" 2>&1 &
  images=$!
  hack/build-k8s.sh || rc=$?
  wait "$images" || {
    echo "hack/images.sh failed; last lines of $images_log:"
    tail -n 20 "$images_log"
    return 1
  }
  cat "$images_log"
  return "$rc"
}

# One cargo build for everything the cluster runs: both operators and the nodes' volume
# provisioner (which node-up.sh takes from target/debug), in the profile the images use:
# dev by default, which `just test` shares, so neither pays for a second build.
build_binaries() {
  cargo build --locked --profile "$PROFILE" -p database-operator -p backup-operator -p local-path-provisioner
}

start_cluster() {
  PGOP_NODE=1 hack/cluster-up.sh >"$PHASES_DIR/cluster.env.out"
}

kubectl() { "$K8S_BIN/kubectl" "$@"; }

install_operators() {
  kubectl apply --server-side -f deploy/crds
  local operator
  for operator in database-operator backup-operator; do
    kubectl apply --server-side -f "deploy/$operator"
    kubectl -n "$operator-system" rollout status "deployment/$operator" --timeout=5m
  done
}

# shop-copy is Ready only after shop was Ready, backed up and restored into it: the whole
# sample chain. shop-pitr archives shop's WAL once its first base backup is verified.
apply_samples() {
  kubectl apply --server-side -f deploy/samples/database.yaml -f deploy/samples/backup.yaml \
    -f deploy/samples/restore.yaml -f deploy/samples/pitr.yaml
  kubectl wait --for=condition=Ready database/shop database/shop-copy --timeout=5m
  kubectl wait --for=condition=ArchiveHealthy backup/shop-pitr --timeout=5m
}

phases_init up 7
phase "Install packages (hack/deps)" \
  "Check that apt-get works on this machine (apt-get update), then run ./justw up again." \
  hack/deps.sh machine cluster node image
first=""
[[ -x ${PGOP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg-operators}/k8s/${K8S_VERSION:-v1.36.3}/kubelet ]] || first=" (first run: about 8 minutes)"
phase "Build Kubernetes and the base images$first" \
  "Both are built from the Go module proxy and the Debian mirror; check that they are reachable." \
  build_kubernetes_and_images
phase "Build the operators (cargo, profile $PROFILE)" \
  "Run the same cargo command by hand to see the compiler's error." \
  build_binaries
phase "Build the operator images" \
  "buildah failed; the log says which Dockerfile step." \
  env PGOP_SKIP_CARGO=1 PGOP_IMAGE_PROFILE="$PROFILE" CARGO_TARGET_DIR="$TARGET_DIR" hack/build-operator-images.sh
phase "Start the cluster (control plane and node)" \
  "See the component logs under /var/tmp/pgop-cluster/logs and /var/lib/pgop-nodes/*/log; ./justw cluster-down resets it." \
  start_cluster
export KUBECONFIG
KUBECONFIG=$(tail -n 1 "$PHASES_DIR/cluster.env.out" | sed 's/^export KUBECONFIG=//')
K8S_BIN=$(sed -n 's/^K8S_BIN=//p' "$(dirname "$KUBECONFIG")/cluster.env")
phase "Install the operators (deploy/)" \
  "kubectl -n database-operator-system describe pods (and backup-operator-system) shows why a Pod is not ready." \
  install_operators
phase "Apply the samples and wait until they are Ready" \
  "kubectl describe database shop shop-copy (or backup shop-pitr); kubectl get backups,restores shows where the chain stopped." \
  apply_samples
phases_done
kubectl get databases,backups,restores
echo
echo "The cluster is up. To use it:"
echo "export KUBECONFIG=$KUBECONFIG PATH=$K8S_BIN:\$PATH"
