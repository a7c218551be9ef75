#!/usr/bin/env bash
# The quick start: a local one-node cluster with both operators running as Pods from their
# images (installed from deploy/, the plain manifests) and the sample resources applied. Everything it needs is built or installed by the
# project's own scripts, and cached, so a second run takes seconds.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

hack/ensure-test-tools.sh
# Images first: the node imports whatever is built when it starts.
hack/images.sh
hack/build-operator-images.sh
PGOP_NODE=1 hack/cluster-up.sh >/tmp/pgop-up.log
export KUBECONFIG
KUBECONFIG=$(tail -n 1 /tmp/pgop-up.log | sed 's/^export KUBECONFIG=//')
source <(grep '^K8S_BIN=' "$(dirname "$KUBECONFIG")/cluster.env")
kubectl() { "$K8S_BIN/kubectl" "$@"; }

kubectl apply --server-side -f deploy/crds
for operator in database-operator backup-operator; do
  kubectl apply --server-side -f "deploy/$operator"
  kubectl -n "$operator-system" rollout status "deployment/$operator" --timeout=5m
done

kubectl apply --server-side -f deploy/samples/database.yaml -f deploy/samples/backup.yaml \
  -f deploy/samples/restore.yaml
# shop-copy is Ready only after shop was Ready, backed up and restored into it: the whole
# sample chain.
echo "up: waiting for the sample Databases shop and shop-copy to be Ready"
kubectl wait --for=condition=Ready database/shop database/shop-copy --timeout=5m
kubectl get databases,backups,restores
echo
echo "The cluster is up. To use it:"
echo "export KUBECONFIG=$KUBECONFIG PATH=$K8S_BIN:\$PATH"
